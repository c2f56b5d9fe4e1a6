"""Pages other than the overview and the sector pages, declared by the module that owns them.

A feature module (Data health, alerts, user admin, ...) calls ``register_page`` at import; the
router in ``dashboards/pages.py`` serves it, checks its permission and sector scope on the
server, and lists it in the navigation of accounts that may open it. ``dashboards/all_pages.py``
imports every page module once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from config.roles import has_permission
from data_sources.users import Account


@dataclass(frozen=True)
class PageRequest:
    """What a page's render function gets: who asks, in which language, with which URL query."""

    account: Account
    lang: str
    search: str


@dataclass(frozen=True)
class Page:
    """One routed page: its path, menu label key, permission and render function."""

    path: str
    nav_key: str
    permission: str
    render: Callable[[PageRequest], Any]
    order: int = 100
    """Menu position after the sector pages (smaller first)."""
    datasets: Callable[[Account], tuple[str, ...]] | None = None
    """Datasets whose snapshot versions the page's refresh tick watches (None: none)."""

    def allows(self, account: Account) -> bool:
        """True when ``account`` may open the page."""
        return has_permission(account.role, self.permission)


_PAGES: dict[str, Page] = {}


def register_page(page: Page) -> Page:
    """Add ``page`` to the router; a path registered twice is a programming error."""
    if page.path in _PAGES and _PAGES[page.path] != page:
        raise ValueError(f"page path {page.path!r} is registered twice")
    _PAGES[page.path] = page
    return page


def page_at(path: str) -> Page | None:
    """The registered page served at ``path``."""
    return _PAGES.get(path.rstrip("/") or "/")


def registered_pages() -> list[Page]:
    """Every registered page in menu order."""
    return sorted(_PAGES.values(), key=lambda page: (page.order, page.path))
