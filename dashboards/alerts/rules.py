"""The operators' rules page: list, create, edit, clone, disable rules; preview before saving; silences.

Every callback here needs EDIT_ALERTS (operators and admins). Validation messages appear next to
their field; nothing is saved while any field is wrong. The preview replays the rule hour by hour
over the snapshot's last 7 days with the poller's own lifecycle and shows when it would have fired.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

import plotly.graph_objects as go
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from flask import abort, request

from config.roles import EDIT_ALERTS
from dashboards.alerts.banner import ward_names
from dashboards.alerts.links import RULES_PATH, alert_page_links
from dashboards.alerts.text import severity_label, subject_label, value_text, when_text
from dashboards.context import AppContext, get_context
from dashboards.registry import callback
from dashboards.routes import Page, PageRequest, register_page
from dashboards.security import current_account, request_language, secured
from data_sources.alerts.model import (
    COMPARATORS,
    NO_DATA_CHOICES,
    SCOPES,
    Rule,
    RuleError,
    config_problems,
    kpi_has_entity_detail,
    validate_rule,
)
from data_sources.alerts.store import (
    ConflictError,
    SilenceError,
    active_alerts,
    active_silences,
    create_silence,
    end_silence,
    get_rule,
    list_rules,
    save_rule,
    set_rule_enabled,
)
from data_sources.alerts.values import Preview, preview
from layouts import ids
from layouts.components import card, empty_state
from layouts.i18n import format_number, t
from layouts.theme import base_layout, date_axis, graph_config

FIELDS = (
    ("name", ids.RULE_NAME),
    ("dataset", ids.RULE_DATASET),
    ("kpi", ids.RULE_KPI),
    ("scope", ids.RULE_SCOPE),
    ("ward", ids.RULE_WARD),
    ("comparator", ids.RULE_COMPARATOR),
    ("warning", ids.RULE_WARNING),
    ("warning_attribute", ids.RULE_WARNING_ATTRIBUTE),
    ("critical", ids.RULE_CRITICAL),
    ("critical_attribute", ids.RULE_CRITICAL_ATTRIBUTE),
    ("hold_minutes", ids.RULE_HOLD),
    ("clear_margin", ids.RULE_MARGIN),
    ("no_data", ids.RULE_NO_DATA),
    ("enabled", ids.RULE_ENABLED),
    ("owner", ids.RULE_OWNER),
    ("description", ids.RULE_DESCRIPTION),
    ("targets", ids.RULE_TARGETS),
)
ERROR_FIELDS = (
    "name",
    "dataset",
    "kpi",
    "scope",
    "ward",
    "comparator",
    "warning",
    "critical",
    "hold_minutes",
    "clear_margin",
    "no_data",
    "owner",
    "description",
    "targets",
)
FORM_STATES = tuple(State(component, "value") for _, component in FIELDS)
SILENCE_HOURS = (1, 2, 4, 8, 24, 72, 168)
SILENCE_FIELDS = ("silence_target", "silence_until", "silence_reason")
PREVIEW_LINES = 6
SEVERITY_COLOURS = {"critical": "#cf222e", "warning": "#d4a72c", "no_data": "#6e7781"}


def blank_form(owner: str) -> dict[str, Any]:
    """A new rule's starting values."""
    return {
        "name": "",
        "dataset": None,
        "kpi": None,
        "scope": "province",
        "ward": None,
        "comparator": ">",
        "warning": "",
        "warning_attribute": None,
        "critical": "",
        "critical_attribute": None,
        "hold_minutes": "0",
        "clear_margin": "0",
        "no_data": "keep",
        "enabled": True,
        "owner": owner,
        "description": "",
        "targets": "",
    }


def form_values(values: tuple) -> dict[str, Any]:
    """State values of the form fields, by field name."""
    form = dict(zip((name for name, _ in FIELDS), values, strict=True))
    form["enabled"] = bool(form.get("enabled"))
    return form


def field_outputs(form: Mapping[str, Any]) -> list:
    """Form values in the order of ``FIELDS`` (checklists take a list)."""
    return [(["on"] if form.get("enabled") else []) if name == "enabled" else form.get(name) for name, _ in FIELDS]


def error_text(error: tuple[str, dict] | None, lang: str) -> str:
    """A field's validation message."""
    if not error:
        return ""
    key, params = error
    return t(f"alerts.error.{key}", lang, **params)


def errors_for(position: int, errors: Mapping[str, tuple[str, dict]], lang: str) -> list[str]:
    """Messages for a pattern-matched ALL output, in the order Dash asks for them."""
    specs = ctx.outputs_list[position]
    return [error_text(errors.get(spec["id"]["field"]), lang) for spec in specs]


def dataset_label(context: AppContext, dataset_id: str, lang: str) -> str:
    """Sector and the dataset's headline KPI, so operators recognise it."""
    dataset = context.catalogue.get(dataset_id)
    headline = dataset.headline_kpi or (dataset.kpis[0].id if dataset.kpis else "")
    kpi_name = t(f"kpi.{dataset.id}.{headline}", lang) if headline else dataset.id
    return f"{t(f'sector.{dataset.sector}', lang)} · {kpi_name} ({dataset.id})"


def kpi_label(dataset_id: str, kpi_id: str, lang: str) -> str:
    """A KPI's name (its id when the catalogue has no name for it)."""
    try:
        return t(f"kpi.{dataset_id}.{kpi_id}", lang)
    except KeyError:
        return kpi_id


def field(name: str, label: str, control, lang: str, hint: str | None = None) -> html.Div:
    """A labelled form field with its message slot."""
    children = [html.Label(label, className="field-label"), control]
    if hint:
        children.append(html.Div(hint, className="field-hint"))
    children.append(html.Div(id=ids.rule_error(name), className="field-error", role="alert"))
    return html.Div(children, className=f"field field-{name}")


def threshold_field(name: str, number_id: str, attribute_id: str, lang: str) -> html.Div:
    """A threshold: a number, or (per entity) the name of one of the entity's attributes."""
    pair = html.Div(
        [
            dcc.Input(id=number_id, value="", inputMode="decimal"),
            dcc.Dropdown(id=attribute_id, options=[], placeholder=t("alerts.field.or_attribute", lang), disabled=True),
        ],
        className="threshold-pair",
    )
    return field(name, t(f"alerts.field.{name}", lang), pair, lang)


def rule_form(context: AppContext, owner: str, lang: str) -> html.Div:
    """The create/edit form."""
    units = context.units
    name_column = "name_en" if lang == "en" and "name_en" in units else "name"
    blank = blank_form(owner)
    comparator_options = [{"label": t(f"alerts.comparator.{c}", lang), "value": c} for c in COMPARATORS]
    return html.Div(
        [
            dcc.Store(id=ids.RULE_EDITING, data=None),
            html.H3(t("alerts.rules.new", lang), id=ids.RULE_FORM_TITLE, className="form-title"),
            html.Div(
                [
                    field(
                        "name", t("alerts.field.name", lang), dcc.Input(id=ids.RULE_NAME, value="", maxLength=120), lang
                    ),
                    field(
                        "dataset",
                        t("alerts.field.dataset", lang),
                        dcc.Dropdown(
                            id=ids.RULE_DATASET,
                            options=[
                                {"label": dataset_label(context, d.id, lang), "value": d.id} for d in context.catalogue
                            ],
                        ),
                        lang,
                    ),
                    field("kpi", t("alerts.field.kpi", lang), dcc.Dropdown(id=ids.RULE_KPI, options=[]), lang),
                    field(
                        "scope",
                        t("alerts.field.scope", lang),
                        dcc.RadioItems(
                            id=ids.RULE_SCOPE,
                            options=[{"label": t(f"alerts.scope.{s}", lang), "value": s} for s in SCOPES],
                            value=blank["scope"],
                        ),
                        lang,
                    ),
                    field(
                        "ward",
                        t("alerts.field.ward", lang),
                        dcc.Dropdown(
                            id=ids.RULE_WARD,
                            options=[
                                {"label": n, "value": c} for c, n in zip(units["code"], units[name_column], strict=True)
                            ],
                            disabled=True,
                        ),
                        lang,
                    ),
                    field(
                        "comparator",
                        t("alerts.field.comparator", lang),
                        dcc.Dropdown(id=ids.RULE_COMPARATOR, options=comparator_options, value=">", clearable=False),
                        lang,
                    ),
                    threshold_field("warning", ids.RULE_WARNING, ids.RULE_WARNING_ATTRIBUTE, lang),
                    threshold_field("critical", ids.RULE_CRITICAL, ids.RULE_CRITICAL_ATTRIBUTE, lang),
                    field(
                        "hold_minutes",
                        t("alerts.field.hold_minutes", lang),
                        dcc.Input(id=ids.RULE_HOLD, value="0", inputMode="numeric"),
                        lang,
                        t("alerts.hint.hold_minutes", lang),
                    ),
                    field(
                        "clear_margin",
                        t("alerts.field.clear_margin", lang),
                        dcc.Input(id=ids.RULE_MARGIN, value="0", inputMode="decimal"),
                        lang,
                        t("alerts.hint.clear_margin", lang),
                    ),
                    field(
                        "no_data",
                        t("alerts.field.no_data", lang),
                        dcc.RadioItems(
                            id=ids.RULE_NO_DATA,
                            options=[{"label": t(f"alerts.no_data.{c}", lang), "value": c} for c in NO_DATA_CHOICES],
                            value="keep",
                        ),
                        lang,
                    ),
                    html.Div(
                        dcc.Checklist(
                            id=ids.RULE_ENABLED,
                            options=[{"label": t("alerts.field.enabled", lang), "value": "on"}],
                            value=["on"],
                        ),
                        className="field",
                    ),
                    field("owner", t("alerts.field.owner", lang), dcc.Input(id=ids.RULE_OWNER, value=owner), lang),
                    field(
                        "description",
                        t("alerts.field.description", lang),
                        dcc.Textarea(id=ids.RULE_DESCRIPTION, value="", maxLength=2000),
                        lang,
                    ),
                    field(
                        "targets",
                        t("alerts.field.targets", lang),
                        dcc.Textarea(id=ids.RULE_TARGETS, value=""),
                        lang,
                        t("alerts.hint.targets", lang),
                    ),
                ],
                className="form-grid",
            ),
            html.Div(
                [
                    html.Button(t("alerts.rules.preview", lang), id=ids.RULE_PREVIEW, n_clicks=0),
                    html.Button(t("alerts.rules.save", lang), id=ids.RULE_SAVE, n_clicks=0, className="primary"),
                    html.Button(t("alerts.rules.new", lang), id=ids.RULE_NEW, n_clicks=0),
                ],
                className="button-row",
            ),
            html.Div(id=ids.RULE_MESSAGE, className="form-message", role="status"),
            dcc.Graph(
                id=ids.RULE_PREVIEW_GRAPH,
                config=graph_config(lang),
                className="preview-graph",
                style={"display": "none"},
            ),
            html.Div(id=ids.RULE_PREVIEW_RESULT, className="preview-result"),
        ],
        className="rule-form",
    )


def silence_form(context: AppContext, lang: str) -> html.Div:
    """Mute a rule or a ward for a period, with a reason."""
    units = context.units
    name_column = "name_en" if lang == "en" and "name_en" in units else "name"

    def error_slot(name: str) -> html.Div:
        return html.Div(id=ids.silence_error(name), className="field-error", role="alert")

    return html.Div(
        [
            dcc.Store(id=ids.SILENCES_VERSION, data=0),
            html.Div(
                [
                    dcc.RadioItems(
                        id=ids.SILENCE_KIND,
                        options=[
                            {"label": t("alerts.silence.rule", lang), "value": "rule"},
                            {"label": t("alerts.silence.ward", lang), "value": "ward"},
                        ],
                        value="rule",
                        inline=True,
                    ),
                    dcc.Dropdown(id=ids.SILENCE_RULE, options=[], placeholder=t("alerts.silence.pick_rule", lang)),
                    dcc.Dropdown(
                        id=ids.SILENCE_WARD,
                        options=[
                            {"label": n, "value": c} for c, n in zip(units["code"], units[name_column], strict=True)
                        ],
                        placeholder=t("alerts.silence.pick_ward", lang),
                    ),
                    error_slot("silence_target"),
                    dcc.Dropdown(
                        id=ids.SILENCE_HOURS,
                        options=[
                            {"label": t("alerts.silence.for_hours", lang, n=h), "value": h} for h in SILENCE_HOURS
                        ],
                        value=2,
                        clearable=False,
                    ),
                    error_slot("silence_until"),
                    dcc.Input(
                        id=ids.SILENCE_REASON, value="", placeholder=t("alerts.silence.reason", lang), maxLength=500
                    ),
                    error_slot("silence_reason"),
                    html.Button(t("alerts.silence.create", lang), id=ids.SILENCE_CREATE, n_clicks=0),
                    html.Div(id=ids.SILENCE_MESSAGE, className="form-message", role="status"),
                ],
                className="silence-form",
            ),
            html.Div(id=ids.SILENCES_LIST, className="silence-list"),
        ]
    )


def render(page: PageRequest) -> html.Div:
    """Rules list, form with preview, silences."""
    context, lang = get_context(), page.lang
    return html.Div(
        [
            dcc.Store(id=ids.RULES_VERSION, data=0),
            html.H1(t("nav.alert_rules", lang)),
            alert_page_links(page.account, RULES_PATH, lang),
            card(t("alerts.rules.title", lang), html.Div(id=ids.RULES_LIST, className="rules-list")),
            card(t("alerts.rules.form", lang), rule_form(context, page.account.username, lang)),
            card(t("alerts.silence.title", lang), silence_form(context, lang)),
        ]
    )


register_page(Page(RULES_PATH, "nav.alert_rules", EDIT_ALERTS, render, order=51))


# --- list -----------------------------------------------------------------------------------------


def condition_summary(rule: Rule, lang: str) -> str:
    """``> 20 / > 40`` with attribute names where thresholds refer to them."""
    parts = []
    for severity, threshold in (("warning", rule.warning), ("critical", rule.critical)):
        if threshold is None:
            continue
        shown = f"@{threshold.attribute}" if threshold.attribute else value_text(threshold.value, lang)
        parts.append(f"{severity_label(severity, lang)} {rule.comparator} {shown}")
    return " · ".join(parts)


def scope_summary(rule: Rule, names: Mapping[str, str], lang: str) -> str:
    """Which subjects the rule watches."""
    if rule.scope == "ward":
        return f"{t('alerts.scope.ward', lang)}: {names.get(rule.ward or '', rule.ward)}"
    return t(f"alerts.scope.{rule.scope}", lang)


@callback(
    Output(ids.RULES_LIST, "children"),
    Output(ids.SILENCE_RULE, "options"),
    Input(ids.RULES_VERSION, "data"),
    Input(ids.ALERT_BANNER_STATE, "data"),
)
@secured(EDIT_ALERTS)
def update_rules_list(_version, _signature):
    """Every rule with its condition, state counts and any configuration problem."""
    context = get_context()
    account = current_account()
    lang = request_language()
    rules = list_rules(context.app_db)
    options = [{"label": r.name, "value": r.id} for r in rules]
    if not rules:
        return empty_state(t("alerts.rules.none", lang)), options
    names = ward_names(context, lang)
    active = active_alerts(context.app_db, account.scope, context.now())
    header = html.Tr(
        [
            html.Th(t(f"alerts.rules.column.{c}", lang))
            for c in ("name", "kpi", "scope", "condition", "state", "owner", "actions")
        ]
    )
    rows = []
    for rule in rules:
        problems = config_problems(rule, context.catalogue, context.ward_codes)
        firing = sum(1 for a in active if a.rule_id == rule.id)
        status = [t("alerts.rules.enabled" if rule.enabled else "alerts.rules.disabled", lang)]
        if firing:
            status.append(t("alerts.rules.active_count", lang, n=firing))
        rows.append(
            html.Tr(
                [
                    html.Td([html.Strong(rule.name), html.Div(rule.description, className="muted")]),
                    html.Td(f"{kpi_label(rule.dataset, rule.kpi, lang)} ({rule.dataset})"),
                    html.Td(scope_summary(rule, names, lang)),
                    html.Td(
                        [
                            condition_summary(rule, lang),
                            html.Div(
                                t(
                                    "alerts.rules.hold_margin",
                                    lang,
                                    hold=format_number(rule.hold_minutes, lang),
                                    margin=value_text(rule.clear_margin, lang),
                                ),
                                className="muted",
                            ),
                        ]
                    ),
                    html.Td(
                        [
                            " · ".join(status),
                            *[
                                html.Div(f"⚠ {error_text(problem, lang)}", className="field-error")
                                for problem in problems.values()
                            ],
                        ]
                    ),
                    html.Td(rule.owner),
                    html.Td(
                        [
                            html.Button(t("alerts.rules.edit", lang), id=ids.rule_edit(rule.id), n_clicks=0),
                            html.Button(t("alerts.rules.clone", lang), id=ids.rule_clone(rule.id), n_clicks=0),
                            html.Button(
                                t("alerts.rules.disable" if rule.enabled else "alerts.rules.enable", lang),
                                id=ids.rule_toggle(rule.id),
                                n_clicks=0,
                            ),
                        ],
                        className="row-actions",
                    ),
                ],
                className="rule-row" + ("" if rule.enabled else " disabled"),
            )
        )
    return html.Table([html.Thead(header), html.Tbody(rows)], className="rules-table"), options


@callback(
    Output(ids.RULES_VERSION, "data", allow_duplicate=True),
    Output(ids.RULE_MESSAGE, "children", allow_duplicate=True),
    Input(ids.rule_toggle(ALL), "n_clicks"),
    State(ids.RULES_VERSION, "data"),
    prevent_initial_call=True,
)
@secured(EDIT_ALERTS)
def toggle_rule(clicks, version):
    """Disable or enable a rule (audited)."""
    trigger = ctx.triggered_id
    if not isinstance(trigger, dict) or not any(clicks or []):
        raise PreventUpdate
    context = get_context()
    account = current_account()
    lang = request_language()
    rule = get_rule(context.app_db, int(trigger["rule"]))
    if rule is None:
        abort(404)
    try:
        set_rule_enabled(
            context.app_db,
            rule.id,
            not rule.enabled,
            actor=account.username,
            now=context.now(),
            address=request.remote_addr,
        )
    except ConflictError:
        return (version or 0) + 1, t("alerts.error.rule_changed", lang)
    key = "alerts.rules.disabled_message" if rule.enabled else "alerts.rules.enabled_message"
    return (version or 0) + 1, t(key, lang, name=rule.name)


# --- form -----------------------------------------------------------------------------------------


@callback(
    Output(ids.RULE_KPI, "options"),
    Output(ids.RULE_WARNING_ATTRIBUTE, "options"),
    Output(ids.RULE_CRITICAL_ATTRIBUTE, "options"),
    Output(ids.RULE_WARD, "disabled"),
    Output(ids.RULE_WARNING_ATTRIBUTE, "disabled"),
    Output(ids.RULE_CRITICAL_ATTRIBUTE, "disabled"),
    Input(ids.RULE_DATASET, "value"),
    Input(ids.RULE_SCOPE, "value"),
)
@secured(EDIT_ALERTS)
def dataset_choices(dataset_id, scope):
    """KPIs and entity attributes of the chosen dataset; fields that do not apply are disabled."""
    context = get_context()
    lang = request_language()
    try:
        dataset = context.catalogue.get(dataset_id) if dataset_id else None
    except KeyError:
        dataset = None
    if dataset is None:
        return [], [], [], scope != "ward", True, True
    kpis = [
        {
            "label": t("text.with_unit", lang, label=kpi_label(dataset.id, k.id, lang), unit=k.unit)
            if k.unit
            else kpi_label(dataset.id, k.id, lang),
            "value": k.id,
            "title": t("alerts.hint.per_entity", lang) if kpi_has_entity_detail(dataset, k) else "",
        }
        for k in dataset.kpis
    ]
    attributes = [{"label": a, "value": a} for a in (dataset.reference.attributes if dataset.reference else ())]
    per_entity = scope == "each_entity"
    return kpis, attributes, attributes, scope != "ward", not per_entity, not per_entity


@callback(
    *(Output(component, "value") for _, component in FIELDS),
    Output(ids.RULE_EDITING, "data"),
    Output(ids.RULE_FORM_TITLE, "children"),
    Output(ids.rule_error(ALL), "children"),
    Output(ids.RULE_MESSAGE, "children"),
    Output(ids.RULE_PREVIEW_RESULT, "children"),
    Output(ids.RULE_PREVIEW_GRAPH, "style"),
    Input(ids.rule_edit(ALL), "n_clicks"),
    Input(ids.rule_clone(ALL), "n_clicks"),
    Input(ids.RULE_NEW, "n_clicks"),
    prevent_initial_call=True,
)
@secured(EDIT_ALERTS)
def load_form(edit_clicks, clone_clicks, _new):
    """Fill the form from a rule (edit keeps its id; clone makes a new rule), or empty it."""
    trigger = ctx.triggered_id
    context = get_context()
    account = current_account()
    lang = request_language()
    clear = [""] * len(ctx.outputs_list[len(FIELDS) + 2])
    hidden = {"display": "none"}
    if trigger == ids.RULE_NEW:
        return (*field_outputs(blank_form(account.username)), None, t("alerts.rules.new", lang), clear, "", "", hidden)
    if not isinstance(trigger, dict) or not any([*(edit_clicks or []), *(clone_clicks or [])]):
        raise PreventUpdate
    rule = get_rule(context.app_db, int(trigger["rule"]))
    if rule is None:
        abort(404)
    form = rule.as_form()
    if trigger["type"] == "alert-rule-clone":
        form["name"] = t("alerts.rules.copy_of", lang, name=rule.name)[:120]
        form["owner"] = account.username
        title, editing = t("alerts.rules.cloning", lang, name=rule.name), None
    else:
        title, editing = t("alerts.rules.editing", lang, name=rule.name), {"id": rule.id, "version": rule.version}
    return (*field_outputs(form), editing, title, clear, "", "", hidden)


def _validated(form: dict[str, Any], context: AppContext, owner: str) -> Rule:
    return validate_rule(form, context.catalogue, context.ward_codes, owner=owner)


@callback(
    Output(ids.rule_error(ALL), "children", allow_duplicate=True),
    Output(ids.RULE_MESSAGE, "children", allow_duplicate=True),
    Output(ids.RULES_VERSION, "data", allow_duplicate=True),
    Output(ids.RULE_EDITING, "data", allow_duplicate=True),
    Output(ids.RULE_FORM_TITLE, "children", allow_duplicate=True),
    Input(ids.RULE_SAVE, "n_clicks"),
    *FORM_STATES,
    State(ids.RULE_EDITING, "data"),
    State(ids.RULES_VERSION, "data"),
    prevent_initial_call=True,
)
@secured(EDIT_ALERTS)
def save(n_clicks, *values):
    """Validate every field; save only a fully valid rule (audited); say what happened."""
    if not n_clicks:
        raise PreventUpdate
    *field_values, editing, version = values
    context = get_context()
    account = current_account()
    lang = request_language()
    try:
        rule = _validated(form_values(tuple(field_values)), context, account.username)
    except RuleError as error:
        return errors_for(0, error.errors, lang), t("alerts.rules.not_saved", lang), no_update, no_update, no_update
    if editing:
        rule = replace(rule, id=int(editing["id"]), version=int(editing["version"]))
    try:
        saved = save_rule(context.app_db, rule, actor=account.username, now=context.now(), address=request.remote_addr)
    except ConflictError:
        return errors_for(0, {}, lang), t("alerts.error.rule_changed", lang), (version or 0) + 1, no_update, no_update
    return (
        errors_for(0, {}, lang),
        t("alerts.rules.saved", lang, name=saved.name),
        (version or 0) + 1,
        {"id": saved.id, "version": saved.version},
        t("alerts.rules.editing", lang, name=saved.name),
    )


# --- preview --------------------------------------------------------------------------------------


def build_preview_figure(result: Preview, labels: Mapping[str, str], lang: str) -> go.Figure:
    """Values of the subjects that would have fired (or the highest ones), thresholds and alert spans."""
    figure = go.Figure(layout=base_layout(uirevision="preview", hovermode="x unified", height=360))
    figure.update_xaxes(**date_axis(lang))
    fired = list(dict.fromkeys(e.subject for e in result.episodes))

    def peak(subject: str) -> float:
        values = [v for v in result.series.get(subject, []) if v is not None]
        return max(values) if values else float("-inf")

    others = sorted((s for s in result.series if s not in fired), key=peak, reverse=True)
    shown = (fired + others)[:PREVIEW_LINES]
    for subject in shown:
        figure.add_trace(
            go.Scatter(x=result.times, y=result.series[subject], name=labels.get(subject, subject), mode="lines")
        )
    for severity, levels in (("warning", result.warning), ("critical", result.critical)):
        numbers = {v for s, v in levels.items() if s in shown and v is not None}
        if len(numbers) == 1:
            figure.add_hline(
                y=numbers.pop(),
                line_dash="dash",
                line_color=SEVERITY_COLOURS[severity],
                annotation_text=severity_label(severity, lang),
            )
    end = result.times[-1] if result.times else None
    for episode in result.episodes:
        if episode.subject in shown and end is not None:
            figure.add_vrect(
                x0=episode.fired_at,
                x1=episode.resolved_at or end,
                fillcolor=SEVERITY_COLOURS.get(episode.severity, "#999"),
                opacity=0.15,
                line_width=0,
            )
    return figure


def preview_summary(result: Preview, labels: Mapping[str, str], decimals: int, lang: str) -> list:
    """How many alerts the rule would have raised, and when."""
    notes = [html.P(t(f"alerts.preview.note.{note}", lang), className="muted") for note in result.notes]
    if not result.episodes:
        return [html.P(t("alerts.preview.none", lang), className="preview-none"), *notes]
    rows = [
        html.Tr(
            [
                html.Td(labels.get(e.subject, e.subject)),
                html.Td(severity_label(e.severity, lang)),
                html.Td(when_text(e.fired_at, lang)),
                html.Td(when_text(e.resolved_at, lang) if e.resolved_at else t("alerts.preview.still_firing", lang)),
                html.Td(value_text(e.peak, lang, decimals)),
            ]
        )
        for e in result.episodes[:50]
    ]
    header = html.Tr(
        [html.Th(t(f"alerts.preview.column.{c}", lang)) for c in ("subject", "severity", "from", "to", "peak")]
    )
    subjects = len({e.subject for e in result.episodes})
    return [
        html.P(
            t("alerts.preview.fired", lang, n=format_number(len(result.episodes), lang), subjects=subjects),
            className="preview-count",
        ),
        html.Table([html.Thead(header), html.Tbody(rows)], className="preview-table"),
        *notes,
    ]


@callback(
    Output(ids.rule_error(ALL), "children", allow_duplicate=True),
    Output(ids.RULE_PREVIEW_GRAPH, "figure"),
    Output(ids.RULE_PREVIEW_GRAPH, "style", allow_duplicate=True),
    Output(ids.RULE_PREVIEW_RESULT, "children", allow_duplicate=True),
    Input(ids.RULE_PREVIEW, "n_clicks"),
    *FORM_STATES,
    prevent_initial_call=True,
)
@secured(EDIT_ALERTS)
def show_preview(n_clicks, *values):
    """Replay the form's rule (valid or not saved yet) over the last 7 days of the snapshot."""
    if not n_clicks:
        raise PreventUpdate
    context = get_context()
    account = current_account()
    lang = request_language()
    try:
        rule = _validated(form_values(values), context, account.username)
    except RuleError as error:
        return errors_for(0, error.errors, lang), no_update, {"display": "none"}, t("alerts.preview.fix_first", lang)
    dataset = context.catalogue.get(rule.dataset)
    kpi = dataset.kpi(rule.kpi)
    snapshot = context.snapshot(dataset.id)
    if snapshot is None:
        return errors_for(0, {}, lang), no_update, {"display": "none"}, t("alerts.preview.no_snapshot", lang)
    result = preview(rule, dataset, kpi, snapshot, context.now(), context.crosswalk, sorted(context.ward_codes))
    names = ward_names(context, lang)
    labels = {s: subject_label(s, None, names, lang) for s in result.series}
    for subject in labels:
        if subject.startswith("entity:"):
            entities = snapshot.frame("entities")
            code = subject.partition(":")[2]
            if not entities.empty and "entity" in entities:
                match = entities.loc[entities["entity"] == code]
                labels[subject] = str(match.iloc[0]["name"]) if not match.empty else code
    figure = build_preview_figure(result, labels, lang)
    return errors_for(0, {}, lang), figure, {"display": "block"}, preview_summary(result, labels, kpi.decimals, lang)


# --- silences -------------------------------------------------------------------------------------


@callback(
    Output(ids.SILENCES_LIST, "children"),
    Input(ids.SILENCES_VERSION, "data"),
    Input(ids.RULES_VERSION, "data"),
)
@secured(EDIT_ALERTS)
def update_silences(_version, _rules):
    """Silences in force, with who set them, why, until when, and a button to end each."""
    context = get_context()
    lang = request_language()
    silences = active_silences(context.app_db, context.now())
    if not silences:
        return empty_state(t("alerts.silence.none", lang))
    names = ward_names(context, lang)
    rules = {r.id: r.name for r in list_rules(context.app_db)}
    items = []
    for silence in silences:
        target = (
            t("alerts.silence.of_rule", lang, name=rules.get(silence.rule_id, "?"))
            if silence.rule_id is not None
            else t("alerts.silence.of_ward", lang, name=names.get(silence.ward or "", silence.ward))
        )
        items.append(
            html.Li(
                [
                    html.Span(f"🔇 {target}", className="silence-target"),
                    html.Span(t("alerts.silence.until", lang, when=when_text(silence.ends_at, lang))),
                    html.Span(f"{silence.created_by}: “{silence.reason}”", className="muted"),
                    html.Button(t("alerts.silence.end", lang), id=ids.silence_end(silence.id), n_clicks=0),
                ]
            )
        )
    return html.Ul(items)


@callback(
    Output(ids.silence_error(ALL), "children"),
    Output(ids.SILENCE_MESSAGE, "children"),
    Output(ids.SILENCES_VERSION, "data"),
    Input(ids.SILENCE_CREATE, "n_clicks"),
    State(ids.SILENCE_KIND, "value"),
    State(ids.SILENCE_RULE, "value"),
    State(ids.SILENCE_WARD, "value"),
    State(ids.SILENCE_HOURS, "value"),
    State(ids.SILENCE_REASON, "value"),
    State(ids.SILENCES_VERSION, "data"),
    prevent_initial_call=True,
)
@secured(EDIT_ALERTS)
def create_silence_from_form(n_clicks, kind, rule_id, ward, hours, reason, version):
    """Mute the chosen rule or ward (audited)."""
    if not n_clicks:
        raise PreventUpdate
    context = get_context()
    account = current_account()
    lang = request_language()
    now = context.now()
    try:
        hours_number = float(hours) if hours in SILENCE_HOURS else None
    except (TypeError, ValueError):
        hours_number = None
    try:
        create_silence(
            context.app_db,
            rule_id=int(rule_id) if kind == "rule" and rule_id not in (None, "") else None,
            ward=ward if kind == "ward" and ward else None,
            ends_at=now + timedelta(hours=hours_number) if hours_number else None,
            reason=str(reason or ""),
            actor=account.username,
            now=now,
            ward_codes=context.ward_codes,
            address=request.remote_addr,
        )
    except SilenceError as error:
        return errors_for(0, error.errors, lang), "", no_update
    return errors_for(0, {}, lang), t("alerts.silence.created", lang), (version or 0) + 1


@callback(
    Output(ids.SILENCES_VERSION, "data", allow_duplicate=True),
    Input(ids.silence_end(ALL), "n_clicks"),
    State(ids.SILENCES_VERSION, "data"),
    prevent_initial_call=True,
)
@secured(EDIT_ALERTS)
def end_silence_now(clicks, version):
    """End a silence early (audited)."""
    trigger = ctx.triggered_id
    if not isinstance(trigger, dict) or not any(clicks or []):
        raise PreventUpdate
    context = get_context()
    end_silence(
        context.app_db,
        int(trigger["silence"]),
        actor=current_account().username,
        now=context.now(),
        address=request.remote_addr,
    )
    return (version or 0) + 1
