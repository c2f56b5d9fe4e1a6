"""Callbacks recorded at import and registered on each app, so every app instance gets them all.

Dash's global ``dash.callback`` hands its callbacks to the first app only; tests and multi-app
processes need each ``create_app`` to register the full set on its own app.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dash import Dash

_SERVER: list[tuple[tuple, dict, Callable]] = []
_CLIENT: list[tuple[tuple, dict]] = []


def callback(*args: Any, **kwargs: Any) -> Callable:
    """Record a server callback (same arguments as ``dash.callback``)."""

    def decorate(function: Callable) -> Callable:
        _SERVER.append((args, kwargs, function))
        return function

    return decorate


def clientside_callback(*args: Any, **kwargs: Any) -> None:
    """Record a clientside callback (same arguments as ``dash.clientside_callback``)."""
    _CLIENT.append((args, kwargs))


def register_callbacks(app: Dash) -> None:
    """Register every recorded callback on ``app``."""
    for args, kwargs, function in _SERVER:
        app.callback(*args, **kwargs)(function)
    for args, kwargs in _CLIENT:
        app.clientside_callback(*args, **kwargs)
