"""Access control through the Flask test client: the guard, sessions, cookies, throttling, bad input and
forged callbacks for every pair of sectors (enumerated from Dash's own callback registry)."""

from __future__ import annotations

import functools
import itertools
import json
import logging
import re
import secrets
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from dash import Dash, Input, Output, html
from flask import Flask

from config.datasets import SECTORS, load_datasets
from config.errors import ConfigError
from config.roles import ADMIN, MANAGE_USERS, VIEW
from config.settings import PROJECT_DIR, load_settings
from dashboards.context import get_context, set_context
from dashboards.routes import registered_pages
from dashboards.sectors import SECTOR_PAGES
from dashboards.security import install_security, secured
from data_sources.scheduler import Poller
from data_sources.snapshots import SQLiteSnapshotStore
from data_sources.users import audit_entries, create_schema, create_user
from data_sources.warehouse import create_warehouse_engine
from layouts import ids
from tests.conftest import FIXED_NOW
from tests.security_helpers import (
    attempt_login,
    forge,
    leaks,
    server_callbacks,
    sign_in,
    undeclared_callbacks,
)
from tests.test_web import make_settings

PASSWORD = "correct horse battery"
OWN_WARD = "19753"  # Phường Phú Xuân
OTHER_WARD = "19774"  # Phường Kim Long
MAX_FAILURES = 3
PAGE_PATHS = {page.sector: page.path for page in SECTOR_PAGES}
SECTOR_PAIRS = [(own, other) for own, other in itertools.permutations(SECTORS, 2) if other in PAGE_PATHS]
"""(head's own sector, forged sector): every ordered pair whose forged sector has a page today."""


@pytest.fixture(scope="module")
def secure_web(seeded_warehouse, tmp_path_factory):
    """The app over the seeded warehouse (polled once) with an account per role and a head per sector."""
    from app import create_app

    folder = tmp_path_factory.mktemp("secure_web")
    settings = replace(make_settings(folder, seeded_warehouse), login_max_failures=MAX_FAILURES)
    store = SQLiteSnapshotStore(folder / "snapshots.db")
    warehouse = create_warehouse_engine(seeded_warehouse)
    Poller(load_datasets(settings.datasets_file), warehouse, store, lambda: FIXED_NOW).poll_all()
    app = create_app(settings, store=store, clock=lambda: FIXED_NOW)
    app_db = create_warehouse_engine(settings.app_db_url)
    for role in ("leader", "operator", "admin"):
        create_user(app_db, role, PASSWORD, role)
    for sector in SECTORS:
        create_user(app_db, f"{sector}_head", PASSWORD, "department_head", sectors=(sector,))
    create_user(app_db, "ward_head", PASSWORD, "department_head", sectors=("feedback",), wards=(OWN_WARD,))
    return SimpleNamespace(app=app, settings=settings, app_db=app_db)


def audit_actions_of(app_db, username: str) -> list[str]:
    """Actions recorded for ``username``, oldest first."""
    return [e.action for e in reversed(audit_entries(app_db, username=username, limit=500))]


def write_config(folder: Path, extra: str = "") -> Path:
    """A minimal ioc.toml (no secret) with ``extra`` lines appended."""
    config = folder / "ioc.toml"
    config.write_text(
        '[ioc]\nprovince_code = "46"\nwarehouse_url = "sqlite:///w.db"\napp_db_url = "sqlite:///a.db"\n'
        f'snapshot_url = "sqlite:///s.db"\n{extra}'
    )
    return config


def bare_server(folder: Path, **options) -> tuple[Flask, object]:
    """A plain Flask server with only the security layer installed (routes can still be added)."""
    server = Flask(f"bare_{secrets.token_hex(3)}")
    server.secret_key = secrets.token_urlsafe(48)
    app_db = create_warehouse_engine(f"sqlite:///{folder / 'app.db'}")
    create_schema(app_db)
    install_security(server, app_db, idle_minutes=30, secure_cookies=False, **options)
    return server, app_db


class TestCallbackRegistry:
    def test_an_undeclared_callback_is_found_through_wrappers(self):
        """The check behind tests/test_web.py::TestLoginGuard::test_every_registered_callback_declares_a_permission."""
        app = Dash(__name__)
        app.layout = html.Div([html.Button(id="b"), html.Div(id="open"), html.Div(id="closed"), html.Div(id="both")])

        def logged(function):
            @functools.wraps(function)
            def wrapper(*args):
                return function(*args)

            return wrapper

        app.callback(Output("open", "children"), Input("b", "n_clicks"))(lambda n: n)
        app.callback(Output("closed", "children"), Input("b", "n_clicks"))(secured(VIEW)(lambda n: n))
        app.callback(Output("both", "children"), Input("b", "n_clicks"))(logged(secured(VIEW)(lambda n: n)))
        assert undeclared_callbacks(app) == ["open.children"]

    def test_admin_callbacks_need_manage_users(self, secure_web):
        admin_callbacks = [cb for cb in server_callbacks(secure_web.app) if cb.key.startswith(("admin-", "..admin"))]
        audit_callbacks = [cb for cb in server_callbacks(secure_web.app) if "audit-table" in cb.key]
        assert len(admin_callbacks) == 4 and len(audit_callbacks) == 1
        assert all(cb.permission == (MANAGE_USERS, None) for cb in admin_callbacks + audit_callbacks)


class TestGuard:
    def test_every_dash_endpoint_answers_401_json_without_a_session(self, secure_web):
        client = secure_web.app.server.test_client()
        endpoints = [
            rule
            for rule in secure_web.app.server.url_map.iter_rules()
            if rule.rule.startswith(("/_dash-", "/_reload-hash")) and "component-suites" not in rule.rule
        ]
        assert {r.rule for r in endpoints} >= {"/_dash-layout", "/_dash-dependencies", "/_dash-update-component"}
        for rule in endpoints:
            method = "POST" if "POST" in rule.methods else "GET"
            response = client.open(rule.rule, method=method, json={} if method == "POST" else None)
            assert response.status_code == 401, rule.rule
            assert response.is_json and "Location" not in response.headers, rule.rule

    def test_every_server_callback_answers_401_without_a_session(self, secure_web):
        client = secure_web.app.server.test_client()
        for cb in server_callbacks(secure_web.app):
            response = forge(client, cb, {"url.pathname": "/", "url.search": ""})
            assert response.status_code == 401 and not leaks(response), cb.key

    def test_every_page_redirects_to_the_login_form_without_a_session(self, secure_web):
        client = secure_web.app.server.test_client()
        paths = ["/", *PAGE_PATHS.values(), *(p.path for p in registered_pages()), "/no-such-page", "/static/x"]
        assert "/admin/users" in paths and "/admin/audit" in paths
        for path in paths:
            response = client.get(path)
            assert response.status_code == 302, path
            assert response.headers["Location"].startswith(f"/login?next={path}"), path

    def test_only_login_health_and_static_assets_are_public(self, secure_web):
        client = secure_web.app.server.test_client()
        assert client.get("/login").status_code == 200
        assert client.get("/healthz").text == "ok"
        assert client.get("/assets/style.css").status_code == 200


class TestForgedCallbacks:
    @pytest.mark.parametrize(("own", "other"), SECTOR_PAIRS, ids=[f"{a}-head-forges-{b}" for a, b in SECTOR_PAIRS])
    def test_department_head_forging_another_sectors_callbacks_gets_403_and_no_data(self, secure_web, own, other):
        head = sign_in(secure_web.app, f"{own}_head", PASSWORD)
        leader = sign_in(secure_web.app, "leader", PASSWORD)
        values = {"url.pathname": PAGE_PATHS[other], "url.search": "?window=7d", "snapshot-versions.data": {}}
        forged = [cb for cb in server_callbacks(secure_web.app) if cb.reads("url.pathname")]
        assert len(forged) >= 6, "page, refresh, navigation and every sector card read the path"
        for cb in forged:
            control = forge(leader, cb, values)
            assert control.status_code in (200, 204), f"{cb.key}: the leader's identical request must pass"
            response = forge(head, cb, values)
            assert response.status_code == 403, cb.key
            assert not leaks(response), cb.key
            assert response.json == {
                "error": "forbidden",
                "message": "Bạn không có quyền xem nội dung này.",
                "home": "Về trang tổng quan",
            }, "a sentence for the person, nothing of the data"

    def test_ward_restricted_head_forging_another_ward_gets_403_and_no_data(self, secure_web):
        head = sign_in(secure_web.app, "ward_head", PASSWORD)
        forged = [cb for cb in server_callbacks(secure_web.app) if cb.reads("url.search") and cb.reads("url.pathname")]
        assert any("records-table" in cb.key for cb in forged), "the records drill-down is among them"
        for cb in forged:
            own = forge(head, cb, {"url.pathname": "/feedback", "url.search": f"?window=30d&ward={OWN_WARD}"})
            assert own.status_code in (200, 204), f"{cb.key}: the head's own ward must pass"
            other = forge(head, cb, {"url.pathname": "/feedback", "url.search": f"?window=30d&ward={OTHER_WARD}"})
            assert other.status_code == 403, cb.key
            assert not leaks(other), cb.key

    def test_records_of_a_ward_outside_scope_are_refused_while_own_ward_records_are_served(self, secure_web):
        head = sign_in(secure_web.app, "ward_head", PASSWORD)
        records = next(cb for cb in server_callbacks(secure_web.app) if "records-table.data" in cb.key)
        own = forge(head, records, {"url.pathname": "/feedback", "url.search": f"?window=30d&ward={OWN_WARD}"})
        assert own.status_code == 200 and own.json["response"]["records-table"]["data"], "own ward's records shown"
        other = forge(head, records, {"url.pathname": "/feedback", "url.search": f"?window=30d&ward={OTHER_WARD}"})
        assert other.status_code == 403 and not leaks(other)

    @pytest.mark.parametrize("username", ["leader", "operator", "feedback_head", "ward_head"])
    def test_non_admins_forging_admin_callbacks_get_403_and_no_data(self, secure_web, username):
        client = sign_in(secure_web.app, username, PASSWORD)
        admin_client = sign_in(secure_web.app, "admin", PASSWORD)
        forged = [cb for cb in server_callbacks(secure_web.app) if cb.permission == (MANAGE_USERS, None)]
        assert len(forged) == 5
        for cb in forged:
            response = forge(client, cb, {"admin-edit-user.value": "admin"}, changed=[f"{cb.inputs[0][0]}.n_clicks"])
            assert response.status_code == 403, cb.key
            assert not leaks(response), cb.key
            assert "admin" not in response.get_data(as_text=True).replace("forbidden", "")
        listing = forge(admin_client, forged[0])
        assert listing.status_code == 200 and "ward_head" in listing.get_data(as_text=True)

    def test_department_head_navigation_lists_only_their_sector_and_no_admin_page(self, secure_web):
        head = sign_in(secure_web.app, "feedback_head", PASSWORD)
        page = next(cb for cb in server_callbacks(secure_web.app) if cb.key.startswith("..page-content"))
        nav = forge(head, page, {"url.pathname": "/", "url.search": ""}).json["response"]["nav"]["children"]
        hrefs = [link["props"]["href"] for link in nav]
        assert hrefs[:2] == ["/", "/feedback"]
        assert not set(hrefs) & {path for sector, path in PAGE_PATHS.items() if sector != "feedback"}
        admin_only = {p.path for p in registered_pages() if p.permission == MANAGE_USERS}
        assert admin_only and not set(hrefs) & admin_only
        admin = forge(head, page, {"url.pathname": "/admin/users", "url.search": ""})
        assert admin.status_code == 403 and not leaks(admin)


class TestSessions:
    def test_logout_is_a_post_with_csrf_and_ends_the_session_everywhere(self, secure_web):
        client = sign_in(secure_web.app, "operator", PASSWORD)
        copied = secure_web.app.server.test_client()
        copied.set_cookie("session", client.get_cookie("session").value)
        copied.csrf = client.csrf
        overview = next(cb for cb in server_callbacks(secure_web.app) if cb.key == "overview-tiles.children")
        assert forge(copied, overview).status_code == 200, "a copied cookie works while the session is open"
        assert client.get("/logout").status_code == 405, "no logout by GET (a link or image on any site)"
        assert client.post("/logout").status_code == 400, "no logout without the CSRF token"
        assert forge(client, overview).status_code == 200, "still signed in after the refused logout"
        response = client.post("/logout", data={"csrf_token": client.csrf})
        assert response.status_code == 302 and response.headers["Location"] == "/login"
        assert forge(client, overview).status_code == 401
        assert forge(copied, overview).status_code == 401, "the session ended on the server, not just in one browser"
        assert audit_actions_of(secure_web.app_db, "operator")[-2:] == ["login", "logout"]

    def test_the_shell_logout_button_posts_the_csrf_token(self, secure_web):
        client = sign_in(secure_web.app, "leader", PASSWORD)
        forms = []

        def walk(node):
            if isinstance(node, dict):
                if node.get("type") == "Form":
                    forms.append(node["props"])
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(client.get("/_dash-layout").json)
        logout = [form for form in forms if form.get("action") == "/logout"]
        assert len(logout) == 1 and logout[0]["method"] == "post"
        button = logout[0]["children"]["props"]
        assert button["type"] == "submit" and button["name"] == "csrf_token"
        assert button["value"] == client.csrf or len(button["value"]) > 20
        response = client.post("/logout", data={"csrf_token": button["value"]})
        assert response.status_code == 302 and response.headers["Location"] == "/login"
        assert client.get("/_dash-layout").status_code == 401, "the button's token signs out"

    def test_inactivity_ends_the_session_and_refresh_ticks_do_not_count_as_activity(self, secure_web, caplog):
        client = sign_in(secure_web.app, "leader", PASSWORD)
        tick = next(cb for cb in server_callbacks(secure_web.app) if cb.key.startswith("..snapshot-versions"))
        idle_seconds = secure_web.settings.session_idle_minutes * 60
        with client.session_transaction() as session:
            session["last_active"] -= idle_seconds - 60  # one minute of activity left
            before = session["last_active"]
        values = {"url.pathname": "/", "refresh-tick.n_intervals": 5}
        assert forge(client, tick, values, changed=[f"{ids.REFRESH}.n_intervals"]).status_code == 200
        with client.session_transaction() as session:
            assert session["last_active"] == before, "a refresh tick is not activity"
            session["last_active"] -= 120  # past the limit
        with caplog.at_level(logging.INFO, logger="dashboards.security"):
            response = forge(client, tick, values, changed=[f"{ids.REFRESH}.n_intervals"])
        assert response.status_code == 401 and response.json == {"error": "session expired"}
        assert any("expired" in r.getMessage() for r in caplog.records)
        assert "hết hạn" in client.get("/login").text, "the login page says why"
        assert audit_actions_of(secure_web.app_db, "leader")[-1] == "session_expired"

    def test_cards_rebuilt_for_new_snapshot_versions_do_not_count_as_activity(self, secure_web):
        client = sign_in(secure_web.app, "leader", PASSWORD)
        card = next(cb for cb in server_callbacks(secure_web.app) if cb.key == "kpi-row.children")
        values = {"snapshot-versions.data": {"versions": {}}, "url.search": "?window=7d", "url.pathname": "/feedback"}
        with client.session_transaction() as session:
            session["last_active"] -= 600
            before = session["last_active"]
        assert forge(client, card, values, changed=["snapshot-versions.data"]).status_code == 200
        with client.session_transaction() as session:
            assert session["last_active"] == before, "a card refreshed by new data is not activity"
        assert forge(client, card, values, changed=["url.search"]).status_code == 200
        with client.session_transaction() as session:
            assert session["last_active"] > before, "changing the view is"

    def test_a_tampered_session_cookie_is_refused_with_a_log_line(self, secure_web, caplog):
        client = sign_in(secure_web.app, "leader", PASSWORD)
        value = client.get_cookie("session").value
        payload, _, signature = value.rpartition(".")
        client.set_cookie("session", f"{payload}.{signature[::-1]}")
        with caplog.at_level(logging.WARNING, logger="dashboards.security"):
            response = client.get("/_dash-layout")
        assert response.status_code == 401 and response.json == {"error": "invalid session cookie"}
        assert "Traceback" not in response.text
        assert any("does not verify" in r.getMessage() for r in caplog.records)
        forged_elsewhere = secure_web.app.server.test_client()
        other = Flask("other")
        other.secret_key = secrets.token_urlsafe(48)
        serializer = secure_web.app.server.session_interface.get_signing_serializer(other)
        forged_elsewhere.set_cookie("session", serializer.dumps({"_user_id": "x", "last_active": 9e12}))
        assert forged_elsewhere.get("/_dash-layout").status_code == 401, "a cookie signed with another key"

    def test_disabling_or_resetting_an_account_ends_its_open_sessions(self, secure_web):
        from data_sources.users import set_disabled, set_password

        create_user(secure_web.app_db, "shift_worker", PASSWORD, "operator")
        overview = next(cb for cb in server_callbacks(secure_web.app) if cb.key == "overview-tiles.children")
        client = sign_in(secure_web.app, "shift_worker", PASSWORD)
        set_password(secure_web.app_db, "shift_worker", "a new long password")
        assert forge(client, overview).status_code == 401
        client = sign_in(secure_web.app, "shift_worker", "a new long password")
        set_disabled(secure_web.app_db, "shift_worker", True)
        assert forge(client, overview).status_code == 401
        refused = attempt_login(secure_web.app.server.test_client(), "shift_worker", "a new long password")
        assert refused.status_code == 403 and "khóa" in refused.text
        assert audit_actions_of(secure_web.app_db, "shift_worker")[-1] == "login_disabled"


class TestCookies:
    @staticmethod
    def cookie_headers(response) -> dict[str, str]:
        return {h.split("=", 1)[0]: h for h in response.headers.getlist("Set-Cookie")}

    def test_session_cookie_is_httponly_samesite_and_not_secure_over_plain_http(self, secure_web):
        client = secure_web.app.server.test_client()
        response = attempt_login(client, "leader", PASSWORD)
        session_cookie = self.cookie_headers(response)["session"]
        assert "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie
        assert "Secure" not in session_cookie
        csrf_cookie = self.cookie_headers(client.get("/"))["_csrf_token"]
        assert "SameSite=Strict" in csrf_cookie, "read by the renderer for its header, so not HttpOnly"

    def test_cookies_are_secure_over_https(self, secure_web):
        client = secure_web.app.server.test_client()
        https = {"base_url": "https://ioc.example", "headers": {"Referer": "https://ioc.example/login"}}
        response = attempt_login(client, "leader", PASSWORD, **https)
        assert "Secure" in self.cookie_headers(response)["session"]
        assert "Secure" in self.cookie_headers(client.get("/", **https))["_csrf_token"]

    def test_cookies_are_secure_when_configured_even_behind_plain_http(self, secure_web, monkeypatch):
        monkeypatch.setitem(secure_web.app.server.config, "SESSION_COOKIE_SECURE", True)
        client = secure_web.app.server.test_client()
        response = attempt_login(client, "leader", PASSWORD)
        assert "Secure" in self.cookie_headers(response)["session"]
        assert "Secure" in self.cookie_headers(client.get("/"))["_csrf_token"]

    def test_secure_cookies_setting_reaches_the_server(self, tmp_path, seeded_warehouse):
        from app import create_app

        settings = replace(make_settings(tmp_path, seeded_warehouse), secure_cookies=True)
        shared = get_context()  # create_app installs its own process context: put the module's back after
        try:
            app = create_app(settings, store=SQLiteSnapshotStore(tmp_path / "s.db"))
        finally:
            set_context(shared)
        assert app.server.config["SESSION_COOKIE_SECURE"]


class TestSecretKey:
    def test_the_signing_key_is_the_configured_one(self, secure_web):
        assert secure_web.app.server.secret_key == secure_web.settings.secret_key
        assert len(secure_web.settings.secret_key) >= 32

    def test_start_up_stops_without_a_secret_naming_the_key(self, tmp_path, monkeypatch):
        monkeypatch.delenv("IOC_SECRET_KEY", raising=False)
        config = write_config(tmp_path)
        with pytest.raises(ConfigError, match="secret_key_file: is required"):
            load_settings(config)
        (tmp_path / "key").write_text("short")
        config.write_text(config.read_text() + f'secret_key_file = "{tmp_path / "key"}"\n')
        with pytest.raises(ConfigError, match="32 characters or more"):
            load_settings(config)
        monkeypatch.setenv("IOC_SECRET_KEY", "s" * 40)
        assert load_settings(config).secret_key == "s" * 40

    def test_no_secret_key_is_a_constant_in_the_code(self):
        assignment = re.compile(r"""(secret_key|SECRET_KEY)["'\]]*\s*[:=]\s*[rbf]?["'][^"']+["']""")
        offenders = []
        for path in PROJECT_DIR.rglob("*.py"):
            relative = path.relative_to(PROJECT_DIR)
            if relative.parts[0] in ("tests", ".venv", "venv", "var", "build"):
                continue
            if assignment.search(path.read_text(encoding="utf-8")):
                offenders.append(str(relative))
        assert not offenders


class TestThrottling:
    def test_guessing_from_one_address_blocks_that_address_but_not_the_real_user(self, secure_web):
        create_user(secure_web.app_db, "duty_operator", PASSWORD, "operator")
        attacker = secure_web.app.server.test_client()
        for attempt in range(1, MAX_FAILURES + 1):
            response = attempt_login(attacker, "duty_operator", f"guess {attempt}", address="203.0.113.9")
            assert response.status_code == (429 if attempt == MAX_FAILURES else 401)
        assert response.headers["Retry-After"] == "30"
        assert "quá nhiều lần" in response.text
        blocked = attempt_login(attacker, "duty_operator", PASSWORD, address="203.0.113.9")
        assert blocked.status_code == 429, "while blocked even the right password is not checked"
        real_user = attempt_login(secure_web.app.server.test_client(), "duty_operator", PASSWORD, address="10.46.1.20")
        assert real_user.status_code == 302, "the duty operator at their own desk still signs in"
        actions = audit_actions_of(secure_web.app_db, "duty_operator")
        assert actions == ["login_failed"] * MAX_FAILURES + ["login_blocked", "login_throttled", "login"]
        rows = audit_entries(secure_web.app_db, username="duty_operator", limit=10)
        assert rows[0].address == "10.46.1.20" and rows[1].address == "203.0.113.9"

    def test_spoofed_forwarded_for_headers_do_not_escape_the_block(self, secure_web):
        client = secure_web.app.server.test_client()
        for attempt in range(MAX_FAILURES + 2):
            token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
            response = client.post(
                "/login",
                data={"username": "leader", "password": "wrong", "csrf_token": token},
                headers={"X-Forwarded-For": f"198.51.100.{attempt}"},
                environ_base={"REMOTE_ADDR": "203.0.113.77"},
            )
        assert response.status_code == 429

    def test_unknown_accounts_are_throttled_exactly_like_real_ones(self, secure_web):
        statuses = {}
        for name in ("leader", "no_such_person"):
            client = secure_web.app.server.test_client()
            statuses[name] = [
                attempt_login(client, name, "wrong", address="203.0.113.50").status_code
                for _ in range(MAX_FAILURES + 1)
            ]
        assert statuses["leader"] == statuses["no_such_person"] == [401] * (MAX_FAILURES - 1) + [429, 429]

    def test_admin_unlock_on_the_admin_page_lets_the_blocked_address_in(self, secure_web):
        create_user(secure_web.app_db, "locked_out", PASSWORD, "leader")
        client = secure_web.app.server.test_client()
        for _ in range(MAX_FAILURES):
            attempt_login(client, "locked_out", "wrong", address="10.46.2.2")
        assert attempt_login(client, "locked_out", PASSWORD, address="10.46.2.2").status_code == 429
        admin = sign_in(secure_web.app, "admin", PASSWORD)
        change = next(cb for cb in server_callbacks(secure_web.app) if cb.key.startswith("..admin-edit-message"))
        response = forge(
            admin,
            change,
            {"admin-edit-user.value": "locked_out", "admin-edit-unlock.n_clicks": 1},
            changed=["admin-edit-unlock.n_clicks"],
        )
        assert response.status_code == 200
        shown = response.json["response"]["admin-edit-message"]["children"]["props"]["children"]
        assert shown == "Đã gỡ chặn đăng nhập của locked_out (1 địa chỉ)"
        assert attempt_login(client, "locked_out", PASSWORD, address="10.46.2.2").status_code == 302
        unlock = audit_entries(secure_web.app_db, username="admin", action="user_unlocked", limit=1)[0]
        assert unlock.detail.startswith("locked_out")

    def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(self, tmp_path):
        server, app_db = bare_server(tmp_path, trusted_proxy_count=1)
        client = server.test_client()
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
        client.post(
            "/login",
            data={"username": "x", "password": "y", "csrf_token": token},
            headers={"X-Forwarded-For": "198.51.100.7"},
            environ_base={"REMOTE_ADDR": "10.0.0.1"},
        )
        assert audit_entries(app_db, username="x")[0].address == "198.51.100.7"


class TestBadInput:
    def test_unknown_user_and_wrong_password_get_the_same_refusal_and_distinct_log_lines(self, secure_web, caplog):
        with caplog.at_level(logging.INFO, logger="dashboards.security"):
            unknown = attempt_login(secure_web.app.server.test_client(), "nobody_here", "whatever", "192.0.2.1")
            wrong = attempt_login(secure_web.app.server.test_client(), "leader", "whatever", "192.0.2.2")
        assert unknown.status_code == wrong.status_code == 401
        assert "Sai tên đăng nhập hoặc mật khẩu" in unknown.text and "Sai tên đăng nhập hoặc mật khẩu" in wrong.text
        messages = [r.getMessage() for r in caplog.records]
        assert any("'nobody_here'" in m and "unknown account" in m for m in messages)
        assert any("'leader'" in m and "wrong password" in m for m in messages)
        assert audit_entries(secure_web.app_db, username="nobody_here")[0].detail == "unknown account"

    def test_empty_login_form_is_refused_with_a_message(self, secure_web):
        client = secure_web.app.server.test_client()
        response = attempt_login(client, "", "")
        assert response.status_code == 400 and "Vui lòng nhập" in response.text

    @pytest.mark.parametrize(
        ("body", "content_type", "expected"),
        [
            (b"{not json", "application/json", "the body is not a JSON object"),
            (b"[1, 2]", "application/json", "the body is not a JSON object"),
            (b'{"output": "no-such.children", "outputs": {}, "inputs": []}', "application/json", "no callback"),
            (b'{"output": "kpi-row.children", "outputs": {}, "inputs": []}', "application/json", "'inputs' must list"),
            (
                b'{"output": "..freshness-badge.children...freshness-badge.className..", "outputs": [], "inputs": []}',
                "application/json",
                "no callback",
            ),
        ],
        ids=["not-json", "not-an-object", "unknown-output", "wrong-inputs", "clientside-output"],
    )
    def test_malformed_callback_bodies_get_400_and_a_log_line(self, secure_web, caplog, body, content_type, expected):
        client = sign_in(secure_web.app, "leader", PASSWORD)
        with caplog.at_level(logging.WARNING, logger="dashboards.security"):
            response = client.post(
                "/_dash-update-component", data=body, content_type=content_type, headers={"X-CSRFToken": client.csrf}
            )
        assert response.status_code == 400
        assert expected in response.json["error"]
        assert "Traceback" not in response.text
        assert any("malformed callback request" in r.getMessage() for r in caplog.records)

    def test_inputs_that_do_not_match_the_callback_get_400(self, secure_web):
        client = sign_in(secure_web.app, "leader", PASSWORD)
        body = {
            "output": "kpi-row.children",
            "outputs": {"id": "kpi-row", "property": "children"},
            "inputs": [{"id": "url", "property": "pathname", "value": "/"}, {"id": "x", "property": "y"}],
            "state": [{"id": "url", "property": "pathname", "value": "/feedback"}],
        }
        response = client.post("/_dash-update-component", json=body, headers={"X-CSRFToken": client.csrf})
        assert response.status_code == 400 and "does not match" in response.json["error"]

    def test_oversized_callback_body_gets_413_and_a_log_line(self, secure_web, caplog):
        client = sign_in(secure_web.app, "leader", PASSWORD)
        padding = "x" * (300 * 1024)
        with caplog.at_level(logging.WARNING, logger="dashboards.security"):
            response = client.post(
                "/_dash-update-component",
                json={"output": "kpi-row.children", "padding": padding},
                headers={"X-CSRFToken": client.csrf},
            )
        assert response.status_code == 413 and response.json["error"] == "request body too large"
        assert response.json["message"] == "Yêu cầu quá lớn nên đã bị từ chối."
        assert any("413" in r.getMessage() for r in caplog.records)

    def test_an_internal_error_answers_500_with_a_reference_and_no_trace(self, tmp_path, caplog):
        server, app_db = bare_server(tmp_path)

        @server.route("/boom")
        def boom():
            raise RuntimeError("connection string postgres://secret@db")

        create_user(app_db, "someone", PASSWORD, "leader")
        client = sign_in(SimpleNamespace(server=server), "someone", PASSWORD)
        with caplog.at_level(logging.ERROR, logger="dashboards.security"):
            response = client.get("/boom")
        assert response.status_code == 500
        assert re.fullmatch(r"internal error \(reference [0-9a-f]{8}\)", response.text)
        reference = response.text.split()[-1].rstrip(")")
        assert any(reference in r.getMessage() and r.exc_info for r in caplog.records), "the log keeps the trace"

    def test_an_open_redirect_after_login_is_refused(self, secure_web):
        client = secure_web.app.server.test_client()
        for target in ("//evil.example", "/\\evil.example", "https://evil.example"):
            token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
            response = client.post(
                "/login", data={"username": "leader", "password": PASSWORD, "csrf_token": token, "next": target}
            )
            assert response.headers["Location"] == "/", target


class TestAdminRole:
    def test_the_admin_role_holds_manage_users(self):
        from config.roles import has_permission

        assert has_permission(ADMIN, MANAGE_USERS)
        assert not any(has_permission(role, MANAGE_USERS) for role in ("leader", "department_head", "operator"))


def admin_callback(app, prefix: str):
    """The admin callback whose output key starts with ``prefix``."""
    return next(cb for cb in server_callbacks(app) if cb.key.startswith(prefix))


def shown_message(response, output: str) -> str:
    """Text of an admin form's outcome line."""
    return response.json["response"][output]["children"]["props"]["children"]


class TestAdminPages:
    def create(self, client, app, **fields):
        values = {f"admin-create-{k}.value": v for k, v in fields.items()} | {"admin-create-submit.n_clicks": 1}
        return forge(client, admin_callback(app, "..admin-create-message"), values, ["admin-create-submit.n_clicks"])

    def test_an_admin_creates_a_user_who_can_then_sign_in_and_the_change_is_audited(self, secure_web):
        admin = sign_in(secure_web.app, "admin", PASSWORD)
        refused = self.create(admin, secure_web.app, username="moi", role="department_head", password="short")
        assert shown_message(refused, "admin-create-message") == "Trưởng phòng cần được giao ít nhất một lĩnh vực"
        refused = self.create(
            admin, secure_web.app, username="moi", role="department_head", sectors=["health"], password="short"
        )
        assert shown_message(refused, "admin-create-message") == "Mật khẩu cần ít nhất 10 ký tự"
        assert refused.json["response"]["admin-create-password"]["value"] == "", "the password field is cleared"
        assert (
            self.create(admin, secure_web.app, username="moi", password=PASSWORD).json["response"][
                "admin-create-message"
            ]["children"]["props"]["children"]
            == "Vui lòng chọn vai trò"
        )
        done = self.create(
            admin,
            secure_web.app,
            username="moi",
            name="Trưởng phòng Y tế",
            role="department_head",
            sectors=["health"],
            wards=[OWN_WARD],
            password=PASSWORD,
        )
        assert shown_message(done, "admin-create-message") == "Đã tạo tài khoản moi"
        taken = self.create(admin, secure_web.app, username="moi", role="leader", password=PASSWORD)
        assert shown_message(taken, "admin-create-message") == "Tên đăng nhập moi đã tồn tại"
        assert sign_in(secure_web.app, "moi", PASSWORD)
        created = audit_entries(secure_web.app_db, username="admin", action="user_created", limit=1)[0]
        assert created.detail == f"moi role=department_head sectors=health wards={OWN_WARD}"

    def test_an_admin_changes_scope_resets_a_password_and_disables_but_not_themselves(self, secure_web):
        create_user(secure_web.app_db, "chuyen", PASSWORD, "department_head", sectors=("traffic",))
        admin = sign_in(secure_web.app, "admin", PASSWORD)
        change = admin_callback(secure_web.app, "..admin-edit-message")

        def press(button: str, **fields):
            values = {f"admin-edit-{k}.value": v for k, v in fields.items()} | {f"admin-edit-{button}.n_clicks": 1}
            response = forge(admin, change, values, [f"admin-edit-{button}.n_clicks"])
            assert response.status_code == 200
            return shown_message(response, "admin-edit-message")

        assert press("save", user="chuyen", role="department_head", sectors=["traffic", "feedback"], wards=[]) == (
            "Đã lưu thay đổi của chuyen"
        )
        head = sign_in(secure_web.app, "chuyen", PASSWORD)
        records = next(cb for cb in server_callbacks(secure_web.app) if "records-table.data" in cb.key)
        assert forge(head, records, {"url.pathname": "/feedback", "url.search": "?ward=19753"}).status_code == 200
        assert press("save", user="chuyen", role="department_head", sectors=["traffic"], wards=[]).startswith("Đã lưu")
        refused = forge(head, records, {"url.pathname": "/feedback", "url.search": "?ward=19753"})
        assert refused.status_code == 403, "a narrowed scope applies to the open session at once"
        assert press("reset", user="chuyen", password="short") == "Mật khẩu cần ít nhất 10 ký tự"
        assert press("reset", user="chuyen", password="a fresh long password").startswith("Đã đặt lại mật khẩu")
        assert forge(head, records, {"url.pathname": "/traffic"}).status_code == 401, "reset ends the sessions"
        assert press("disable", user="admin") == "Không thể tự khóa tài khoản của chính mình"
        assert press("save", user="admin", role="operator") == "Không thể tự bỏ quyền quản trị của chính mình"
        assert press("disable", user="chuyen") == "Đã khóa tài khoản chuyen; mọi phiên của tài khoản đã kết thúc"
        assert attempt_login(secure_web.app.server.test_client(), "chuyen", "a fresh long password").status_code == 403
        assert press("enable", user="chuyen") == "Đã mở khóa tài khoản chuyen"
        assert press("save", user="nobody_at_all", role="leader") == "Không có tài khoản nobody_at_all"
        details = [e.detail for e in audit_entries(secure_web.app_db, username="admin", contains="chuyen", limit=10)]
        assert details[::-1] == [
            "chuyen: sectors traffic->traffic,feedback",
            "chuyen: sectors traffic,feedback->traffic",
            "chuyen",
            "chuyen",
            "chuyen",
        ]
        actions = [e.action for e in audit_entries(secure_web.app_db, username="admin", contains="chuyen", limit=10)]
        assert actions[::-1] == ["user_updated", "user_updated", "password_reset", "user_disabled", "user_enabled"]

    def test_the_users_table_shows_role_scope_status_and_sessions(self, secure_web):
        admin = sign_in(secure_web.app, "admin", PASSWORD)
        listing = forge(admin, admin_callback(secure_web.app, "..admin-users-table"))
        rows = listing.json["response"]["admin-users-table"]["children"]["props"]["children"][1]["props"]["children"]
        by_name = {
            row["props"]["data-username"]: [c["props"]["children"] for c in row["props"]["children"]] for row in rows
        }
        assert by_name["ward_head"][2:5] == ["Trưởng phòng", "Phản ánh hiện trường · Phường Phú Xuân", "Đang hoạt động"]
        assert by_name["leader"][3] == "Tất cả lĩnh vực"
        assert int(by_name["admin"][5]) >= 1, "the admin's own session is open"

    def test_the_audit_viewer_filters_and_pages(self, secure_web):
        from data_sources.users import audit

        for index in range(60):
            audit(secure_web.app_db, "threshold_changed", username="operator", detail=f"traffic speed #{index}")
        admin = sign_in(secure_web.app, "admin", PASSWORD)
        viewer = admin_callback(secure_web.app, "..audit-table")
        values = {"audit-who.value": "operator", "audit-action.value": "threshold_changed"}
        first = forge(admin, viewer, values).json["response"]
        rows = first["audit-table"]["data"]
        assert len(rows) == 50 and rows[0]["detail"] == "traffic speed #59" and rows[0]["who"] == "operator"
        assert rows[0]["action"] == "threshold_changed", "actions other features add show as recorded"
        assert first["audit-page-label"]["children"] == "Trang 1"
        values |= {"audit-cursor.data": first["audit-cursor"]["data"], "audit-next.n_clicks": 1}
        second = forge(admin, viewer, values, ["audit-next.n_clicks"]).json["response"]
        assert [r["detail"] for r in second["audit-table"]["data"]] == [f"traffic speed #{i}" for i in range(9, -1, -1)]
        assert second["audit-page-label"]["children"] == "Trang 2"
        logins = forge(admin, viewer, {"audit-action.value": "login"}).json["response"]["audit-table"]["data"]
        assert logins[0]["action"] == "Đăng nhập" and logins[0]["who"] == "admin"
        empty = forge(admin, viewer, {"audit-dates.start_date": "2020-01-01", "audit-dates.end_date": "2020-01-31"})
        assert empty.json["response"]["audit-page-label"]["children"] == "Không có bản ghi nào khớp bộ lọc"
        bad = forge(admin, viewer, {"audit-dates.start_date": "yesterday"})
        assert bad.status_code == 400 and not leaks(bad)


class TestScopedFigures:
    def test_a_ward_restricted_heads_overview_tile_counts_only_their_wards(self, secure_web):
        from sqlalchemy import func, select

        from data_sources.demo.schema import OPEN_FEEDBACK_STATUSES, feedback_reports
        from layouts.i18n import format_number

        codes = get_context().old_codes_of(OWN_WARD)
        warehouse = create_warehouse_engine(secure_web.settings.warehouse_url)
        with warehouse.connect() as connection:
            in_ward = connection.execute(
                select(func.count()).where(
                    feedback_reports.c.status.in_(OPEN_FEEDBACK_STATUSES), feedback_reports.c.ward_code.in_(codes)
                )
            ).scalar()
            everywhere = connection.execute(
                select(func.count()).where(feedback_reports.c.status.in_(OPEN_FEEDBACK_STATUSES))
            ).scalar()
        assert 0 < in_ward < everywhere
        overview = next(cb for cb in server_callbacks(secure_web.app) if cb.key == "overview-tiles.children")

        def feedback_tile(username: str) -> str:
            tiles = forge(sign_in(secure_web.app, username, PASSWORD), overview).json["response"]["overview-tiles"]
            (tile,) = [t for t in tiles["children"] if t["props"]["id"]["dataset"] == "feedback"]
            return re.search(r'"children": "([^"]+)", "className": "kpi-value"', json.dumps(tile)).group(1)

        assert feedback_tile("ward_head") == format_number(in_ward, "vi")
        assert feedback_tile("leader") == format_number(everywhere, "vi")


class TestPersonalData:
    RECORDS_SEARCH = f"?window=30d&ward={OWN_WARD}"

    def records(self, secure_web, username: str) -> list[dict]:
        cb = next(cb for cb in server_callbacks(secure_web.app) if "records-table.data" in cb.key)
        client = sign_in(secure_web.app, username, PASSWORD)
        response = forge(client, cb, {"url.pathname": "/feedback", "url.search": self.RECORDS_SEARCH})
        return response.json["response"]["records-table"]["data"]

    def test_masked_by_default_and_unmasked_only_for_configured_roles_with_an_audit_row(self, secure_web, monkeypatch):
        context = get_context()
        assert all("•••" in (row["citizen_phone"] or "•••") for row in self.records(secure_web, "operator"))
        assert "unmasked_view" not in audit_actions_of(secure_web.app_db, "operator")
        monkeypatch.setattr(context, "settings", replace(context.settings, unmasked_roles=("operator",)))
        shown = self.records(secure_web, "operator")
        assert any(row["citizen_phone"] and "•••" not in row["citizen_phone"] for row in shown)
        assert all("•••" in (row["citizen_phone"] or "•••") for row in self.records(secure_web, "leader"))
        (entry,) = audit_entries(secure_web.app_db, username="operator", action="unmasked_view")
        assert entry.detail == f"feedback ward={OWN_WARD} window=30d page=1 rows={len(shown)}"
        assert "unmasked_view" not in audit_actions_of(secure_web.app_db, "leader")


def test_a_maximum_login_delay_below_the_first_delay_stops_start_up(tmp_path, monkeypatch):
    monkeypatch.setenv("IOC_SECRET_KEY", "s" * 40)
    config = write_config(tmp_path, "login_delay_seconds = 60\nlogin_max_delay_seconds = 10\n")
    with pytest.raises(ConfigError, match="login_max_delay_seconds: must be at least login_delay_seconds"):
        load_settings(config)
