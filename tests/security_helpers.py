"""Reusable pieces for security tests: sign in through the real form, list the app's callbacks from
Dash's own registry (``app.callback_map``), and forge any callback request the way the renderer sends it.

Use them for the forgery tests of a new feature::

    from tests.security_helpers import forge, server_callbacks, sign_in

    client = sign_in(app, "traffic_head", PASSWORD)
    for cb in server_callbacks(app):
        if cb.reads("url.pathname"):
            response = forge(client, cb, {"url.pathname": "/health", "url.search": "?window=7d"})
            assert response.status_code == 403 and not leaks(response)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from dash import Dash

from dashboards.security import declared_permission

WILDCARDS = ('["ALL"]', '["MATCH"]', '["ALLSMALLER"]')


@dataclass(frozen=True)
class RegisteredCallback:
    """One server callback as Dash registered it."""

    key: str
    """The callback map key the renderer sends as ``output``."""
    outputs: tuple[tuple[str, str], ...]
    inputs: tuple[tuple[str, str], ...]
    state: tuple[tuple[str, str], ...]
    function: Callable
    permission: tuple[str, str | None] | None

    def reads(self, *props: str) -> bool:
        """True when the callback gets any of ``props`` ("id.property") as input or state."""
        names = {f"{i}.{p}" for i, p in self.inputs + self.state}
        return any(prop in names for prop in props)

    @property
    def output_ids(self) -> tuple[str, ...]:
        """Plain component ids the callback writes."""
        return tuple(i for i, _ in self.outputs)


def split_output_key(key: str) -> list[tuple[str, str]]:
    """(id, property) pairs of a callback map key: ``a.b`` or ``..a.b...c.d..``."""
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    return [tuple(part.rsplit(".", 1)) for part in parts]


def server_callbacks(app: Dash) -> list[RegisteredCallback]:
    """Every server-side callback of ``app`` (clientside ones have no Python function)."""
    found = []
    for key, entry in app.callback_map.items():
        function = entry.get("callback")
        if function is None:
            continue
        found.append(
            RegisteredCallback(
                key=key,
                outputs=tuple(split_output_key(key)),
                inputs=tuple((i["id"], i["property"]) for i in entry.get("inputs", [])),
                state=tuple((s["id"], s["property"]) for s in entry.get("state", [])),
                function=function,
                permission=declared_permission(function),
            )
        )
    return found


def undeclared_callbacks(app: Dash) -> list[str]:
    """Keys of server callbacks that declared no permission through ``secured``."""
    return [cb.key for cb in server_callbacks(app) if cb.permission is None]


def _item(component_id: str, prop: str, values: dict[str, Any]) -> Any:
    """One input/state/output item of a request; pattern-matching ids get an empty list (ALL) or a dummy."""
    if component_id.startswith("{"):
        pattern = json.loads(component_id)
        if any(json.dumps(v) in WILDCARDS[::2] for v in pattern.values()):
            return []
        concrete = {k: ("forged" if json.dumps(v) in WILDCARDS else v) for k, v in pattern.items()}
        return {"id": concrete, "property": prop, "value": values.get(f"{component_id}.{prop}")}
    return {"id": component_id, "property": prop, "value": values.get(f"{component_id}.{prop}")}


def forge_body(cb: RegisteredCallback, values: dict[str, Any] | None = None, changed: Iterable[str] = ()) -> dict:
    """The JSON body the renderer would send for ``cb`` with ``values`` ("id.property" -> value; others None)."""
    values = values or {}
    outputs = [{"id": i, "property": p} for i, p in cb.outputs]
    return {
        "output": cb.key,
        "outputs": outputs if len(outputs) > 1 else outputs[0],
        "inputs": [_item(i, p, values) for i, p in cb.inputs],
        "state": [_item(i, p, values) for i, p in cb.state],
        "changedPropIds": list(changed),
    }


def forge(client, cb: RegisteredCallback, values: dict[str, Any] | None = None, changed: Iterable[str] = ()):
    """POST a forged request for ``cb`` with the client's CSRF header (a signed-in client from ``sign_in``)."""
    return client.post(
        "/_dash-update-component",
        json=forge_body(cb, values, changed),
        headers={"X-CSRFToken": getattr(client, "csrf", "")},
    )


def leaks(response) -> bool:
    """True when a refused response still carries callback output (Dash answers data under "response")."""
    return '"response"' in response.get_data(as_text=True)


def login_form_token(client, **options) -> str:
    """The CSRF token of the login form."""
    page = client.get("/login", **options)
    return re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def attempt_login(client, username: str, password: str, address: str = "127.0.0.1", **options):
    """POST the login form from ``address`` (REMOTE_ADDR); ``options`` go to the test client (e.g. base_url)."""
    token = login_form_token(client, **options)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": address},
        **options,
    )


def sign_in(app: Dash, username: str, password: str, address: str = "127.0.0.1"):
    """A test client signed in as ``username`` from ``address``, with the CSRF header Dash's renderer sends."""
    client = app.server.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    response = attempt_login(client, username, password, address)
    assert response.status_code == 302, f"sign-in of {username} failed with {response.status_code}"
    client.get("/")
    client.csrf = client.get_cookie("_csrf_token").value
    return client
