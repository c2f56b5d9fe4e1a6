"""Alerts through the Flask test client: operators edit rules and acknowledge, others are refused,
department heads see (banner, page, CSV) only their sectors and wards, forged requests get 403."""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import func, select

from config.datasets import load_datasets
from dashboards.alerts.rules import ERROR_FIELDS, SILENCE_FIELDS
from data_sources.admin_units import crosswalk as unit_crosswalk
from data_sources.admin_units import current_units
from data_sources.alerts.engine import AlertEngine
from data_sources.alerts.model import Rule, Threshold
from data_sources.alerts.store import active_alerts, list_rules, save_rule
from data_sources.alerts.tables import alert_rules
from data_sources.scheduler import Poller
from data_sources.snapshots import SQLiteSnapshotStore
from data_sources.users import audit_table, create_user
from data_sources.warehouse import create_warehouse_engine
from layouts.i18n import t
from tests.conftest import FIXED_NOW
from tests.test_web import PASSWORD, login, make_settings

PHU_XUAN = "19753"


@pytest.fixture(scope="module")
def alerts_web(seeded_warehouse, tmp_path_factory):
    """A test app over the seeded warehouse with alerts firing in two sectors, one account per role."""
    from app import create_app

    folder = tmp_path_factory.mktemp("alerts-web")
    settings = make_settings(folder, seeded_warehouse)
    store = SQLiteSnapshotStore(folder / "snapshots.db")
    catalogue = load_datasets(settings.datasets_file)
    Poller(catalogue, create_warehouse_engine(seeded_warehouse), store, lambda: FIXED_NOW).poll_all()
    app = create_app(settings, store=store, clock=lambda: FIXED_NOW)
    app_db = create_warehouse_engine(settings.app_db_url)
    create_user(app_db, "operator", PASSWORD, "operator")
    create_user(app_db, "leader", PASSWORD, "leader")
    create_user(app_db, "feedback_head", PASSWORD, "department_head", sectors=("feedback",))
    create_user(app_db, "ward_head", PASSWORD, "department_head", sectors=("feedback",), wards=(PHU_XUAN,))
    create_user(app_db, "traffic_head", PASSWORD, "department_head", sectors=("traffic",))
    rules = [
        Rule("Tồn đọng phản ánh", "feedback", "open", "each_ward", ">", Threshold(0), None, owner="operator"),
        Rule("Tồn đọng toàn tỉnh", "feedback", "open", "province", ">", Threshold(0), None, owner="operator"),
        Rule("Sự cố giao thông", "traffic_incidents", "open_incidents", "province", ">", Threshold(-1), None),
    ]
    for rule in rules:
        save_rule(app_db, rule, actor="operator", now=FIXED_NOW)
    engine = AlertEngine(app_db, store, catalogue, unit_crosswalk("46"), list(current_units("46")["code"]))
    for dataset in ("feedback", "traffic_incidents"):
        engine.evaluate_dataset(dataset, now=FIXED_NOW)
    return app, app_db


def post(client, app, function: str, outputs: list, inputs: list, state: list = (), changed: tuple | None = None):
    """POST the Dash callback named ``function`` (its registered output key, pattern outputs expanded).

    An input given as a list of (id, property, value) is a pattern-matching ``ALL`` input (one item per
    matched component); ``changed`` (id, property) is the input that changed, by default the first.
    """
    key = next(k for k, v in app.callback_map.items() if getattr(v.get("callback"), "__name__", "") == function)

    def item(entry):
        if isinstance(entry, list):
            return [item(e) for e in entry]
        component, prop, value = entry
        return {"id": component, "property": prop, "value": value}

    first = changed or (inputs[0][0] if isinstance(inputs[0], list) else inputs[0])
    body = {
        "output": key,
        "outputs": outputs if len(outputs) > 1 else outputs[0],
        "inputs": [item(i) for i in inputs],
        "state": [item(s) for s in state],
        "changedPropIds": [
            f"{json.dumps(first[0], separators=(',', ':')) if isinstance(first[0], dict) else first[0]}.{first[1]}"
        ],
    }
    return client.post("/_dash-update-component", json=body, headers={"X-CSRFToken": client.csrf})


def out(component, prop):
    return {"id": component, "property": prop}


def rule_errors_spec(prop="children"):
    return [out({"type": "alert-rule-error", "field": f}, prop) for f in ERROR_FIELDS]


FORM_IDS = [
    "alert-rule-name",
    "alert-rule-dataset",
    "alert-rule-kpi",
    "alert-rule-scope",
    "alert-rule-ward",
    "alert-rule-comparator",
    "alert-rule-warning",
    "alert-rule-warning-attribute",
    "alert-rule-critical",
    "alert-rule-critical-attribute",
    "alert-rule-hold",
    "alert-rule-margin",
    "alert-rule-no-data",
    "alert-rule-enabled",
    "alert-rule-owner",
    "alert-rule-description",
    "alert-rule-targets",
]


def form_state(**values):
    base = {
        "alert-rule-name": "PM2.5 cao",
        "alert-rule-dataset": "env_air",
        "alert-rule-kpi": "pm25_max",
        "alert-rule-scope": "each_ward",
        "alert-rule-comparator": ">=",
        "alert-rule-warning": "150",
        "alert-rule-critical": "200",
        "alert-rule-hold": "10",
        "alert-rule-margin": "5",
        "alert-rule-no-data": "keep",
        "alert-rule-enabled": ["on"],
        "alert-rule-owner": "operator",
        "alert-rule-targets": "",
    } | values
    return [(i, "value", base.get(i)) for i in FORM_IDS]


def save_request(client, app, **values):
    return post(
        client,
        app,
        "save",
        [
            rule_errors_spec(),
            out("alert-rule-message", "children"),
            out("alert-rules-version", "data"),
            out("alert-rule-editing", "data"),
            out("alert-rule-form-title", "children"),
        ],
        [("alert-rule-save", "n_clicks", 1)],
        [*form_state(**values), ("alert-rule-editing", "data", None), ("alert-rules-version", "data", 0)],
    )


def banner(client, app):
    response = post(
        client,
        app,
        "update_banner",
        [out("alert-ticker", "children"), out("alert-banner-state", "data")],
        [("refresh-tick", "n_intervals", 1), ("url", "pathname", "/")],
        [("alert-banner-state", "data", None)],
    )
    return response


def history(client, app, sector=None, ward=None):
    return post(
        client,
        app,
        "update_history",
        [out("alert-history-table", "data"), out("alert-history-count", "children")],
        [
            ("alert-history-dates", "start_date", "2026-11-14"),
            ("alert-history-dates", "end_date", "2026-11-20"),
            ("alert-history-sector", "value", sector),
            ("alert-history-ward", "value", ward),
            ("alert-history-severity", "value", None),
            ("alert-history-kind", "value", None),
            ("alert-banner-state", "data", None),
        ],
    )


def export(client, app, sector=None, ward=None):
    return post(
        client,
        app,
        "export_history",
        [out("alert-history-download", "data")],
        [("alert-history-export", "n_clicks", 1)],
        [
            ("alert-history-dates", "start_date", "2026-11-14"),
            ("alert-history-dates", "end_date", "2026-11-20"),
            ("alert-history-sector", "value", sector),
            ("alert-history-ward", "value", ward),
            ("alert-history-severity", "value", None),
            ("alert-history-kind", "value", None),
        ],
    )


def csv_text(response) -> str:
    data = response.json["response"]["alert-history-download"]["data"]
    raw = base64.b64decode(data["content"]) if data.get("base64") else data["content"].encode()
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 with BOM"
    return raw.decode("utf-8-sig")


class TestRuleEditing:
    def test_operator_saves_a_valid_rule_and_it_is_audited(self, alerts_web):
        app, app_db = alerts_web
        response = save_request(login(app, "operator"), app, **{"alert-rule-name": "PM2.5 cao (web)"})
        assert response.status_code == 200
        assert "Đã lưu quy tắc" in json.dumps(response.json, ensure_ascii=False)
        saved = [r for r in list_rules(app_db) if r.name == "PM2.5 cao (web)"]
        assert len(saved) == 1 and saved[0].warning == Threshold(150) and saved[0].hold_minutes == 10
        with app_db.connect() as connection:
            actions = connection.execute(select(audit_table.c.action, audit_table.c.username)).fetchall()
        assert ("alert_rule_create", "operator") in actions

    def test_bad_input_gets_messages_next_to_the_fields_and_nothing_is_saved(self, alerts_web):
        app, app_db = alerts_web
        with app_db.connect() as connection:
            before = connection.execute(select(func.count()).select_from(alert_rules)).scalar_one()
        response = save_request(
            login(app, "operator"),
            app,
            **{"alert-rule-warning": "cao", "alert-rule-critical": "100", "alert-rule-hold": "-3"},
        )
        assert response.status_code == 200
        errors = response.json["response"]
        messages = {json.loads(k)["field"]: v["children"] for k, v in errors.items() if "alert-rule-error" in k}
        assert messages["warning"].startswith('"cao" không phải là số')
        assert messages["hold_minutes"] == "Phải từ 0 đến 1440."
        assert messages["name"] == "" and messages["critical"] == ""
        with app_db.connect() as connection:
            assert connection.execute(select(func.count()).select_from(alert_rules)).scalar_one() == before

    def test_warning_above_critical_is_refused_with_its_message(self, alerts_web):
        app, _ = alerts_web
        response = save_request(login(app, "operator"), app, **{"alert-rule-warning": "250"})
        text = json.dumps(response.json, ensure_ascii=False)
        assert "ngưỡng cảnh báo phải nhỏ hơn ngưỡng nghiêm trọng" in text

    @pytest.mark.parametrize("username", ["leader", "feedback_head"])
    def test_accounts_without_edit_alerts_are_refused_rule_editing(self, alerts_web, username):
        app, app_db = alerts_web
        client = login(app, username)
        response = save_request(client, app, **{"alert-rule-name": f"forged by {username}"})
        assert response.status_code == 403
        assert not [r for r in list_rules(app_db) if r.name == f"forged by {username}"]
        toggle = post(
            client,
            app,
            "toggle_rule",
            [out("alert-rules-version", "data"), out("alert-rule-message", "children")],
            [({"type": "alert-rule-toggle", "rule": 1}, "n_clicks", 1)],
            [("alert-rules-version", "data", 0)],
        )
        assert toggle.status_code == 403 and list_rules(app_db)[0].enabled
        page = post(
            client,
            app,
            "display_page",
            [out("page-content", "children"), out("nav", "children")],
            [("url", "pathname", "/alerts/rules")],
            [("url", "search", "")],
        )
        assert page.status_code == 403


def firing(app_db, scope=None):
    from config.roles import Scope

    return active_alerts(app_db, scope or Scope(None, None), FIXED_NOW)


class TestAcknowledge:
    def ack(self, client, app, alert_id, comment):
        return post(
            client,
            app,
            "submit_acknowledge",
            [
                out("alert-ack-panel", "hidden"),
                out("alert-ack-error", "children"),
                out("alert-ticker", "children"),
                out("alert-banner-state", "data"),
            ],
            [("alert-ack-submit", "n_clicks", 1)],
            [("alert-ack-target", "data", alert_id), ("alert-ack-comment", "value", comment)],
        )

    def test_leader_cannot_acknowledge(self, alerts_web):
        app, app_db = alerts_web
        alert = next(a for a in firing(app_db) if a.state == "firing")
        assert self.ack(login(app, "leader"), app, alert.alert_id, "xem").status_code == 403
        assert next(a for a in firing(app_db) if a.alert_id == alert.alert_id).state == "firing"

    def test_operator_needs_a_comment_then_acknowledges(self, alerts_web):
        app, app_db = alerts_web
        client = login(app, "operator")
        alert = next(a for a in firing(app_db) if a.state == "firing" and a.sector == "traffic")
        empty = self.ack(client, app, alert.alert_id, "  ")
        assert "Vui lòng nhập ghi chú xử lý." in json.dumps(empty.json, ensure_ascii=False)
        done = self.ack(client, app, alert.alert_id, "Đã điều CSGT tới hiện trường")
        assert done.status_code == 200
        acked = next(a for a in firing(app_db) if a.alert_id == alert.alert_id)
        assert (acked.state, acked.acked_by, acked.ack_comment) == (
            "acknowledged",
            "operator",
            "Đã điều CSGT tới hiện trường",
        )
        again = self.ack(client, app, alert.alert_id, "lần hai")
        assert "đã được người khác tiếp nhận" in json.dumps(again.json, ensure_ascii=False)


class TestScope:
    def test_banner_shows_each_account_only_its_sectors_and_wards(self, alerts_web):
        app, app_db = alerts_web
        everything = firing(app_db)
        wards = {a.ward for a in everything if a.ward}
        assert PHU_XUAN in wards and len(wards) > 1, "the seeded data fires in several wards"

        def shown(username):
            text = json.dumps(banner(login(app, username), app).json, ensure_ascii=False)
            return {a.alert_id for a in everything if a.alert_id in text}

        assert shown("traffic_head") == {a.alert_id for a in everything if a.sector == "traffic"}
        feedback = shown("feedback_head")
        assert feedback and all(a.sector == "feedback" for a in everything if a.alert_id in feedback)
        ward_only = shown("ward_head")
        expected = {a.alert_id for a in everything if a.sector == "feedback" and a.ward == PHU_XUAN}
        assert expected and ward_only == expected

    def test_history_and_export_are_cut_to_the_scope(self, alerts_web):
        app, _ = alerts_web
        client = login(app, "ward_head")
        rows = history(client, app).json["response"]["alert-history-table"]["data"]
        assert rows and {r["sector"] for r in rows} == {"Phản ánh hiện trường"}
        assert all("Phú Xuân" in r["subject"] for r in rows)
        text = csv_text(export(client, app))
        lines = text.strip().splitlines()
        assert lines[0].startswith("Thời điểm,Sự kiện,Mức,Quy tắc")
        assert len(lines) == len(rows) + 1 and "Sự cố giao thông" not in text and "Toàn tỉnh" not in text
        everything = csv_text(export(login(app, "leader"), app))
        assert "Sự cố giao thông" in everything and "Toàn tỉnh/thành phố" in everything

    @pytest.mark.parametrize(
        ("username", "sector", "ward"),
        [
            ("feedback_head", "traffic", None),
            ("ward_head", None, "19774"),
            ("traffic_head", "feedback", None),
        ],
    )
    def test_forged_filters_outside_the_scope_get_403_and_no_data(self, alerts_web, username, sector, ward):
        app, _ = alerts_web
        client = login(app, username)
        for response in (history(client, app, sector, ward), export(client, app, sector, ward)):
            assert response.status_code == 403
            assert "alert-history" not in response.text

    def test_a_department_head_cannot_acknowledge_even_in_their_sector(self, alerts_web):
        app, app_db = alerts_web
        alert = next(a for a in firing(app_db) if a.state == "firing" and a.sector == "feedback")
        response = TestAcknowledge().ack(login(app, "feedback_head"), app, alert.alert_id, "xem")
        assert response.status_code == 403

    def test_the_alerts_page_opens_for_everyone_with_view_and_is_in_the_menu(self, alerts_web):
        app, _ = alerts_web
        for username, sees_rules in (("leader", False), ("operator", True)):
            response = post(
                login(app, username),
                app,
                "display_page",
                [out("page-content", "children"), out("nav", "children")],
                [("url", "pathname", "/alerts")],
                [("url", "search", "")],
            )
            assert response.status_code == 200
            nav = json.dumps(response.json["response"]["nav"])
            assert "/alerts" in nav and ("/alerts/rules" in nav) == sees_rules


class TestPreviewThroughTheWeb:
    def test_preview_replays_a_rule_before_it_is_saved(self, alerts_web):
        app, app_db = alerts_web
        with app_db.connect() as connection:
            before = connection.execute(select(func.count()).select_from(alert_rules)).scalar_one()
        response = post(
            login(app, "operator"),
            app,
            "show_preview",
            [
                rule_errors_spec(),
                out("alert-rule-preview-graph", "figure"),
                out("alert-rule-preview-graph", "style"),
                out("alert-rule-preview-result", "children"),
            ],
            [("alert-rule-preview", "n_clicks", 1)],
            form_state(**{"alert-rule-warning": "5", "alert-rule-critical": "10", "alert-rule-hold": "0"}),
        )
        assert response.status_code == 200
        payload = response.json["response"]
        figure = payload["alert-rule-preview-graph"]["figure"]
        assert figure["data"] and len(figure["data"][0]["x"]) == 7 * 24
        assert "Sẽ phát" in json.dumps(payload["alert-rule-preview-result"], ensure_ascii=False)
        with app_db.connect() as connection:
            assert connection.execute(select(func.count()).select_from(alert_rules)).scalar_one() == before

    def test_a_per_gauge_rule_previews_seven_days(self, alerts_web):
        app, _ = alerts_web
        response = post(
            login(app, "operator"),
            app,
            "show_preview",
            [
                rule_errors_spec(),
                out("alert-rule-preview-graph", "figure"),
                out("alert-rule-preview-graph", "style"),
                out("alert-rule-preview-result", "children"),
            ],
            [("alert-rule-preview", "n_clicks", 1)],
            form_state(
                **{
                    "alert-rule-dataset": "env_river",
                    "alert-rule-kpi": "level_max",
                    "alert-rule-scope": "each_entity",
                    "alert-rule-warning": "",
                    "alert-rule-warning-attribute": "alert_level_1",
                    "alert-rule-critical": "",
                    "alert-rule-critical-attribute": "alert_level_2",
                    "alert-rule-margin": "0",
                }
            ),
        )
        assert response.status_code == 200
        payload = response.json["response"]
        traces = payload["alert-rule-preview-graph"]["figure"]["data"]
        assert traces and all(len(trace["x"]) == 7 * 24 for trace in traces)
        assert "Kim Long" in {trace["name"] for trace in traces}
        assert "48 giờ" not in json.dumps(payload["alert-rule-preview-result"], ensure_ascii=False)


FIELD_OUTPUTS = [out(i, "value") for i in FORM_IDS]


def rules_list(client, app):
    return post(
        client,
        app,
        "update_rules_list",
        [out("alert-rules-list", "children"), out("alert-silence-rule", "options")],
        [("alert-rules-version", "data", 0), ("alert-banner-state", "data", None)],
    )


def load(client, app, kind: str, rule_id: int):
    """Click a rule's edit or clone button."""
    return post(
        client,
        app,
        "load_form",
        [
            *FIELD_OUTPUTS,
            out("alert-rule-editing", "data"),
            out("alert-rule-form-title", "children"),
            rule_errors_spec(),
            out("alert-rule-message", "children"),
            out("alert-rule-preview-result", "children"),
            out("alert-rule-preview-graph", "style"),
        ],
        [
            [({"type": "alert-rule-edit", "rule": rule_id}, "n_clicks", int(kind == "edit"))],
            [({"type": "alert-rule-clone", "rule": rule_id}, "n_clicks", int(kind == "clone"))],
            ("alert-rule-new", "n_clicks", 0),
        ],
        changed=({"type": f"alert-rule-{kind}", "rule": rule_id}, "n_clicks"),
    )


def form_from(response) -> dict:
    payload = response.json["response"]
    return {i: payload[i]["value"] for i in FORM_IDS} | {
        "editing": payload["alert-rule-editing"]["data"],
        "title": payload["alert-rule-form-title"]["children"],
    }


def save_form(client, app, form: dict):
    return post(
        client,
        app,
        "save",
        [
            rule_errors_spec(),
            out("alert-rule-message", "children"),
            out("alert-rules-version", "data"),
            out("alert-rule-editing", "data"),
            out("alert-rule-form-title", "children"),
        ],
        [("alert-rule-save", "n_clicks", 1)],
        [*((i, "value", form[i]) for i in FORM_IDS), ("alert-rule-editing", "data", form["editing"])]
        + [("alert-rules-version", "data", 0)],
    )


class TestRulesPage:
    def test_the_list_shows_every_rule_and_what_no_longer_fits_the_configuration(self, alerts_web):
        app, app_db = alerts_web
        gone = Rule("Chỉ số đã bỏ", "feedback", "removed_kpi", "province", ">", Threshold(1), None, owner="operator")
        save_rule(app_db, gone, actor="operator", now=FIXED_NOW)
        response = rules_list(login(app, "operator"), app)
        text = json.dumps(response.json["response"], ensure_ascii=False)
        assert "Tồn đọng phản ánh" in text and "Sự cố giao thông" in text and "Chỉ số đã bỏ" in text
        assert '⚠ Chỉ số \\"removed_kpi\\" không còn trong cấu hình của bộ dữ liệu.' in text
        assert "Cảnh báo > 0" in text, "the condition, severity in words"

    def test_edit_keeps_the_rule_clone_makes_a_new_one_both_audited(self, alerts_web):
        app, app_db = alerts_web
        client = login(app, "operator")
        original = save_rule(
            app_db,
            Rule("Phản ánh mới trong ngày", "feedback", "new_today", "each_ward", ">", Threshold(5), Threshold(9)),
            actor="operator",
            now=FIXED_NOW,
        )
        edited = form_from(load(client, app, "edit", original.id))
        assert edited["editing"] == {"id": original.id, "version": 1}
        assert edited["alert-rule-name"] == "Phản ánh mới trong ngày" and edited["alert-rule-warning"] == "5"
        assert edited["title"] == 'Đang sửa "Phản ánh mới trong ngày"'
        edited["alert-rule-warning"] = "6"
        assert "Đã lưu quy tắc" in json.dumps(save_form(client, app, edited).json, ensure_ascii=False)
        after = next(r for r in list_rules(app_db) if r.id == original.id)
        assert after.warning == Threshold(6) and after.version == 2

        cloned = form_from(load(client, app, "clone", original.id))
        assert cloned["editing"] is None and cloned["alert-rule-name"] == "Bản sao của Phản ánh mới trong ngày"
        assert cloned["alert-rule-warning"] == "6" and cloned["alert-rule-owner"] == "operator"
        save_form(client, app, cloned)
        assert [r.name for r in list_rules(app_db)].count("Bản sao của Phản ánh mới trong ngày") == 1
        assert next(r for r in list_rules(app_db) if r.id == original.id).version == 2, "the original is untouched"
        with app_db.connect() as connection:
            actions = [
                a
                for (a,) in connection.execute(
                    select(audit_table.c.action).where(audit_table.c.action.like("alert_rule%"))
                )
            ]
        assert actions.count("alert_rule_update") >= 1 and actions.count("alert_rule_create") >= 2

    def test_an_operator_disables_and_enables_a_rule(self, alerts_web):
        app, app_db = alerts_web
        rule = save_rule(
            app_db,
            Rule("Tạm thời", "feedback", "open", "province", ">", Threshold(10**6), None),
            actor="x",
            now=FIXED_NOW,
        )

        def toggle():
            return post(
                login(app, "operator"),
                app,
                "toggle_rule",
                [out("alert-rules-version", "data"), out("alert-rule-message", "children")],
                [[({"type": "alert-rule-toggle", "rule": rule.id}, "n_clicks", 1)]],
                [("alert-rules-version", "data", 0)],
            )

        assert toggle().json["response"]["alert-rule-message"]["children"] == 'Đã tắt quy tắc "Tạm thời".'
        assert not next(r for r in list_rules(app_db) if r.id == rule.id).enabled
        toggle()
        assert next(r for r in list_rules(app_db) if r.id == rule.id).enabled

    def test_an_operator_mutes_a_ward_with_a_reason_and_ends_it(self, alerts_web):
        app, _ = alerts_web
        client = login(app, "operator")

        def mute(reason):
            return post(
                client,
                app,
                "create_silence_from_form",
                [
                    [out({"type": "alert-silence-error", "field": f}, "children") for f in SILENCE_FIELDS],
                    out("alert-silence-message", "children"),
                    out("alert-silences-version", "data"),
                ],
                [("alert-silence-create", "n_clicks", 1)],
                [
                    ("alert-silence-kind", "value", "ward"),
                    ("alert-silence-rule", "value", None),
                    ("alert-silence-ward", "value", "19774"),
                    ("alert-silence-hours", "value", 2),
                    ("alert-silence-reason", "value", reason),
                    ("alert-silences-version", "data", 0),
                ],
            )

        refused = json.dumps(mute("  ").json, ensure_ascii=False)
        assert t("alerts.error.required", "vi") in refused and "Đã tạm tắt." not in refused
        assert "Đã tạm tắt." in json.dumps(mute("Bảo trì trạm bơm").json, ensure_ascii=False)
        listed = post(
            client,
            app,
            "update_silences",
            [out("alert-silences-list", "children")],
            [("alert-silences-version", "data", 1), ("alert-rules-version", "data", 0)],
        )
        text = json.dumps(listed.json, ensure_ascii=False)
        assert "Phường Kim Long" in text and "Bảo trì trạm bơm" in text and "operator" in text
        silence_id = int(text.split('"silence": ')[1].split("}")[0])
        post(
            client,
            app,
            "end_silence_now",
            [out("alert-silences-version", "data")],
            [[({"type": "alert-silence-end", "silence": silence_id}, "n_clicks", 1)]],
            [("alert-silences-version", "data", 1)],
        )
        again = post(
            client,
            app,
            "update_silences",
            [out("alert-silences-list", "children")],
            [("alert-silences-version", "data", 2), ("alert-rules-version", "data", 0)],
        )
        assert "Bảo trì trạm bơm" not in json.dumps(again.json, ensure_ascii=False)
