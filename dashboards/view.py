"""Per-request view resolution shared by every sector card: who asks, in which language, for what.

Every check here runs on the server inside the callback: a sector or ward outside the account's
scope is refused with 403 whatever the browser sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from dash import Input, State
from flask import abort

from dashboards.context import AppContext, get_context
from dashboards.sectors import SectorPage, ViewState, parse_view_state, sector_page_for
from dashboards.security import current_account, request_language
from data_sources.users import Account
from layouts import ids

SECTOR_CARD_INPUTS = (Input(ids.VERSIONS, "data"), Input(ids.URL, "search"), State(ids.URL, "pathname"))
"""What every sector card rebuilds on: a new snapshot version or a new view in the URL."""


@dataclass(frozen=True)
class SectorView:
    """Everything a sector card needs to build its output."""

    context: AppContext
    account: Account
    lang: str
    page: SectorPage
    state: ViewState

    @property
    def wards(self) -> frozenset[str] | None:
        """The wards the figures cover: the selected one, else the account's scope (None = all)."""
        if self.state.ward:
            return frozenset([self.state.ward])
        return self.account.scope.wards


def resolve_sector_view(pathname: str | None, search: str | None) -> SectorView:
    """Resolve and authorise a sector card request; 404 for no such page, 403 outside the scope."""
    context = get_context()
    account = current_account()
    if account is None:
        abort(401)
    page = sector_page_for(pathname or "")
    if page is None:
        abort(404)
    if not account.scope.allows_sector(page.sector):
        abort(403)
    state = parse_view_state(search, context.ward_codes)
    if state.ward and not account.scope.allows_ward(state.ward):
        abort(403)
    return SectorView(context, account, request_language(), page, state)
