"""Interface language: translation catalogue and locale formats (Vietnamese first, English second).

Every string the interface shows comes from ``layouts/catalogue/<lang>.json`` and the area files
``layouts/catalogue/<area>.<lang>.json`` beside it (one per feature, so features do not edit one
shared file): flat JSON objects of dotted keys to strings, with optional ``{name}`` placeholders.
A key defined in two files of one language is an error. ``t(key, lang, **params)`` looks
a key up and fills its placeholders; the number, date and duration formatters below give each
language its conventions. Everything here is pure: no data access, no Dash callbacks, no globals
that change after import (catalogues are read once and cached).

Languages
    ``vi`` (default), ``en``, and the pseudo-language ``xx`` for tests: every catalogue string is
    the Vietnamese text wrapped in ``⟦…⟧`` so a test (or a screenshot) can spot any text that did
    not go through the catalogue. ``xx`` formats numbers and dates like ``vi``. Any other or
    missing language (``None``, ``"fr"``) falls back to ``vi``; region tags such as ``"en-US"``
    use their primary language.

Formats (chosen for a Vietnamese operations room, kept consistent across the app)
    ============  ====================  ====================
    function      vi                    en
    ============  ====================  ====================
    number        ``1.234,5``           ``1,234.5``
    percent       ``93,4%``             ``93.4%``
    date          ``21/11/2026``        ``2026-11-21`` (ISO: unambiguous for foreign readers)
    month         ``11/2026``           ``2026-11``
    datetime      ``21/11/2026 17:05``  ``2026-11-21 17:05``
    duration      ``3 phút``            ``3 min``
    missing       ``–`` (en dash) for ``None``, NaN, NaT and ``pandas.NA``
    ============  ====================  ====================

Rounding is half away from zero on the decimal value as written (``2.675`` -> ``2,68``), not
Python's binary half-to-even, so figures match what an operator computes by hand. Negative
numbers use an ASCII hyphen-minus, and a value that rounds to zero never shows as ``-0``.

Times: aware datetimes are converted to Asia/Ho_Chi_Minh before formatting; naive datetimes are
taken to be local wall time already, which is how the warehouse stores them (see
``data_sources/clock.py``).
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

__all__ = [
    "CATALOGUE_DIR",
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "LOCAL_TZ",
    "MISSING",
    "PSEUDO",
    "PSEUDO_CLOSE",
    "PSEUDO_OPEN",
    "catalogue",
    "format_date",
    "format_datetime",
    "format_duration",
    "format_month",
    "format_number",
    "format_percent",
    "normalise_language",
    "placeholders",
    "raw_catalogue",
    "t",
]

LANGUAGES: tuple[str, ...] = ("vi", "en")
"""Languages a user can pick, in the order the language switcher shows them."""

DEFAULT_LANGUAGE = "vi"
PSEUDO = "xx"
PSEUDO_OPEN = "⟦"
PSEUDO_CLOSE = "⟧"
MISSING = "–"
"""Shown instead of a number, date or duration that is missing (None, NaN, NaT, pandas.NA)."""

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
CATALOGUE_DIR = Path(__file__).with_name("catalogue")

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

# (thousands separator, decimal separator) per formatting language.
_SEPARATORS = {"vi": (".", ","), "en": (",", ".")}
_SEPARATOR_TABLES = {
    lang: None if (thousands, point) == (",", ".") else str.maketrans({",": thousands, ".": point})
    for lang, (thousands, point) in _SEPARATORS.items()
}
"""How an en-formatted number becomes each language's (None: as it is)."""


def normalise_language(lang: str | None) -> str:
    """The language code to use for ``lang``: ``vi``, ``en`` or ``xx``; anything else gives ``vi``."""
    if not isinstance(lang, str):
        return DEFAULT_LANGUAGE
    code = lang.strip().replace("_", "-").split("-", 1)[0].lower()
    if code in LANGUAGES or code == PSEUDO:
        return code
    return DEFAULT_LANGUAGE


def _format_lang(lang: str | None) -> str:
    """The language whose number and date conventions apply (the pseudo-language uses vi's)."""
    code = normalise_language(lang)
    return DEFAULT_LANGUAGE if code == PSEUDO else code


def catalogue_files(lang: str) -> list[Path]:
    """The catalogue files of ``lang``: the core file first, then the area files by name."""
    return [CATALOGUE_DIR / f"{lang}.json", *sorted(CATALOGUE_DIR.glob(f"*.{lang}.json"))]


def read_catalogue_file(path: Path) -> dict[str, str]:
    """One catalogue file as stored: a flat JSON object of key -> string."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of key -> string")
    for key, text in data.items():
        if not isinstance(text, str):
            raise ValueError(f"{path}: value of {key!r} is not a string")
    return data


def raw_catalogue(lang: str) -> dict[str, str]:
    """Every file of ``lang`` merged as stored; a key in two files is an error naming both."""
    merged: dict[str, str] = {}
    origin: dict[str, Path] = {}
    for path in catalogue_files(lang):
        for key, text in read_catalogue_file(path).items():
            if key in merged:
                raise ValueError(f"{path}: key {key!r} is already defined in {origin[key].name}")
            merged[key], origin[key] = text, path
    return merged


@cache
def _load(lang: str) -> dict[str, str]:
    """Read the catalogue of ``vi`` or ``en`` once; strings are NFC-normalised."""
    return {key: unicodedata.normalize("NFC", text) for key, text in raw_catalogue(lang).items()}


@cache
def _pseudo() -> dict[str, str]:
    return {key: f"{PSEUDO_OPEN}{text}{PSEUDO_CLOSE}" for key, text in _load(DEFAULT_LANGUAGE).items()}


def _strings(lang: str | None) -> dict[str, str]:
    code = normalise_language(lang)
    return _pseudo() if code == PSEUDO else _load(code)


def catalogue(lang: str | None) -> dict[str, str]:
    """All strings of ``lang`` (key -> template). A copy: changing it does not change ``t``."""
    return dict(_strings(lang))


def placeholders(template: str) -> frozenset[str]:
    """Names of the ``{name}`` placeholders in a catalogue template."""
    return frozenset(_PLACEHOLDER.findall(template))


def t(key: str, lang: str | None, **params: object) -> str:
    """The text of ``key`` in ``lang`` with its ``{name}`` placeholders filled from ``params``.

    Raises ``KeyError`` naming the key when the catalogue lacks it, and naming the placeholder
    when a parameter the template needs is not given. Extra parameters are ignored. Parameters
    are inserted with ``str()``: format numbers and dates first with the functions below.
    """
    strings = _strings(lang)
    try:
        template = strings[key]
    except KeyError:
        raise KeyError(f"unknown translation key {key!r}") from None

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in params:
            raise KeyError(f"translation {key!r} needs parameter {name!r}")
        return unicodedata.normalize("NFC", str(params[name]))

    return _PLACEHOLDER.sub(fill, template)


def _is_missing(value: object) -> bool:
    """True for None, NaN, NaT and pandas.NA (whose comparisons cannot be turned into a bool)."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except (TypeError, ValueError):
        return True


def _to_decimal(value: object) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    # str() of a float is its shortest round-trip repr, so 2.675 stays 2.675, not 2.67499999...
    return Decimal(str(float(value)))


def format_number(value: object, lang: str | None, decimals: int = 0) -> str:
    """``value`` with ``decimals`` decimals and the language's separators (vi ``1.234,5``, en ``1,234.5``)."""
    if _is_missing(value):
        return MISSING
    try:
        number = _to_decimal(value)
    except (TypeError, ValueError, InvalidOperation):
        return MISSING
    if number.is_infinite():
        return "-∞" if number < 0 else "∞"
    decimals = max(0, int(decimals))
    rounded = number.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    negative = rounded < 0  # after rounding, so -0.04 with 1 decimal shows 0.0, not -0.0
    text = f"{abs(rounded):,.{decimals}f}"  # en separators: "1,234.5"
    table = _SEPARATOR_TABLES[_format_lang(lang)]
    if table is not None:
        text = text.translate(table)
    return f"-{text}" if negative else text


def format_percent(value: object, lang: str | None, decimals: int = 1) -> str:
    """A share given as 0..1 as a percentage: 0.934 -> vi ``93,4%``, en ``93.4%``."""
    if _is_missing(value):
        return MISSING
    try:
        share = _to_decimal(value)
    except (TypeError, ValueError, InvalidOperation):
        return MISSING
    return f"{format_number(share * 100, lang, decimals)}%"


def _local(moment: datetime) -> datetime:
    """Aware datetimes in Asia/Ho_Chi_Minh; naive ones are already local wall time."""
    return moment if moment.tzinfo is None else moment.astimezone(LOCAL_TZ)


def format_date(day: date | datetime | None, lang: str | None) -> str:
    """A calendar date: vi ``21/11/2026``, en ``2026-11-21``. Datetimes give their local date."""
    if _is_missing(day):
        return MISSING
    if isinstance(day, datetime):
        day = _local(day)
    if _format_lang(lang) == "en":
        return f"{day.year:04d}-{day.month:02d}-{day.day:02d}"
    return f"{day.day:02d}/{day.month:02d}/{day.year:04d}"


def format_month(day: date | datetime | None, lang: str | None) -> str:
    """A calendar month: vi ``07/2025``, en ``2025-07``."""
    if _is_missing(day):
        return MISSING
    if isinstance(day, datetime):
        day = _local(day)
    if _format_lang(lang) == "en":
        return f"{day.year:04d}-{day.month:02d}"
    return f"{day.month:02d}/{day.year:04d}"


def format_datetime(moment: datetime | None, lang: str | None) -> str:
    """Local date and time to the minute: vi ``21/11/2026 17:05``, en ``2026-11-21 17:05``."""
    if _is_missing(moment):
        return MISSING
    local = _local(moment)
    return f"{format_date(local, lang)} {local.hour:02d}:{local.minute:02d}"


_DURATION_UNITS = (  # (seconds in the unit, catalogue key), largest first
    (86_400, "units.days"),
    (3_600, "units.hours"),
    (60, "units.minutes"),
    (1, "units.seconds"),
)


def format_duration(seconds: float | timedelta | None, lang: str | None) -> str:
    """A duration in its largest whole unit, rounded down: ``45 giây``, ``3 phút``, ``2 giờ``, ``5 ngày``.

    English uses short units (``45 s``, ``3 min``, ``2 h``, ``5 d``). Rounding down means an age
    of 119 s reads "1 phút", never more than it is. Negative durations (clock skew) read as 0 s.
    """
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    if _is_missing(seconds):
        return MISSING
    try:
        total = _to_decimal(seconds)
    except (TypeError, ValueError, InvalidOperation):
        return MISSING
    if total.is_infinite():
        return MISSING
    total = max(total, Decimal(0))
    size, key = next((size, key) for size, key in _DURATION_UNITS if total >= size or size == 1)
    count = (total / size).to_integral_value(rounding=ROUND_FLOOR)
    return t(key, lang, n=format_number(count, lang))
