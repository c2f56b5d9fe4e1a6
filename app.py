"""IOC dashboard: the Flask server with the Dash app, and the command line that runs every process.

    python app.py demo      demo warehouse (created on first start), poller, simulator and web
    python app.py web       the web app only (production: gunicorn "app:create_server()")
    python app.py poller    the poller process (one per deployment)
    python app.py users ... create, list, reset-password, unlock, disable, enable accounts

The poller never runs inside a web worker: it is its own process.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import secrets
import signal
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

from dash import Dash, html
from flask import Flask, Response, redirect, request

from config.datasets import load_datasets
from config.errors import ConfigError
from config.roles import ROLES
from config.settings import PROJECT_DIR, Settings, load_settings
from data_sources.admin_units import crosswalk as unit_crosswalk
from data_sources.admin_units import current_units, legacy_units, pre_reform_crosswalk, validate_split_overrides
from data_sources.clock import Clock, system_clock
from data_sources.geo import WardLayer, prepare_ward_layer
from data_sources.population import load_population, load_population_sources
from data_sources.snapshots import SnapshotStore, open_snapshot_store
from data_sources.users import UserError, create_schema, create_user, get_user_by_name, list_users, set_language
from data_sources.warehouse import create_warehouse_engine

log = logging.getLogger("ioc")

DRILLDOWN_TIMEOUT_MS = 5_000
DEMO_DIR = PROJECT_DIR / "var"
DEMO_LOGINS = DEMO_DIR / "demo_logins.json"
DEMO_ACCOUNTS = (
    ("lanh_dao", "leader", (), "Lãnh đạo UBND"),
    ("truong_phong_phan_anh", "department_head", ("feedback",), "Trưởng phòng Phản ánh hiện trường"),
    ("van_hanh", "operator", (), "Cán bộ vận hành"),
    ("quan_tri", "admin", (), "Quản trị hệ thống"),
)


def create_app(
    settings: Settings | None = None, *, store: SnapshotStore | None = None, clock: Clock = system_clock
) -> Dash:
    """Build the Dash app on its own Flask server with the login guard installed."""
    from flask_wtf.csrf import generate_csrf

    from dashboards import all_pages  # noqa: F401  (registers every page and callback)
    from dashboards.context import AppContext, set_context
    from dashboards.export import blueprint as records_export
    from dashboards.registry import register_callbacks
    from dashboards.security import (
        LANGUAGE_COOKIE,
        PSEUDO_LANGUAGE_FLAG,
        current_account,
        install_callback_checks,
        install_security,
        request_language,
    )
    from data_sources.throttle import ThrottlePolicy
    from layouts.i18n import LANGUAGES, PSEUDO, t
    from layouts.shell import shell

    settings = settings or load_settings()
    catalogue = load_datasets(settings.datasets_file)
    store = store or open_snapshot_store(settings.snapshot_url)
    warehouse = create_warehouse_engine(settings.warehouse_url, statement_timeout_ms=DRILLDOWN_TIMEOUT_MS)
    app_db = create_warehouse_engine(settings.app_db_url)
    create_schema(app_db)
    units = current_units(settings.province_code)
    rule = _split_rule(settings)
    crosswalk = unit_crosswalk(settings.province_code, **rule)
    layer = _ward_layer(settings, units)
    set_context(
        AppContext(
            settings=settings,
            catalogue=catalogue,
            store=store,
            warehouse=warehouse,
            app_db=app_db,
            units=units,
            crosswalk=crosswalk,
            ward_geojson=layer.geojson,
            wards_approximate=layer.approximate,
            population=load_population(warehouse, settings.population_table, crosswalk),
            clock=clock,
            legacy=legacy_units(settings.province_code, **rule),
            pre_reform_crosswalk=pre_reform_crosswalk(settings.province_code, **rule),
            boundary_report=layer.report,
            population_sources=load_population_sources(warehouse, settings.population_table),
            split_rule=settings.split_rule,
        )
    )
    server = Flask(__name__)
    server.secret_key = settings.secret_key
    install_security(
        server,
        app_db,
        idle_minutes=settings.session_idle_minutes,
        secure_cookies=settings.secure_cookies,
        policy=ThrottlePolicy(
            settings.login_max_failures, settings.login_delay_seconds, settings.login_max_delay_seconds
        ),
        trusted_proxy_count=settings.trusted_proxy_count,
    )

    server.config[PSEUDO_LANGUAGE_FLAG] = settings.pseudo_language
    server.register_blueprint(records_export)

    @server.route("/lang/<code>")
    def switch_language(code: str) -> Response:
        if code not in LANGUAGES and not (code == PSEUDO and settings.pseudo_language):
            return Response("unknown language", status=404, mimetype="text/plain")
        account = current_account()
        if account is not None:
            set_language(app_db, account.id, code)
        response = redirect(_same_site_path(request.referrer, request.host))
        response.set_cookie(LANGUAGE_COOKIE, code, samesite="Lax", secure=settings.secure_cookies, httponly=True)
        return response

    app = Dash(
        __name__,
        server=server,
        assets_folder=str(PROJECT_DIR / "assets"),
        suppress_callback_exceptions=True,
        title="IOC",
        update_title=None,
    )

    def serve_layout():
        lang = request_language()
        account = current_account()
        label = account.display_name if account else ""
        if account is None:  # Dash validates the layout once outside any session
            return html.Div(t("login.required", lang))
        return shell(lang, label, settings.refresh_seconds, generate_csrf())

    app.layout = serve_layout
    plain_index = app.interpolate_index

    def localised_index(**parts: str) -> str:
        """The page shell in the reader's language: ``<html lang>`` (screen readers, hyphenation) and title."""
        lang = request_language()
        page = plain_index(**{**parts, "title": t("app.title", lang)})
        return page.replace("<html>", f'<html lang="{lang}">', 1)

    app.interpolate_index = localised_index
    register_callbacks(app)
    install_callback_checks(app)
    return app


def _split_rule(settings: Settings) -> dict:
    """The split-ward attribution rule, its overrides checked against the registry (bad ones stop start-up)."""
    overrides = settings.split_override_map
    problems = validate_split_overrides(settings.province_code, overrides)
    if problems:
        raise ConfigError(settings.source, "split_overrides", "; ".join(problems))
    return {"split_rule": settings.split_rule, "overrides": overrides}


def _ward_layer(settings: Settings, units) -> WardLayer:
    """The map's ward layer; a boundary path that cannot be read stops start-up naming the key."""
    try:
        layer = prepare_ward_layer(
            units,
            settings.boundaries_path,
            tolerance_m=settings.boundaries_tolerance_m,
            code_field=settings.boundaries_code_field,
            cache_dir=settings.boundaries_cache_dir,
        )
    except (OSError, ValueError) as error:
        raise ConfigError(settings.source, "boundaries_path", str(error)) from None
    log.info(
        "ward layer: %s, %d wards, %d bytes%s",
        "approximate" if layer.approximate else settings.boundaries_path,
        len(layer.codes),
        layer.size_bytes,
        " (from cache)" if layer.cached else "",
    )
    return layer


def _same_site_path(referrer: str | None, host: str) -> str:
    """The referring page's path when it is on this site, else the overview."""
    parts = urlsplit(referrer or "")
    if parts.netloc == host and parts.path.startswith("/") and not parts.path.startswith("//"):
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return "/"


def create_server() -> Flask:
    """WSGI entry point for gunicorn: ``gunicorn "app:create_server()"``."""
    return create_app().server


def _ensure_secret(settings_file_key: Path) -> None:
    if not settings_file_key.exists():
        settings_file_key.parent.mkdir(parents=True, exist_ok=True)
        settings_file_key.write_text(secrets.token_urlsafe(48), encoding="utf-8")
        settings_file_key.chmod(0o600)


def quality_rules(settings: Settings):
    """The province's outline and unit codes, for the poller's coordinate and ward-code checks (the
    outline is the union of the ward layer the maps draw, read from the boundary cache)."""
    from data_sources.quality import province_rules

    return province_rules(
        current_units(settings.province_code),
        settings.boundaries_path,
        frozenset(unit_crosswalk(settings.province_code)),
        tolerance_m=settings.boundaries_tolerance_m,
        code_field=settings.boundaries_code_field,
        cache_dir=settings.boundaries_cache_dir,
    )


def run_poller(settings: Settings) -> None:
    """Run the poller until SIGINT/SIGTERM."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from dashboards.alerts.text import notification_text
    from data_sources.alerts.runtime import Alerting
    from data_sources.clock import LOCAL_TZ
    from data_sources.points import PointsPublisher
    from data_sources.scheduler import Poller
    from data_sources.ward_frames import WardFramesPublisher

    catalogue = load_datasets(settings.datasets_file)
    warehouse = create_warehouse_engine(settings.warehouse_url)
    store = open_snapshot_store(settings.snapshot_url)
    alerting = Alerting(settings, catalogue, store, render=notification_text)  # alerts: evaluated after each poll
    figures = WardFramesPublisher(
        catalogue,
        store,
        unit_crosswalk(settings.province_code, **_split_rule(settings)),
        list(current_units(settings.province_code)["code"]),
    )
    poller = Poller(
        catalogue,
        warehouse,
        store,
        rules=quality_rules(settings),
        # every ward's figures last: the province's figures, map points and alerts do not wait for them
        after_poll=(figures, PointsPublisher(catalogue, warehouse, store), alerting.after_poll, figures.each_ward),
    )
    scheduler = BackgroundScheduler(timezone=LOCAL_TZ)
    poller.schedule(scheduler)
    alerting.schedule(scheduler, poller)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    scheduler.start()
    alerting.start()
    log.info("poller %s started with %d datasets", poller.owner, len(catalogue.datasets))
    stop.wait()
    scheduler.shutdown(wait=True)
    alerting.stop()
    poller.release()


def _demo_accounts(settings: Settings) -> list[dict[str, str]]:
    """Create the demo accounts once (random passwords kept in var/demo_logins.json) and return them."""
    if DEMO_LOGINS.exists():
        return json.loads(DEMO_LOGINS.read_text(encoding="utf-8"))
    engine = create_warehouse_engine(settings.app_db_url)
    create_schema(engine)
    logins = []
    for username, role, sectors, name in DEMO_ACCOUNTS:
        password = secrets.token_urlsafe(9)
        create_user(engine, username, password, role, sectors=sectors, display_name=name)
        logins.append({"username": username, "password": password, "role": role})
    DEMO_LOGINS.write_text(json.dumps(logins, indent=2), encoding="utf-8")
    DEMO_LOGINS.chmod(0o600)
    return logins


def run_demo(host: str, port: int) -> None:
    """Create the demo warehouse on first start, then run poller, simulator and web together."""
    from datetime import datetime

    from sqlalchemy import inspect

    from data_sources.clock import LOCAL_TZ
    from data_sources.demo.generate import generate_warehouse

    DEMO_DIR.mkdir(exist_ok=True)
    _ensure_secret(DEMO_DIR / "secret_key")
    settings = load_settings()
    engine = create_warehouse_engine(settings.warehouse_url)
    if not inspect(engine).has_table("feedback_reports"):
        print("Tạo kho dữ liệu mẫu / creating the demo warehouse (Huế, 40 wards, since 01/2025)…", flush=True)
        generate_warehouse(settings.warehouse_url, now=datetime.now(LOCAL_TZ), progress=True)
    logins = _demo_accounts(settings)
    children = [
        subprocess.Popen([sys.executable, str(PROJECT_DIR / "app.py"), "poller"]),
        subprocess.Popen(
            [sys.executable, "-m", "data_sources.demo.simulate", "--url", settings.warehouse_url, "--interval", "3"],
            cwd=PROJECT_DIR,
        ),
    ]
    url = f"http://{host}:{port}/"
    print("\n" + "=" * 64)
    print(f"IOC demo: {url}")
    for login in logins:
        print(f"  {login['role']:<16} {login['username']:<24} {login['password']}")
    print("(Ctrl-C stops the web app, the poller and the simulator)")
    print("=" * 64 + "\n", flush=True)
    try:
        create_app(settings).run(host=host, port=port, debug=False, threaded=True)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


def _read_password(generate: bool) -> str:
    """A new password: generated, typed twice at a prompt, or the first line of stdin (never from argv)."""
    if generate:
        return secrets.token_urlsafe(12)
    if sys.stdin.isatty():
        first = getpass.getpass("Mật khẩu / password: ")
        if getpass.getpass("Nhập lại / repeat: ") != first:
            raise UserError("the two passwords differ", "password_mismatch")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _users_command(settings: Settings, args: argparse.Namespace) -> int:
    """``users create|list|reset-password|unlock|disable|enable``; every change is written to the audit log."""
    from data_sources import throttle
    from data_sources.users import audit, set_disabled, set_password

    engine = create_warehouse_engine(settings.app_db_url)
    create_schema(engine)
    actor = f"cli:{getpass.getuser()}"

    def record(action: str, detail: str) -> None:
        audit(engine, action, username=actor, detail=detail, address="cli")

    if args.action == "list":
        blocked = {block.username for block in throttle.active_blocks(engine)}
        for account in list_users(engine):
            scope = ",".join(account.sectors) or "*"
            wards = ",".join(account.wards) or "*"
            throttled = account.username.lower() in blocked
            state = "disabled" if account.disabled else ("throttled" if throttled else "active")
            print(f"{account.username:<28} {account.role:<16} {scope:<24} {wards:<16} {state}")
        return 0
    if not args.username:
        print(f"error: users {args.action} needs --username", file=sys.stderr)
        return 2
    try:
        if args.action == "create":
            known = set(current_units(settings.province_code)["code"])
            password = _read_password(args.generate_password)
            create_user(
                engine,
                args.username,
                password,
                args.role or "",
                sectors=tuple(args.sector or ()),
                wards=tuple(args.ward or ()),
                display_name=args.name or "",
                known_wards=known,
            )
            scope = f"sectors={','.join(args.sector or ()) or '-'} wards={','.join(args.ward or ()) or '-'}"
            record("user_created", f"{args.username} role={args.role} {scope}")
        elif args.action == "reset-password":
            password = _read_password(args.generate_password)
            set_password(engine, args.username, password)
            throttle.clear(engine, args.username)
            record("password_reset", args.username)
        elif args.action == "unlock":
            if get_user_by_name(engine, args.username) is None:
                raise UserError(f"no user {args.username!r}", "no_such_user")
            cleared = throttle.clear(engine, args.username)
            record("user_unlocked", f"{args.username} ({cleared} address(es))")
        elif args.action in ("disable", "enable"):
            set_disabled(engine, args.username, args.action == "disable")
            record(f"user_{args.action}d", args.username)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.action in ("create", "reset-password") and args.generate_password:
        print(f"{args.action} {args.username}: password {password}")
    else:
        print(f"{args.action} {args.username}: done")
    return 0


def cli(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="ioc", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="demo warehouse + poller + simulator + web")
    web = commands.add_parser("web", help="the web app only")
    for sub in (demo, web):
        sub.add_argument("--host", default="127.0.0.1")
        sub.add_argument("--port", type=int, default=8050)
    commands.add_parser("poller", help="the poller process")
    users = commands.add_parser(
        "users",
        help="manage accounts",
        description="Manage accounts. New passwords are typed at a prompt (twice), read from the first line "
        "of stdin, or generated with --generate-password and printed once; never given as an argument.",
    )
    users.add_argument("action", choices=["create", "list", "reset-password", "unlock", "disable", "enable"])
    users.add_argument("--username")
    users.add_argument("--role", choices=ROLES)
    users.add_argument("--sector", action="append", help="department heads: a sector (repeat for several)")
    users.add_argument("--ward", action="append", help="department heads: limit to a ward code (repeatable)")
    users.add_argument("--name", help="display name")
    users.add_argument("--generate-password", action="store_true", help="generate a password and print it once")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "demo":
            run_demo(args.host, args.port)
            return 0
        settings = load_settings()
        if args.command == "web":
            create_app(settings).run(host=args.host, port=args.port, debug=False, threaded=True)
        elif args.command == "poller":
            run_poller(settings)
        elif args.command == "users":
            return _users_command(settings, args)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
