"""How alerts read, on screen and in notifications: severity with icon and words, subject, value.

Pure functions over plain values (no Dash, no data access), shared by the banner, the pages, the
CSV export and the poller's notifications.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from layouts.i18n import format_datetime, format_number, t

SEVERITY_ICONS = {"critical": "⛔", "warning": "⚠", "no_data": "⌀"}
"""Colour is never the only cue: each severity has an icon and a word."""
STATE_ICONS = {"firing": "●", "acknowledged": "✔", "resolved": "○", "pending": "…", "ok": "○"}


def severity_label(severity: str | None, lang: str) -> str:
    """``⛔ Nghiêm trọng`` and the like."""
    if not severity:
        return ""
    return f"{SEVERITY_ICONS.get(severity, '')} {t(f'alerts.severity.{severity}', lang)}".strip()


def subject_label(subject: str, label: str | None, ward_names: Mapping[str, str], lang: str) -> str:
    """Province, a ward's name, or an entity's name with its ward."""
    kind, _, code = subject.partition(":")
    if kind == "province":
        return t("alerts.subject.province", lang)
    if kind == "ward":
        return ward_names.get(code, code)
    return label or code


def value_text(value: float | None, lang: str, decimals: int = 2) -> str:
    """A measured value, or "no data"."""
    if value is None:
        return t("alerts.no_value", lang)
    rounded = round(value)
    return format_number(value, lang, 0 if abs(value - rounded) < 1e-9 else decimals)


def condition_text(comparator: str | None, threshold: float | None, lang: str) -> str:
    """``> 20`` (empty when there is no threshold, as for a no-data alert)."""
    if threshold is None or not comparator:
        return ""
    return f"{comparator} {value_text(threshold, lang)}"


def when_text(moment: datetime | None, lang: str) -> str:
    """Local date and time."""
    return format_datetime(moment, lang)


def notification_text(payload: dict[str, Any], ward_names: Mapping[str, str]) -> dict[str, str]:
    """Subject and body of a notification: Vietnamese first, English below."""
    parts = []
    subjects = []
    for lang in ("vi", "en"):
        at = datetime.fromisoformat(payload["at"]) if payload.get("at") else None
        what = subject_label(payload["subject"], payload.get("subject_label"), ward_names, lang)
        kind = t(f"alerts.kind.{payload['kind']}", lang)
        severity = severity_label(payload.get("severity"), lang)
        subjects.append(
            t("alerts.notify.subject", lang, kind=kind, severity=severity, rule=payload["rule"]["name"], subject=what)
        )
        parts.append(
            t(
                "alerts.notify.body",
                lang,
                rule=payload["rule"]["name"],
                subject=what,
                value=value_text(payload.get("value"), lang),
                threshold=value_text(payload.get("threshold"), lang) if payload.get("threshold") is not None else "–",
                kind=kind,
                severity=severity,
                at=when_text(at, lang),
            )
        )
    return {"subject": subjects[0], "text": "\n\n".join(parts) + f"\n\n{payload['event_id']}"}
