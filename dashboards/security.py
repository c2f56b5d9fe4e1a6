"""Server-side access control: the login guard, sessions, the login form, and the per-callback check.

* One ``before_request`` guard fails closed: only the routes in ``PUBLIC_PATHS`` (login, static
  assets, health check) pass without a session; Dash's own endpoints answer 401, never a redirect.
* Every callback that returns data is wrapped by ``secured(permission, sector=...)``, which checks
  the signed-in account on the server and marks the callback so a test can find undeclared ones.
* Sessions: a signed cookie carries a random token whose hash is a row in the app database, so
  logout, disabling an account or resetting its password ends the session on every worker.
  Inactivity expiry: refresh ticks do not count as activity.
* Login throttling per (account, client address) with doubling delays (``data_sources/throttle.py``).
* Bad requests (tampered cookie, malformed or oversized callback body, unknown callback) get a
  short 4xx answer and one log line; no response ever carries a stack trace.

The model and the test proving each point: docs/security.md.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from dash import Dash
from flask import (
    Flask,
    Response,
    abort,
    current_app,
    has_request_context,
    redirect,
    render_template_string,
    request,
    session,
)
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from itsdangerous import BadSignature
from sqlalchemy import Engine
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from config.roles import has_permission
from data_sources import throttle
from data_sources.users import (
    Account,
    audit,
    end_session,
    get_user_by_name,
    session_account,
    start_session,
    touch_session,
    verify_password,
)
from layouts import ids
from layouts.i18n import DEFAULT_LANGUAGE, LANGUAGES, LOCAL_TZ, PSEUDO, format_duration, t

log = logging.getLogger(__name__)

PUBLIC_PATHS = ("/login", "/healthz", "/assets/", "/_dash-component-suites/", "/favicon.ico")
DASH_ENDPOINT_PREFIXES = ("/_dash-", "/_reload-hash")
CALLBACK_PATH = "/_dash-update-component"
PERMISSION_ATTRIBUTE = "_ioc_permission"
CSRF_COOKIE = "_csrf_token"
MAX_CALLBACK_BODY = 256 * 1024
LANGUAGE_COOKIE = "ioc_lang"
LOGIN_NOTICE = "login_notice"
"""Session key telling the login page why the last session ended (expired, ended, invalid)."""
BAD_SESSION_COOKIE = "ioc.bad_session_cookie"
"""WSGI environ flag: the request carried a session cookie whose signature did not verify."""
PSEUDO_LANGUAGE_FLAG = "IOC_PSEUDO_LANGUAGE"
"""Flask config flag (from the test-only ``pseudo_language`` setting) that lets ``xx`` be chosen."""


class SessionUser(UserMixin):
    """flask-login's view of an account; its id is the session token (see ``data_sources.users``)."""

    def __init__(self, account: Account, token: str) -> None:
        self.account = account
        self.id = token


class GuardedSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, plus: a tampered cookie is logged and dropped; Secure over HTTPS."""

    def open_session(self, app: Flask, request_):  # noqa: ANN001 (Flask's signature)
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        value = request_.cookies.get(self.get_cookie_name(app))
        if not value:
            return self.session_class()
        try:
            return self.session_class(
                serializer.loads(value, max_age=int(app.permanent_session_lifetime.total_seconds()))
            )
        except BadSignature:
            request_.environ[BAD_SESSION_COOKIE] = True
            log.warning(
                "refused a session cookie that does not verify (tampered, or signed with another secret) on %s from %s",
                request_.path,
                request_.remote_addr,
            )
            fresh = self.session_class()
            fresh.modified = True  # an empty, modified session deletes the bad cookie in the response
            return fresh

    def get_cookie_secure(self, app: Flask) -> bool:
        """Secure when configured, and always when this request came over HTTPS."""
        return bool(app.config["SESSION_COOKIE_SECURE"] or (has_request_context() and request.is_secure))


def current_account() -> Account | None:
    """The signed-in account of this request, if any."""
    if current_user and current_user.is_authenticated:
        return current_user.account
    return None


def client_address() -> str:
    """The client's address: ``request.remote_addr``, which honours X-Forwarded-For only behind
    ``trusted_proxy_count`` proxies (werkzeug's ProxyFix, installed by ``install_security``)."""
    return (request.remote_addr or "unknown")[:64]


def secured(permission: str, *, sector: str | None = None) -> Callable:
    """Declare and enforce the permission a callback needs; 401 without a session, 403 without the right."""

    def decorate(function: Callable) -> Callable:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            account = current_account()
            if account is None:
                abort(401)
            if not has_permission(account.role, permission):
                abort(403, f"the role {account.role} lacks the permission {permission}")
            if sector is not None and not account.scope.allows_sector(sector):
                abort(403, f"the sector {sector} is outside the account's scope")
            return function(*args, **kwargs)

        setattr(wrapper, PERMISSION_ATTRIBUTE, (permission, sector))
        return wrapper

    return decorate


def declared_permission(function: Callable) -> tuple[str, str | None] | None:
    """The (permission, sector) a callback function declared through ``secured``, looking through wrappers."""
    seen = set()
    while function is not None and id(function) not in seen:
        seen.add(id(function))
        declared = getattr(function, PERMISSION_ATTRIBUTE, None)
        if declared is not None:
            return declared
        function = getattr(function, "__wrapped__", None)
    return None


def request_language() -> str:
    """The interface language: the account's choice, else the cookie, else Vietnamese.

    The pseudo-language ``xx`` counts only where the test-only ``pseudo_language`` setting enabled it.
    """
    allowed = (*LANGUAGES, PSEUDO) if current_app.config.get(PSEUDO_LANGUAGE_FLAG) else LANGUAGES
    account = current_account()
    if account is not None and account.language in allowed:
        return account.language
    cookie = request.cookies.get(LANGUAGE_COOKIE)
    return cookie if cookie in allowed else DEFAULT_LANGUAGE


def _is_refresh_tick() -> bool:
    """True for Dash updates fired only by the refresh or clock interval, or by the new snapshot versions
    a tick found (cards rebuilding themselves): not user activity."""
    if request.path != CALLBACK_PATH:
        return False
    body = request.get_json(silent=True)
    if not isinstance(body, dict):  # a malformed body is refused later, not counted as a tick
        return False
    changed = body.get("changedPropIds") or []
    ticks = {f"{ids.REFRESH}.n_intervals", f"{ids.CLOCK_TICK}.n_intervals", f"{ids.VERSIONS}.data"}
    return isinstance(changed, list) and bool(changed) and all(prop in ticks for prop in changed)


def _is_public(path: str) -> bool:
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in PUBLIC_PATHS)


LOGIN_PAGE = """<!doctype html>
<html lang="{{ lang }}"><head><meta charset="utf-8"><title>{{ title }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/assets/style.css"></head>
<body class="login-body"><main class="login-box">
<h1>{{ title }}</h1><h2>{{ heading }}</h2>
{% if message %}<p class="login-error" id="login-message" role="alert">{{ message }}</p>{% endif %}
<form method="post" action="/login">
<input type="hidden" name="csrf_token" value="{{ csrf }}">
<input type="hidden" name="next" value="{{ next_path }}">
<label>{{ username_label }}<input id="username" name="username" autocomplete="username" required maxlength="64"
 value="{{ username }}"></label>
<label>{{ password_label }}<input id="password" name="password" type="password" autocomplete="current-password"
 required maxlength="256"></label>
<button id="login-submit" type="submit">{{ submit }}</button>
</form>
<p class="login-lang">{% for code, label in languages %}
<a href="/login?lang={{ code }}">{{ label }}</a> {% endfor %}</p>
</main></body></html>"""


def _safe_next(target: str | None) -> str:
    """Only local paths may be a post-login destination (no //host, no /\\host, no scheme)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")) and "\\" not in target[:3]:
        return target
    return "/"


REFUSAL_MESSAGES = (400, 403, 404, 413, 500)
"""Statuses whose Dash refusals carry a sentence for people (assets/refusal.js shows it; 401 goes to login)."""


def _refusal(status: int, message: str) -> Response:
    """A short refusal: JSON for Dash's endpoints, plain text elsewhere; never a stack trace."""
    if request.path.startswith(DASH_ENDPOINT_PREFIXES):
        body = {"error": message}
        if status in REFUSAL_MESSAGES:
            lang = request_language()
            body |= {"message": t(f"refusal.{status}", lang), "home": t("refusal.home", lang)}
        return Response(json.dumps(body), status=status, mimetype="application/json")
    return Response(message, status=status, mimetype="text/plain")


def _local(moment: datetime) -> str:
    """An instant as local wall time with its offset, for audit details (the viewer shows local time)."""
    return moment.astimezone(LOCAL_TZ).isoformat(sep=" ", timespec="seconds")


def _who() -> str:
    account = current_account()
    return account.username if account else "-"


def _callback_name() -> str:
    """The output a callback request names (for log lines), or the path."""
    if request.path == CALLBACK_PATH:
        body = request.get_json(silent=True)
        if isinstance(body, dict) and isinstance(body.get("output"), str):
            return f"callback {body['output'][:120]!r}"
    return request.path


def install_security(
    server: Flask,
    app_db: Engine,
    *,
    idle_minutes: int,
    secure_cookies: bool,
    policy: throttle.ThrottlePolicy | None = None,
    trusted_proxy_count: int = 0,
) -> None:
    """Wire flask-login, CSRF, the fail-closed guard, error handlers and the login routes onto the server."""
    policy = policy or throttle.ThrottlePolicy()
    server.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure_cookies,
        REMEMBER_COOKIE_HTTPONLY=True,
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_CHECK_DEFAULT=False,  # checked in the guard, after the session check, so 401 comes first
        WTF_CSRF_HEADERS=["X-CSRFToken"],
        MAX_CONTENT_LENGTH=MAX_CALLBACK_BODY,
    )
    server.session_interface = GuardedSessionInterface()
    if trusted_proxy_count:
        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=trusted_proxy_count, x_proto=trusted_proxy_count)
    manager = LoginManager()
    manager.init_app(server)
    csrf = CSRFProtect(server)

    def https() -> bool:
        """Cookies get the Secure flag when configured, and whenever the request came over HTTPS."""
        return bool(server.config["SESSION_COOKIE_SECURE"] or request.is_secure)

    @manager.user_loader
    def load_user(token: str) -> SessionUser | None:
        account = session_account(app_db, token)
        return SessionUser(account, token) if account else None

    @manager.unauthorized_handler
    def unauthorized() -> Response:
        return _refusal(401, "login required")

    def end_current_session(reason: str) -> None:
        token = current_user.id if current_user.is_authenticated else None
        if token:
            end_session(app_db, token, reason)
        logout_user()
        session.clear()

    @server.before_request
    def guard() -> Response | None:
        path = request.path
        if _is_public(path):
            return None
        if current_user.is_authenticated:
            if time.time() - session.get("last_active", 0) <= idle_minutes * 60:
                if request.method == "POST":
                    csrf.protect()
                if not _is_refresh_tick():
                    session["last_active"] = time.time()
                    touch_session(app_db, current_user.id)
                return None
            account = current_account()
            log.info("session of %s expired after %d min without activity (%s)", account.username, idle_minutes, path)
            audit(app_db, "session_expired", username=account.username, address=client_address())
            end_current_session("idle")
            session[LOGIN_NOTICE] = "expired"
            reason = "session expired"
        elif request.environ.get(BAD_SESSION_COOKIE):
            session[LOGIN_NOTICE] = "invalid"
            reason = "invalid session cookie"
        elif session.get("_user_id"):
            log.info(
                "refused an ended session (logged out, disabled or password reset) on %s from %s",
                path,
                client_address(),
            )
            session.clear()
            session[LOGIN_NOTICE] = "ended"
            reason = "session ended"
        else:
            reason = "login required"
        if path.startswith(DASH_ENDPOINT_PREFIXES):
            return _refusal(401, reason)
        return redirect(f"/login?next={request.full_path.rstrip('?')}")

    @server.after_request
    def headers(response: Response) -> Response:
        if current_user.is_authenticated and request.method == "GET" and not request.path.startswith("/_dash-"):
            # read by Dash's renderer to send the X-CSRFToken header, so not HttpOnly; Strict same-site
            response.set_cookie(CSRF_COOKIE, generate_csrf(), samesite="Strict", secure=https())
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.path.startswith(DASH_ENDPOINT_PREFIXES) or request.path == "/login":
            response.headers["Cache-Control"] = "no-store"
        return response

    @server.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> Response:
        log.warning("CSRF refusal on %s for %s from %s: %s", request.path, _who(), client_address(), error.description)
        return _refusal(400, "invalid or missing CSRF token")

    @server.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        if error.code is None or error.code < 400:
            return error
        level = logging.WARNING if error.code in (401, 403, 413) else logging.INFO
        custom = error.description if error.description != type(error).description else error.name
        log.log(
            level,
            "refused %d on %s %s for %s from %s: %s",
            error.code,
            request.method,
            _callback_name() if error.code != 413 else request.path,
            _who(),
            client_address(),
            custom,
        )
        messages = {401: "login required", 403: "forbidden", 404: "not found", 413: "request body too large"}
        return _refusal(error.code, messages.get(error.code, f"{error.code} {error.name}".lower()))

    @server.errorhandler(Exception)
    def internal_error(error: Exception) -> Response:
        if isinstance(error, HTTPException):
            return http_error(error)
        reference = secrets.token_hex(4)
        log.error("internal error %s on %s %s for %s", reference, request.method, request.path, _who(), exc_info=error)
        return _refusal(500, f"internal error (reference {reference})")

    def login_page(message: str = "", status: int = 200, username: str = "") -> Response:
        lang = request.args.get("lang") or request_language()
        lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
        notice = session.pop(LOGIN_NOTICE, None) if request.method == "GET" else None
        if notice and not message:
            message = t(f"login.notice.{notice}", lang)
        html = render_template_string(
            LOGIN_PAGE,
            lang=lang,
            title=t("app.title", lang),
            heading=t("login.title", lang),
            message=message,
            csrf=generate_csrf(),
            next_path=_safe_next(request.values.get("next")),
            username=username,
            username_label=t("login.username", lang),
            password_label=t("login.password", lang),
            submit=t("login.submit", lang),
            languages=[(code, t(f"lang.{code}", lang)) for code in LANGUAGES],
        )
        response = Response(html, status=status, mimetype="text/html")
        if request.args.get("lang") in LANGUAGES:
            response.set_cookie(LANGUAGE_COOKIE, lang, samesite="Lax", secure=https(), httponly=True)
        return response

    def throttled_page(username: str, until: datetime) -> Response:
        lang = request_language()
        wait = max(1, math.ceil((until - datetime.now(UTC)).total_seconds()))
        message = t(
            "login.throttled",
            lang,
            time=until.astimezone(LOCAL_TZ).strftime("%H:%M:%S"),
            wait=format_duration(wait, lang) if wait >= 60 else t("login.seconds", lang, n=wait),
        )
        response = login_page(message, status=429, username=username)
        response.headers["Retry-After"] = str(wait)
        return response

    @server.route("/login", methods=["GET", "POST"])
    def login() -> Response:
        if request.method == "GET":
            return login_page()
        csrf.protect()
        username = (request.form.get("username") or "").strip()[:64]
        password = request.form.get("password") or ""
        lang = request_language()
        address = client_address()
        if not username or not password:
            log.info("login form without a username or password from %s", address)
            return login_page(t("login.missing", lang), status=400, username=username)
        until = throttle.blocked_until(app_db, username, address)
        if until is not None:
            log.warning("throttled login attempt for %r from %s (blocked until %s)", username, address, until)
            audit(
                app_db, "login_throttled", username=username, detail=f"blocked until {_local(until)}", address=address
            )
            return throttled_page(username, until)
        account = verify_password(app_db, username, password)
        if account is None:
            why = "wrong password" if get_user_by_name(app_db, username) else "unknown account"
            until = throttle.record_failure(app_db, username, address, policy)
            log.info("failed login for %r from %s (%s)", username, address, why)
            audit(app_db, "login_failed", username=username, detail=why, address=address)
            if until is not None:
                log.warning("login for %r from %s blocked until %s", username, address, until)
                audit(
                    app_db,
                    "login_blocked",
                    username=username,
                    detail=f"blocked until {_local(until)}",
                    address=address,
                )
                return throttled_page(username, until)
            return login_page(t("login.failed", lang), status=401, username=username)
        if account.disabled:
            log.info("refused login of disabled account %r from %s", username, address)
            audit(app_db, "login_disabled", username=account.username, address=address)
            return login_page(t("login.disabled", lang), status=403, username=username)
        throttle.clear(app_db, username, address)
        session.clear()
        login_user(SessionUser(account, start_session(app_db, account.id, address)))
        session["last_active"] = time.time()
        audit(app_db, "login", username=account.username, address=address)
        return redirect(_safe_next(request.form.get("next")))

    @server.route("/logout", methods=["POST"])
    def logout() -> Response:
        account = current_account()
        if account is not None:
            audit(app_db, "logout", username=account.username, address=client_address())
        end_current_session("logout")
        return redirect("/login")

    @server.route("/logout", methods=["GET"], endpoint="logout_by_get")
    def logout_by_get() -> Response:
        # without this, Dash's catch-all page route would answer; a GET must never sign anyone out
        response = _refusal(405, "logout needs a POST with the CSRF token (the logout button)")
        response.headers["Allow"] = "POST"
        return response

    @server.route("/healthz")
    def healthz() -> Response:
        return Response("ok", mimetype="text/plain")


def callback_body_problem(body: Any, callback_map: dict) -> str | None:
    """Why a ``/_dash-update-component`` body cannot be a request of this app's renderer, or None."""
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    output = body.get("output")
    if not isinstance(output, str):
        return "'output' is missing"
    entry = callback_map.get(output)
    if entry is None or entry.get("callback") is None:
        return f"no callback has the output {output[:120]!r}"
    if not isinstance(body.get("outputs"), (dict, list)):
        return "'outputs' is missing"
    for part in ("inputs", "state"):
        given = body.get(part, [])
        expected = entry.get(part) or []
        if not isinstance(given, list) or len(given) != len(expected):
            return f"'{part}' must list {len(expected)} item(s)"
        for item, spec in zip(given, expected, strict=True):
            if str(spec.get("id", "")).startswith("{"):  # pattern-matching: a dict, or a list of them for ALL
                items = item if isinstance(item, list) else [item]
                if not all(isinstance(i, dict) and i.get("property") == spec.get("property") for i in items):
                    return f"'{part}' does not match the callback's {spec.get('id')}.{spec.get('property')}"
            elif not isinstance(item, dict) or (item.get("id"), item.get("property")) != (spec["id"], spec["property"]):
                return f"'{part}' does not match the callback's {spec['id']}.{spec['property']}"
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or not all(isinstance(c, str) for c in changed):
        return "'changedPropIds' must be a list of names"
    return None


def install_callback_checks(app: Dash) -> None:
    """Refuse callback requests that name no registered callback or do not match its inputs (400, one log line).

    Runs after the guard (registered later), so without a session the answer stays 401.
    """

    @app.server.before_request
    def check_callback_body() -> Response | None:
        if request.path != CALLBACK_PATH or request.method != "POST":
            return None
        problem = callback_body_problem(request.get_json(silent=True), app.callback_map)
        if problem is None:
            return None
        log.warning("refused a malformed callback request for %s from %s: %s", _who(), client_address(), problem)
        return _refusal(400, f"malformed callback request: {problem}")


def audit_unmasked_view(app_db: Engine, account: Account, detail: str) -> None:
    """Record that ``account`` was shown personal data unmasked (Decree 13/2023/NĐ-CP)."""
    audit(app_db, "unmasked_view", username=account.username, detail=detail, address=client_address())
