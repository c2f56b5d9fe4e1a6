"""Server-side access control: the login guard, the login form, and the per-callback check.

* One ``before_request`` guard fails closed: only the routes in ``PUBLIC_PATHS`` (login, static
  assets, health check) pass without a session; Dash's own endpoints answer 401, never a redirect.
* Every callback that returns data is wrapped by ``secured(permission, sector=...)``, which checks
  the signed-in account on the server and marks the callback so a test can find undeclared ones.
* Inactivity expiry: refresh ticks do not count as activity.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, abort, current_app, redirect, render_template_string, request, session
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf

from config.roles import has_permission
from data_sources.users import Account, audit, get_user, verify_password
from layouts import ids
from layouts.i18n import DEFAULT_LANGUAGE, LANGUAGES, PSEUDO, t

log = logging.getLogger(__name__)

PUBLIC_PATHS = ("/login", "/healthz", "/assets/", "/_dash-component-suites/", "/favicon.ico")
DASH_ENDPOINT_PREFIXES = ("/_dash-", "/_reload-hash")
PERMISSION_ATTRIBUTE = "_ioc_permission"
CSRF_COOKIE = "_csrf_token"
MAX_CALLBACK_BODY = 256 * 1024
LANGUAGE_COOKIE = "ioc_lang"
PSEUDO_LANGUAGE_FLAG = "IOC_PSEUDO_LANGUAGE"
"""Flask config flag (from the test-only ``pseudo_language`` setting) that lets ``xx`` be chosen."""


class SessionUser(UserMixin):
    """flask-login's view of an account."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self.id = str(account.id)


def current_account() -> Account | None:
    """The signed-in account of this request, if any."""
    if current_user and current_user.is_authenticated:
        return current_user.account
    return None


def secured(permission: str, *, sector: str | None = None) -> Callable:
    """Declare and enforce the permission a callback needs; 401 without a session, 403 without the right."""

    def decorate(function: Callable) -> Callable:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            account = current_account()
            if account is None:
                abort(401)
            if not has_permission(account.role, permission):
                abort(403)
            if sector is not None and not account.scope.allows_sector(sector):
                abort(403)
            return function(*args, **kwargs)

        setattr(wrapper, PERMISSION_ATTRIBUTE, (permission, sector))
        return wrapper

    return decorate


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
    """True for Dash updates fired only by the refresh or clock interval (not user activity)."""
    if request.path != "/_dash-update-component":
        return False
    body = request.get_json(silent=True)
    if not isinstance(body, dict):  # a malformed body is answered by Dash, not counted as a tick
        return False
    changed = body.get("changedPropIds") or []
    ticks = {f"{ids.REFRESH}.n_intervals", f"{ids.CLOCK_TICK}.n_intervals"}
    return bool(changed) and all(prop in ticks for prop in changed)


LOGIN_PAGE = """<!doctype html>
<html lang="{{ lang }}"><head><meta charset="utf-8"><title>{{ title }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/assets/style.css"></head>
<body class="login-body"><main class="login-box">
<h1>{{ title }}</h1><h2>{{ heading }}</h2>
{% if message %}<p class="login-error" role="alert">{{ message }}</p>{% endif %}
<form method="post" action="/login">
<input type="hidden" name="csrf_token" value="{{ csrf }}">
<input type="hidden" name="next" value="{{ next_path }}">
<label>{{ username_label }}<input id="username" name="username" autocomplete="username" required maxlength="64"></label>
<label>{{ password_label }}<input id="password" name="password" type="password" autocomplete="current-password"
 required maxlength="256"></label>
<button id="login-submit" type="submit">{{ submit }}</button>
</form>
<p class="login-lang">{% for code, label in languages %}
<a href="/login?lang={{ code }}">{{ label }}</a> {% endfor %}</p>
</main></body></html>"""


def _safe_next(target: str | None) -> str:
    """Only local paths may be a post-login destination."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


def install_security(server: Flask, app_db, *, idle_minutes: int, secure_cookies: bool) -> None:
    """Wire flask-login, CSRF, the fail-closed guard and the login routes onto the Flask server."""
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
    manager = LoginManager()
    manager.init_app(server)
    csrf = CSRFProtect(server)

    @manager.user_loader
    def load_user(user_id: str) -> SessionUser | None:
        try:
            account = get_user(app_db, int(user_id))
        except ValueError:
            return None
        return SessionUser(account) if account else None

    @manager.unauthorized_handler
    def unauthorized() -> Response:
        return Response("login required", status=401, mimetype="text/plain")

    @server.before_request
    def guard() -> Response | None:
        path = request.path
        if any(path == p or (p.endswith("/") and path.startswith(p)) for p in PUBLIC_PATHS):
            return None
        if current_user.is_authenticated:
            last = session.get("last_active", 0)
            if time.time() - last > idle_minutes * 60:
                logout_user()
                session.clear()
            else:
                if request.method == "POST":
                    csrf.protect()
                if not _is_refresh_tick():
                    session["last_active"] = time.time()
                return None
        if path.startswith(DASH_ENDPOINT_PREFIXES):
            return Response(json.dumps({"error": "login required"}), status=401, mimetype="application/json")
        return redirect(f"/login?next={request.full_path.rstrip('?')}")

    @server.after_request
    def set_csrf_cookie(response: Response) -> Response:
        if current_user.is_authenticated and request.method == "GET" and not request.path.startswith("/_dash-"):
            response.set_cookie(CSRF_COOKIE, generate_csrf(), samesite="Strict", secure=secure_cookies)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        return response

    @server.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> Response:
        log.warning("CSRF refusal on %s from %s: %s", request.path, request.remote_addr, error.description)
        return Response("invalid or missing CSRF token", status=400, mimetype="text/plain")

    @server.errorhandler(413)
    def too_large(_error) -> Response:
        log.warning("oversized request body on %s from %s", request.path, request.remote_addr)
        return Response("request body too large", status=413, mimetype="text/plain")

    def login_page(message: str = "", status: int = 200) -> Response:
        lang = request.args.get("lang") or request_language()
        lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
        html = render_template_string(
            LOGIN_PAGE,
            lang=lang,
            title=t("app.title", lang),
            heading=t("login.title", lang),
            message=message,
            csrf=generate_csrf(),
            next_path=_safe_next(request.values.get("next")),
            username_label=t("login.username", lang),
            password_label=t("login.password", lang),
            submit=t("login.submit", lang),
            languages=[(code, t(f"lang.{code}", lang)) for code in LANGUAGES],
        )
        response = Response(html, status=status, mimetype="text/html")
        if request.args.get("lang") in LANGUAGES:
            response.set_cookie(LANGUAGE_COOKIE, lang, samesite="Lax", secure=secure_cookies, httponly=True)
        return response

    @server.route("/login", methods=["GET", "POST"])
    def login() -> Response:
        if request.method == "GET":
            return login_page()
        username = (request.form.get("username") or "").strip()[:64]
        password = request.form.get("password") or ""
        csrf.protect()
        account = verify_password(app_db, username, password) if username and password else None
        if account is None:
            log.info("failed login for %r from %s", username, request.remote_addr)
            audit(app_db, "login_failed", username=username, address=request.remote_addr)
            return login_page(t("login.failed", request_language()), status=401)
        session.clear()
        login_user(SessionUser(account))
        session["last_active"] = time.time()
        audit(app_db, "login", username=account.username, address=request.remote_addr)
        return redirect(_safe_next(request.form.get("next")))

    @server.route("/logout", methods=["GET", "POST"])
    @csrf.exempt
    def logout() -> Response:
        account = current_account()
        if account is not None:
            audit(app_db, "logout", username=account.username, address=request.remote_addr)
        logout_user()
        session.clear()
        return redirect("/login")

    @server.route("/healthz")
    def healthz() -> Response:
        return Response("ok", mimetype="text/plain")
