"""Page "Dữ liệu trước sáp nhập" (pre-merger data): the old-units card with a short explanation."""

from __future__ import annotations

from dash import html

from config.roles import VIEW
from dashboards.cards import old_units
from dashboards.context import get_context
from dashboards.routes import Page, PageRequest, register_page
from data_sources.admin_units import REFORM_DATE
from data_sources.users import Account
from layouts.components import card
from layouts.i18n import format_date, t

PATH = "/pre-merger"


def render(request: PageRequest) -> html.Div:
    """Title, what the page is for, and the card."""
    lang = request.lang
    return html.Div(
        [
            html.H1(t("nav.pre_merger", lang)),
            html.P(t("old_units.intro", lang, date=format_date(REFORM_DATE, lang)), className="page-intro"),
            card(t("old_units.card_title", lang), old_units.layout(get_context(), request.account, lang)),
        ]
    )


def watched_datasets(account: Account) -> tuple[str, ...]:
    """The page refreshes when a dataset it may show gets a new snapshot."""
    return tuple(d.id for d in old_units.visible_datasets(get_context(), account))


register_page(Page(PATH, "nav.pre_merger", VIEW, render, order=60, datasets=watched_datasets))
