"""Admin pages: user accounts (create, role/sectors/wards, password reset, disable, unlock) and the audit log.

Both pages and every callback here need ``MANAGE_USERS`` (admins only), checked on the server by
``secured``. Every change writes an audit row naming the admin, the account and what changed.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from dash import Input, Output, State, ctx, dash_table, dcc, html, no_update
from dash.exceptions import PreventUpdate
from flask import abort

from config.datasets import SECTORS
from config.roles import ADMIN, MANAGE_USERS, ROLES
from dashboards.context import AppContext, get_context
from dashboards.registry import callback
from dashboards.routes import Page, PageRequest, register_page
from dashboards.security import client_address, current_account, request_language, secured
from data_sources import throttle
from data_sources.users import (
    Account,
    AuditEntry,
    UserError,
    audit,
    audit_actions,
    audit_entries,
    create_user,
    get_user_by_name,
    list_users,
    open_session_counts,
    set_disabled,
    set_password,
    update_user,
)
from layouts import ids
from layouts.components import card
from layouts.i18n import LOCAL_TZ, catalogue, format_date, format_datetime, t

USERS_PATH = "/admin/users"
AUDIT_PATH = "/admin/audit"
AUDIT_PAGE_SIZE = 50
FONT = 'Inter, "Segoe UI", Roboto, "Noto Sans", Arial, sans-serif'
"""The app's font (assets/style.css); the table would otherwise fall back to a monospace font."""


# --- pure builders --------------------------------------------------------------------------------


def role_options(lang: str) -> list[dict[str, str]]:
    """The roles, labelled in ``lang``."""
    return [{"label": t(f"admin.role.{role}", lang), "value": role} for role in ROLES]


def sector_options(lang: str) -> list[dict[str, str]]:
    """The sectors, labelled in ``lang``."""
    return [{"label": t(f"sector.{sector}", lang), "value": sector} for sector in SECTORS]


def ward_options(context: AppContext, lang: str) -> list[dict[str, str]]:
    """Current wards as "name (code)"."""
    column = "name" if lang != "en" else "name_en"
    return [
        {"label": f"{name} ({code})", "value": code}
        for code, name in zip(context.units["code"], context.units[column], strict=True)
    ]


def error_text(error: UserError, lang: str) -> str:
    """A validation message in the interface language."""
    return t(f"admin.error.{error.code}", lang, **error.params)


def message(text: str, ok: bool) -> html.Div:
    """A form's outcome line: green when done, red (announced) when refused."""
    return html.Div(text, className="form-message ok" if ok else "form-message error", role="status" if ok else "alert")


def account_scope_text(account: Account, context: AppContext, lang: str) -> str:
    """What an account may see, in words: "all sectors", or its sectors and wards."""
    if account.role != "department_head":
        return t("admin.scope.all", lang)
    sectors = ", ".join(t(f"sector.{s}", lang) for s in account.sectors)
    if not account.wards:
        return sectors
    return f"{sectors} · " + ", ".join(context.ward_name(code, lang) for code in account.wards)


def account_status(account: Account, blocked: set[str]) -> str:
    """disabled, throttled (some address is blocked) or active."""
    if account.disabled:
        return "disabled"
    return "throttled" if throttle.throttle_key(account.username) in blocked else "active"


def build_users_table(
    accounts: list[Account], blocked: set[str], sessions: dict[int, int], context: AppContext, lang: str
) -> html.Table:
    """One row per account: name, display name, role, scope, status, open sessions (data cells marked
    ``data-value``: names as entered are not catalogue text)."""
    header = html.Tr(
        [html.Th(t(f"admin.col.{c}", lang)) for c in ("username", "name", "role", "scope", "status", "sessions")]
    )
    rows = []
    for account in accounts:
        status = account_status(account, blocked)
        rows.append(
            html.Tr(
                [
                    html.Td(account.username, className="mono data-value"),
                    html.Td(account.display_name, className="data-value"),
                    html.Td(t(f"admin.role.{account.role}", lang)),
                    html.Td(account_scope_text(account, context, lang)),
                    html.Td(t(f"admin.status.{status}", lang), className=f"status {status}"),
                    html.Td(str(sessions.get(account.id, 0)), className="num data-value"),
                ],
                **{"data-username": account.username},
            )
        )
    return html.Table([html.Thead(header), html.Tbody(rows)], className="admin-table")


def build_blocks(blocks: list[throttle.Block], lang: str) -> html.Div:
    """Blocked (account, address) pairs, or a line saying there are none."""
    if not blocks:
        return html.P(t("admin.blocks.none", lang), className="muted")
    header = html.Tr([html.Th(t(f"admin.col.{c}", lang)) for c in ("username", "address", "failures", "until")])
    rows = [
        html.Tr(
            [
                html.Td(b.username, className="mono data-value"),
                html.Td(b.address, className="mono data-value"),
                html.Td(str(b.failures), className="num data-value"),
                html.Td(format_datetime(b.blocked_until, lang), className="data-value"),
            ]
        )
        for b in blocks
    ]
    return html.Table([html.Thead(header), html.Tbody(rows)], className="admin-table")


def action_label(action: str, lang: str) -> str:
    """A known audit action in words; actions other features add show as recorded."""
    key = f"audit.action.{action}"
    return t(key, lang) if key in catalogue(lang) else action


def format_moment(moment: datetime, lang: str) -> str:
    """Local date and time to the second (audit rows need the second)."""
    return f"{format_date(moment, lang)} {moment.astimezone(LOCAL_TZ):%H:%M:%S}"


def build_audit_rows(entries: list[AuditEntry], lang: str) -> list[dict[str, str]]:
    """Audit rows for the table, times local."""
    return [
        {
            "at": format_moment(e.at, lang),
            "who": e.username or "",
            "action": action_label(e.action, lang),
            "detail": e.detail,
            "address": e.address or "",
        }
        for e in entries
    ]


def date_bounds(start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    """Local calendar days (inclusive, ISO ``YYYY-MM-DD``) as [start, end) instants; 400 for a malformed date."""
    try:
        first = date.fromisoformat(start[:10]) if start else None
        last = date.fromisoformat(end[:10]) if end else None
    except (TypeError, ValueError):
        abort(400, "dates must be YYYY-MM-DD")
    lower = datetime.combine(first, time(0), LOCAL_TZ) if first else None
    upper = datetime.combine(last + timedelta(days=1), time(0), LOCAL_TZ) if last else None
    return lower, upper


# --- pages ----------------------------------------------------------------------------------------


def _field(label: str, control, hint: str = "") -> html.Label:
    parts = [html.Span(label, className="field-label"), control]
    if hint:
        parts.append(html.Span(hint, className="field-hint"))
    return html.Label(parts, className="field")


def _role_and_scope_fields(role_id: str, sectors_id: str, wards_id: str, lang: str) -> list[html.Label]:
    """Role, sectors and wards inputs (the create and the edit form share them)."""
    wards = ward_options(get_context(), lang)
    return [
        _field(t("admin.field.role", lang), dcc.Dropdown(id=role_id, options=role_options(lang))),
        _field(
            t("admin.field.sectors", lang),
            dcc.Checklist(id=sectors_id, options=sector_options(lang), value=[], inline=True),
            t("admin.hint.scope", lang),
        ),
        _field(
            t("admin.field.wards", lang),
            dcc.Dropdown(id=wards_id, options=wards, multi=True, placeholder=t("admin.field.wards_all", lang)),
        ),
    ]


def render_users(request: PageRequest) -> html.Div:
    """The user administration page."""
    lang = request.lang
    create = html.Div(
        [
            _field(t("admin.field.username", lang), dcc.Input(id=ids.ADMIN_CREATE_USERNAME, type="text", maxLength=64)),
            _field(t("admin.field.name", lang), dcc.Input(id=ids.ADMIN_CREATE_NAME, type="text", maxLength=120)),
            *_role_and_scope_fields(ids.ADMIN_CREATE_ROLE, ids.ADMIN_CREATE_SECTORS, ids.ADMIN_CREATE_WARDS, lang),
            _field(
                t("admin.field.password", lang),
                dcc.Input(id=ids.ADMIN_CREATE_PASSWORD, type="password", maxLength=256, autoComplete="new-password"),
                t("admin.hint.password", lang),
            ),
            html.Button(t("admin.create.submit", lang), id=ids.ADMIN_CREATE_SUBMIT, n_clicks=0, className="primary"),
            html.Div(id=ids.ADMIN_CREATE_MESSAGE),
            dcc.Store(id=ids.ADMIN_CREATE_DONE, data=0),
        ],
        className="admin-form",
    )
    edit = html.Div(
        [
            _field(t("admin.field.account", lang), dcc.Dropdown(id=ids.ADMIN_EDIT_USER, options=[])),
            html.Div(id=ids.ADMIN_EDIT_STATUS, className="edit-status"),
            _field(t("admin.field.name", lang), dcc.Input(id=ids.ADMIN_EDIT_NAME, type="text", maxLength=120)),
            *_role_and_scope_fields(ids.ADMIN_EDIT_ROLE, ids.ADMIN_EDIT_SECTORS, ids.ADMIN_EDIT_WARDS, lang),
            html.Button(t("admin.edit.save", lang), id=ids.ADMIN_EDIT_SAVE, n_clicks=0, className="primary"),
            _field(
                t("admin.field.new_password", lang),
                dcc.Input(id=ids.ADMIN_EDIT_PASSWORD, type="password", maxLength=256, autoComplete="new-password"),
                t("admin.hint.reset", lang),
            ),
            html.Div(
                [
                    html.Button(t("admin.edit.reset", lang), id=ids.ADMIN_EDIT_RESET, n_clicks=0),
                    html.Button(t("admin.edit.unlock", lang), id=ids.ADMIN_EDIT_UNLOCK, n_clicks=0),
                    html.Button(
                        t("admin.edit.disable", lang), id=ids.ADMIN_EDIT_DISABLE, n_clicks=0, className="danger"
                    ),
                    html.Button(t("admin.edit.enable", lang), id=ids.ADMIN_EDIT_ENABLE, n_clicks=0),
                ],
                className="button-row",
            ),
            html.Div(id=ids.ADMIN_EDIT_MESSAGE),
            dcc.Store(id=ids.ADMIN_EDIT_DONE, data=0),
        ],
        className="admin-form",
    )
    return html.Div(
        [
            html.H1(t("nav.admin_users", lang)),
            card(t("admin.users.title", lang), html.Div(id=ids.ADMIN_USERS_TABLE)),
            html.Div(
                [card(t("admin.create.title", lang), create), card(t("admin.edit.title", lang), edit)],
                className="grid-2",
            ),
            card(t("admin.blocks.title", lang), html.Div(id=ids.ADMIN_BLOCKS)),
        ]
    )


def render_audit(request: PageRequest) -> html.Div:
    """The audit-log viewer: filters, a paged table, newest first."""
    lang = request.lang
    context = get_context()
    actions = [{"label": action_label(a, lang), "value": a} for a in audit_actions(context.app_db)]
    columns = [{"name": t(f"admin.col.{c}", lang), "id": c} for c in ("at", "who", "action", "detail", "address")]
    filters = html.Div(
        [
            _field(t("admin.audit.who", lang), dcc.Input(id=ids.AUDIT_WHO, type="text", debounce=True, maxLength=64)),
            _field(
                t("admin.audit.action", lang),
                dcc.Dropdown(id=ids.AUDIT_ACTION, options=actions, placeholder=t("admin.audit.action_all", lang)),
            ),
            _field(
                t("admin.audit.contains", lang),
                dcc.Input(id=ids.AUDIT_CONTAINS, type="text", debounce=True, maxLength=100),
            ),
            _field(
                t("admin.audit.dates", lang),
                dcc.DatePickerRange(
                    id=ids.AUDIT_DATES,
                    display_format="DD/MM/YYYY" if lang != "en" else "YYYY-MM-DD",
                    start_date_placeholder_text=t("admin.audit.from", lang),
                    end_date_placeholder_text=t("admin.audit.to", lang),
                    first_day_of_week=1,
                    clearable=True,
                ),
            ),
        ],
        className="controls audit-filters",
    )
    table = dash_table.DataTable(
        id=ids.AUDIT_TABLE,
        columns=columns,
        data=[],
        page_action="none",
        style_table={"overflowX": "auto"},
        style_cell={"fontFamily": FONT, "fontSize": 13, "textAlign": "left", "whiteSpace": "normal"},
        style_header={"fontWeight": "600"},
    )
    pager = html.Div(
        [
            html.Button("‹", id=ids.AUDIT_PREV, n_clicks=0, className="pager"),
            html.Span(id=ids.AUDIT_PAGE, className="pager-label"),
            html.Button("›", id=ids.AUDIT_NEXT, n_clicks=0, className="pager"),
        ],
        className="pager-row",
    )
    return html.Div(
        [
            html.H1(t("nav.audit_log", lang)),
            filters,
            card(t("admin.audit.title", lang), [table, pager]),
            dcc.Store(id=ids.AUDIT_CURSOR, data={"page": 0, "cursors": [None]}),
        ]
    )


register_page(Page(USERS_PATH, "nav.admin_users", MANAGE_USERS, render_users, order=900))
register_page(Page(AUDIT_PATH, "nav.audit_log", MANAGE_USERS, render_audit, order=910))


# --- callbacks ------------------------------------------------------------------------------------


def _record(action: str, detail: str) -> None:
    admin = current_account()
    audit(get_context().app_db, action, username=admin.username, detail=detail, address=client_address())


@callback(
    Output(ids.ADMIN_USERS_TABLE, "children"),
    Output(ids.ADMIN_EDIT_USER, "options"),
    Output(ids.ADMIN_BLOCKS, "children"),
    Input(ids.ADMIN_CREATE_DONE, "data"),
    Input(ids.ADMIN_EDIT_DONE, "data"),
)
@secured(MANAGE_USERS)
def refresh_users(_created, _edited):
    """The account list, the edit choices and the blocked pairs, after every change."""
    context = get_context()
    lang = request_language()
    accounts = list_users(context.app_db)
    blocks = throttle.active_blocks(context.app_db)
    sessions = open_session_counts(context.app_db, idle_minutes=context.settings.session_idle_minutes)
    table = build_users_table(accounts, {b.username for b in blocks}, sessions, context, lang)
    options = [{"label": f"{a.username} — {a.display_name}", "value": a.username} for a in accounts]
    return table, options, build_blocks(blocks, lang)


@callback(
    Output(ids.ADMIN_CREATE_MESSAGE, "children"),
    Output(ids.ADMIN_CREATE_DONE, "data"),
    Output(ids.ADMIN_CREATE_PASSWORD, "value"),
    Input(ids.ADMIN_CREATE_SUBMIT, "n_clicks"),
    State(ids.ADMIN_CREATE_USERNAME, "value"),
    State(ids.ADMIN_CREATE_NAME, "value"),
    State(ids.ADMIN_CREATE_ROLE, "value"),
    State(ids.ADMIN_CREATE_SECTORS, "value"),
    State(ids.ADMIN_CREATE_WARDS, "value"),
    State(ids.ADMIN_CREATE_PASSWORD, "value"),
    State(ids.ADMIN_CREATE_DONE, "data"),
    prevent_initial_call=True,
)
@secured(MANAGE_USERS)
def create_account(clicks, username, name, role, sectors, wards, password, done):
    """Create an account from the form; a refusal says why, the password field is always cleared."""
    if not clicks:
        raise PreventUpdate
    context = get_context()
    lang = request_language()
    username = str(username or "").strip()
    if not role:
        return message(t("admin.error.role_required", lang), False), no_update, ""
    try:
        account = create_user(
            context.app_db,
            username,
            str(password or ""),
            str(role),
            sectors=tuple(sectors or ()),
            wards=tuple(wards or ()),
            display_name=str(name or ""),
            known_wards=context.ward_codes,
        )
    except UserError as error:
        return message(error_text(error, lang), False), no_update, ""
    scope = f"sectors={','.join(account.sectors) or '-'} wards={','.join(account.wards) or '-'}"
    _record("user_created", f"{account.username} role={account.role} {scope}")
    return message(t("admin.done.created", lang, username=account.username), True), (done or 0) + 1, ""


@callback(
    Output(ids.ADMIN_EDIT_NAME, "value"),
    Output(ids.ADMIN_EDIT_ROLE, "value"),
    Output(ids.ADMIN_EDIT_SECTORS, "value"),
    Output(ids.ADMIN_EDIT_WARDS, "value"),
    Output(ids.ADMIN_EDIT_STATUS, "children"),
    Input(ids.ADMIN_EDIT_USER, "value"),
    Input(ids.ADMIN_EDIT_DONE, "data"),
)
@secured(MANAGE_USERS)
def load_account(username, _done):
    """Fill the edit form with the chosen account."""
    if not username:
        return "", None, [], [], ""
    context = get_context()
    lang = request_language()
    account = get_user_by_name(context.app_db, str(username))
    if account is None:
        return "", None, [], [], message(t("admin.error.no_such_user", lang, username=username), False)
    blocked = {b.username for b in throttle.active_blocks(context.app_db)}
    status = account_status(account, blocked)
    label = html.Span(t(f"admin.status.{status}", lang), className=f"status {status}")
    return account.display_name, account.role, list(account.sectors), list(account.wards), label


@callback(
    Output(ids.ADMIN_EDIT_MESSAGE, "children"),
    Output(ids.ADMIN_EDIT_DONE, "data"),
    Output(ids.ADMIN_EDIT_PASSWORD, "value"),
    Input(ids.ADMIN_EDIT_SAVE, "n_clicks"),
    Input(ids.ADMIN_EDIT_RESET, "n_clicks"),
    Input(ids.ADMIN_EDIT_UNLOCK, "n_clicks"),
    Input(ids.ADMIN_EDIT_DISABLE, "n_clicks"),
    Input(ids.ADMIN_EDIT_ENABLE, "n_clicks"),
    State(ids.ADMIN_EDIT_USER, "value"),
    State(ids.ADMIN_EDIT_NAME, "value"),
    State(ids.ADMIN_EDIT_ROLE, "value"),
    State(ids.ADMIN_EDIT_SECTORS, "value"),
    State(ids.ADMIN_EDIT_WARDS, "value"),
    State(ids.ADMIN_EDIT_PASSWORD, "value"),
    State(ids.ADMIN_EDIT_DONE, "data"),
    prevent_initial_call=True,
)
@secured(MANAGE_USERS)
def change_account(_save, _reset, _unlock, _disable, _enable, username, name, role, sectors, wards, password, done):
    """Save role/scope/name, reset the password, unlock, disable or enable the chosen account."""
    trigger = ctx.triggered_id
    if trigger is None:
        raise PreventUpdate
    context = get_context()
    lang = request_language()
    admin = current_account()
    if not username:
        return message(t("admin.error.pick_user", lang), False), no_update, ""
    username = str(username)
    accounts = list_users(context.app_db)
    target = next((a for a in accounts if a.username == username), None)
    if target is None:
        return message(t("admin.error.no_such_user", lang, username=username), False), no_update, ""
    try:
        if trigger == ids.ADMIN_EDIT_SAVE:
            if not role:
                return message(t("admin.error.role_required", lang), False), no_update, ""
            if target.username == admin.username and role != ADMIN:
                return message(t("admin.error.self_demote", lang), False), no_update, ""
            account, changes = update_user(
                context.app_db,
                username,
                role=str(role),
                sectors=tuple(sectors or ()),
                wards=tuple(wards or ()),
                display_name=str(name or ""),
                known_wards=context.ward_codes,
            )
            if not changes:
                return message(t("admin.done.unchanged", lang), True), no_update, no_update
            _record("user_updated", f"{account.username}: {'; '.join(changes)}")
            text = t("admin.done.updated", lang, username=username)
        elif trigger == ids.ADMIN_EDIT_RESET:
            set_password(context.app_db, username, str(password or ""))
            throttle.clear(context.app_db, username)
            _record("password_reset", username)
            text = t("admin.done.password_reset", lang, username=username)
        elif trigger == ids.ADMIN_EDIT_UNLOCK:
            cleared = throttle.clear(context.app_db, username)
            _record("user_unlocked", f"{username} ({cleared} address(es))")
            text = t("admin.done.unlocked", lang, username=username, n=cleared)
        elif trigger == ids.ADMIN_EDIT_DISABLE:
            if target.username == admin.username:  # so the page can never lock out the last admin
                return message(t("admin.error.self_disable", lang), False), no_update, ""
            set_disabled(context.app_db, username, True)
            _record("user_disabled", username)
            text = t("admin.done.disabled", lang, username=username)
        elif trigger == ids.ADMIN_EDIT_ENABLE:
            set_disabled(context.app_db, username, False)
            _record("user_enabled", username)
            text = t("admin.done.enabled", lang, username=username)
        else:
            raise PreventUpdate
    except UserError as error:
        return message(error_text(error, lang), False), no_update, ""
    return message(text, True), (done or 0) + 1, ""


@callback(
    Output(ids.AUDIT_TABLE, "data"),
    Output(ids.AUDIT_PAGE, "children"),
    Output(ids.AUDIT_CURSOR, "data"),
    Input(ids.AUDIT_WHO, "value"),
    Input(ids.AUDIT_ACTION, "value"),
    Input(ids.AUDIT_CONTAINS, "value"),
    Input(ids.AUDIT_DATES, "start_date"),
    Input(ids.AUDIT_DATES, "end_date"),
    Input(ids.AUDIT_PREV, "n_clicks"),
    Input(ids.AUDIT_NEXT, "n_clicks"),
    State(ids.AUDIT_CURSOR, "data"),
)
@secured(MANAGE_USERS)
def update_audit(who, action, contains, start, end, _prev, _next, cursor):
    """One page of the audit log, newest first; filters restart at page 1, ‹ › move by keyset."""
    context = get_context()
    lang = request_language()
    lower, upper = date_bounds(start, end)
    page, cursors = 0, [None]
    if ctx.triggered_id in (ids.AUDIT_PREV, ids.AUDIT_NEXT) and isinstance(cursor, dict):
        page = int(cursor.get("page", 0)) if str(cursor.get("page", 0)).isdigit() else 0
        cursors = [c if isinstance(c, int) else None for c in cursor.get("cursors") or [None]]
        page = min(page, len(cursors) - 1)
        if ctx.triggered_id == ids.AUDIT_NEXT:
            if page + 1 >= len(cursors):
                raise PreventUpdate
            page += 1
        else:
            page = max(0, page - 1)
    entries = audit_entries(
        context.app_db,
        username=str(who).strip() if who else None,
        action=str(action) if action else None,
        contains=str(contains).strip() if contains else None,
        start=lower,
        end=upper,
        before_id=cursors[page],
        limit=AUDIT_PAGE_SIZE + 1,
    )
    more = len(entries) > AUDIT_PAGE_SIZE
    entries = entries[:AUDIT_PAGE_SIZE]
    cursors = cursors[: page + 1] + ([entries[-1].id] if more else [])
    label = t("admin.audit.page", lang, page=page + 1) if entries else t("admin.audit.none", lang)
    return build_audit_rows(entries, lang), label, {"page": page, "cursors": cursors}
