"""Imports every module that registers pages or callbacks, so ``create_app`` gets them all.

One line per feature module; the order does not matter.
"""

from dashboards import admin, data_health, pages, pre_merger, units_page  # noqa: F401
from dashboards.alerts import banner, deliveries, history, rules  # noqa: F401
