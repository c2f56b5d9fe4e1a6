"""Imports every module that registers pages or callbacks, so ``create_app`` gets them all.

One line per feature module; the order does not matter.
"""

import dashboards.data_health  # noqa: F401
from dashboards import pages  # noqa: F401
