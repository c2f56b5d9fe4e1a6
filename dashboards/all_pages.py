"""Imports every module that registers pages or callbacks, so ``create_app`` gets them all.

One line per feature module; the order does not matter.
"""

import dashboards.admin  # noqa: F401
from dashboards import (
    pages,  # noqa: F401
    pre_merger,  # noqa: F401
    units_page,  # noqa: F401
)
