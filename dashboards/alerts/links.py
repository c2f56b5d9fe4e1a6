"""Links between the alert pages (alerts, thresholds, delivery log), each shown only to accounts that may open it."""

from __future__ import annotations

from dash import dcc, html

from dashboards.alerts.banner import ALERTS_PATH
from dashboards.routes import page_at
from data_sources.users import Account
from layouts import ids
from layouts.i18n import t

RULES_PATH = "/alerts/rules"
DELIVERIES_PATH = "/alerts/deliveries"
ALERT_PAGES = ((ALERTS_PATH, "nav.alerts"), (RULES_PATH, "nav.alert_rules"), (DELIVERIES_PATH, "nav.alert_deliveries"))


def linked_pages(account: Account, here: str) -> list[tuple[str, str]]:
    """(path, nav key) of the other alert pages the account may open (the router's own permission check)."""
    found = []
    for path, key in ALERT_PAGES:
        page = page_at(path)
        if path != here and page is not None and page.allows(account):
            found.append((path, key))
    return found


def alert_page_links(account: Account, here: str, lang: str) -> html.Nav:
    """A row of links to the other alert pages (empty for accounts that may open none)."""
    pages = linked_pages(account, here)
    links = [dcc.Link(t(key, lang), href=path, className="alert-page-link") for path, key in pages]
    return html.Nav(links, id=ids.ALERT_PAGE_LINKS, className="alert-page-links")
