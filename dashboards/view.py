"""Per-request view resolution shared by every sector card: who asks, in which language, for what.

Every check here runs on the server inside the callback: a sector or ward outside the account's
scope is refused with 403 whatever the browser sent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from dash import Input, State
from flask import abort

from dashboards.context import AppContext, get_context
from dashboards.sectors import CUSTOM, SectorPage, ViewState, parse_view_state, sector_page_for
from dashboards.security import current_account, request_language
from data_sources.clock import to_local_naive
from data_sources.figures import Span, day_span, kpi_per_ward
from data_sources.users import Account
from layouts import ids
from layouts.i18n import format_date, t

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

    @property
    def span(self) -> Span | None:
        """The custom range as a bucket span (None for the named windows)."""
        if self.state.window == CUSTOM and self.state.start and self.state.end:
            return day_span(self.state.start, self.state.end)
        return None

    @property
    def records_dataset(self) -> str:
        """The drill-down dataset shown: the one in the URL, else the page's first."""
        return self.state.records or self.page.records[0]

    def window_label(self) -> str:
        """The time range in words: "7 ngày qua", "01/11/2026 – 10/11/2026"."""
        if self.span is not None:
            return t(
                "range.custom_label",
                self.lang,
                start=format_date(self.state.start, self.lang),
                end=format_date(self.state.end, self.lang),
            )
        return t(f"window.{self.state.window}", self.lang)

    def per_ward(self, dataset_id: str, kpi_id: str, codes: list[str]) -> pd.Series:
        """One KPI for each ward in ``codes`` over the view's time range (NaN without data or snapshot)."""
        return pd.Series(self.per_ward_values(dataset_id, kpi_id, codes), index=codes, dtype="float64")

    def per_ward_values(self, dataset_id: str, kpi_id: str, codes: list[str]) -> np.ndarray:
        """``per_ward`` as an array in the order of ``codes`` (shared with other requests: read only)."""
        snapshot = self.context.snapshot(dataset_id)
        if snapshot is None:
            return np.full(len(codes), np.nan)
        dataset = self.context.catalogue.get(dataset_id)
        window = self.state.window if self.span is None else "all"
        values = kpi_per_ward(
            dataset,
            dataset.kpi(kpi_id),
            snapshot,
            self.context.now(),
            self.context.crosswalk,
            codes,
            window=window,
            span=self.span,
            shared=True,
        )
        if len(values) == len(codes) and values.index.tolist() == list(codes):
            return values.to_numpy(dtype="float64")  # already one value per code, in order
        return values.reindex(codes).to_numpy(dtype="float64")

    def place_label(self) -> str:
        """The selected ward's name, or the province."""
        if self.state.ward:
            return self.context.ward_name(self.state.ward, self.lang)
        return t("breadcrumb.province", self.lang)


def view_state_for(page: SectorPage, search: str | None, context: AppContext) -> ViewState:
    """Parse the URL for ``page`` (custom ranges end today at the latest, local time)."""
    today = to_local_naive(context.now()).date()
    return parse_view_state(search, context.ward_codes, today=today, records_datasets=page.records)


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
    state = view_state_for(page, search, context)
    if state.ward and not account.scope.allows_ward(state.ward):
        abort(403)
    return SectorView(context, account, request_language(), page, state)
