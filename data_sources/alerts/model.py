"""What an alert rule is, and the validation of an operator's input into one.

A rule watches one KPI of one dataset (``config/datasets.toml``) for a scope:

* ``province``    — the province-wide figure (what the overview tile shows);
* ``ward``        — one current ward;
* ``each_ward``   — every current ward separately (one alert per ward);
* ``each_entity`` — every station, gauge, facility or road segment separately.

It compares the value with a warning and a critical threshold (either may be left out, not both).
A threshold is a number or the name of an attribute of the watched entity (``alert_level_2`` of a
river gauge), so one rule covers every gauge at its own flood level. ``hold_minutes`` is how long the
condition must stay true before the rule fires; ``clear_margin`` is the hysteresis: an active alert
clears only once the value is past the threshold by that margin. ``no_data`` says what happens when
the dataset is stale or a subject has no value: ``alert`` (raise a "no data" alert), ``keep`` (keep
the current state until data returns) or ``ignore`` (treat as normal: active alerts resolve).

Validation returns every problem at once as ``RuleError.errors``: field -> (message key, params);
the interface translates the keys (``alerts.error.<key>``) and shows each next to its field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Set
from dataclasses import dataclass, field, replace
from typing import Any

from config.datasets import Dataset, DatasetCatalogue, Kpi

PROVINCE, WARD, EACH_WARD, EACH_ENTITY = "province", "ward", "each_ward", "each_entity"
SCOPES = (PROVINCE, WARD, EACH_WARD, EACH_ENTITY)
COMPARATORS = (">", ">=", "<", "<=")
NO_DATA_ALERT, NO_DATA_KEEP, NO_DATA_IGNORE = "alert", "keep", "ignore"
NO_DATA_CHOICES = (NO_DATA_ALERT, NO_DATA_KEEP, NO_DATA_IGNORE)
MAX_HOLD_MINUTES = 24 * 60
MAX_NAME = 120
MAX_DESCRIPTION = 2000
MAX_TARGETS = 20

ENTITY_KINDS = ("state", "state_ratio", "latest_ratio", "latest_max")
"""KPI kinds computed from frames that keep the entity (state and the 48-hour fine buckets)."""
ENTITY_WINDOWS = ("today", "24h")
"""Windows of sum/ratio/mean KPIs served by the fine buckets, which keep the entity."""
HOURLY_ENTITY_WINDOWS = ("7d", "30d")
"""Windows served by the hourly rollups, which keep the entity only for ``by_entity`` datasets (35 days)."""
NEEDS_BY_ENTITY = "scope_needs_by_entity"
"""The problem of a per-entity rule on a dataset without ``by_entity``: its preview could not replay 7 days."""

_EMAIL = re.compile(r"^[^@\s,;<>]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_URL = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+(/\S*)?$")
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)$")

FieldErrors = dict[str, tuple[str, dict[str, Any]]]


class RuleError(ValueError):
    """Operator input that does not make a valid rule; ``errors`` maps each field to its problem."""

    def __init__(self, errors: FieldErrors) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{name}: {key} {params or ''}".strip() for name, (key, params) in errors.items()))


@dataclass(frozen=True)
class Threshold:
    """A fixed number, or the name of an attribute of the watched entity."""

    value: float | None = None
    attribute: str | None = None

    def __post_init__(self) -> None:
        if self.value is not None:
            object.__setattr__(self, "value", float(self.value))

    def resolve(self, attributes: Mapping[str, Any] | None) -> float | None:
        """The number to compare with; None when the entity lacks a numeric value for the attribute."""
        if self.attribute is None:
            return self.value
        raw = (attributes or {}).get(self.attribute)
        try:
            number = float(raw)
        except (TypeError, ValueError):
            return None
        return number if math.isfinite(number) else None

    def describe(self) -> str:
        """``150`` or ``@alert_level_2``."""
        return f"@{self.attribute}" if self.attribute else f"{self.value:g}"


@dataclass(frozen=True)
class Rule:
    """One alert rule; ``id`` and ``version`` are None/0 until stored."""

    name: str
    dataset: str
    kpi: str
    scope: str
    comparator: str
    warning: Threshold | None
    critical: Threshold | None
    ward: str | None = None
    hold_minutes: int = 0
    clear_margin: float = 0.0
    no_data: str = NO_DATA_KEEP
    enabled: bool = True
    owner: str = ""
    description: str = ""
    targets: tuple[str, ...] = ()
    id: int | None = None
    version: int = 0

    @property
    def rising(self) -> bool:
        """True for "greater than" rules: a higher value is worse."""
        return self.comparator in (">", ">=")

    @property
    def levels(self) -> tuple[tuple[str, Threshold], ...]:
        """(severity, threshold) pairs that are set, critical first."""
        pairs = (("critical", self.critical), ("warning", self.warning))
        return tuple((name, threshold) for name, threshold in pairs if threshold is not None)

    @property
    def uses_attributes(self) -> bool:
        """True when a threshold refers to an entity attribute."""
        return any(threshold.attribute for _, threshold in self.levels)

    def as_form(self) -> dict[str, Any]:
        """The rule as the editing form holds it (the inverse of ``validate_rule``)."""

        def number(threshold: Threshold | None) -> str:
            return "" if threshold is None or threshold.value is None else f"{threshold.value:g}"

        def attribute(threshold: Threshold | None) -> str | None:
            return threshold.attribute if threshold else None

        return {
            "name": self.name,
            "dataset": self.dataset,
            "kpi": self.kpi,
            "scope": self.scope,
            "ward": self.ward,
            "comparator": self.comparator,
            "warning": number(self.warning),
            "warning_attribute": attribute(self.warning),
            "critical": number(self.critical),
            "critical_attribute": attribute(self.critical),
            "hold_minutes": str(self.hold_minutes),
            "clear_margin": f"{self.clear_margin:g}",
            "no_data": self.no_data,
            "enabled": self.enabled,
            "owner": self.owner,
            "description": self.description,
            "targets": "\n".join(self.targets),
        }


def parse_number(text: Any) -> float:
    """A finite number from a form: ``150``, ``-2``, ``1.5`` or ``1,5`` (no thousands separators).

    ``ValueError`` for anything else, including ``nan``, ``inf`` and ``1.234,5`` (ambiguous).
    """
    if isinstance(text, bool):
        raise ValueError(text)
    if isinstance(text, int | float):
        number = float(text)
    else:
        cleaned = str(text).strip().replace(" ", "")
        if not _NUMBER.match(cleaned):
            raise ValueError(text)
        number = float(cleaned.replace(",", "."))
    if not math.isfinite(number):
        raise ValueError(text)
    return number


def kpi_has_entity_detail(dataset: Dataset, kpi: Kpi) -> bool:
    """True when the snapshot keeps this KPI's inputs per entity, so it can be watched per entity."""
    if dataset.entity is None:
        return False
    if kpi.kind in ENTITY_KINDS:
        return True
    if kpi.kind not in ("sum", "ratio", "mean"):
        return False
    return kpi.window in ENTITY_WINDOWS or (dataset.by_entity and kpi.window in HOURLY_ENTITY_WINDOWS)


def parse_targets(text: Any) -> tuple[str, ...]:
    """Notification targets from a form: one per line (commas and semicolons also separate)."""
    parts = [str(p) for p in text] if isinstance(text, list | tuple) else re.split(r"[\n,;]+", str(text or ""))
    return tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))


def target_kind(target: str) -> str | None:
    """``webhook`` for an http(s) URL, ``email`` for an address (``mailto:`` allowed), else None."""
    if _URL.match(target):
        return "webhook"
    address = target.removeprefix("mailto:")
    return "email" if _EMAIL.match(address) else None


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return "" if value is None else str(value).strip()


def _threshold(
    form: Mapping[str, Any], name: str, dataset: Dataset | None, scope: str, errors: FieldErrors
) -> Threshold | None:
    number_text = _text(form, name)
    attribute = _text(form, f"{name}_attribute") or None
    if number_text and attribute:
        errors[name] = ("number_or_attribute", {})
        return None
    if attribute:
        known = dataset.reference.attributes if dataset and dataset.reference else ()
        if attribute not in known:
            errors[name] = ("unknown_attribute", {"attribute": attribute})
            return None
        if scope != EACH_ENTITY:
            errors[name] = ("attribute_needs_entity_scope", {})
            return None
        return Threshold(attribute=attribute)
    if not number_text:
        return None
    try:
        return Threshold(value=parse_number(number_text))
    except ValueError:
        errors[name] = ("not_a_number", {"value": number_text})
        return None


def validate_rule(
    form: Mapping[str, Any], catalogue: DatasetCatalogue, ward_codes: Set[str], *, owner: str = ""
) -> Rule:
    """A valid ``Rule`` from form values, or ``RuleError`` listing every field's problem."""
    errors: FieldErrors = {}
    name = _text(form, "name")
    if not name:
        errors["name"] = ("required", {})
    elif len(name) > MAX_NAME:
        errors["name"] = ("too_long", {"max": MAX_NAME})

    dataset: Dataset | None = None
    kpi: Kpi | None = None
    dataset_id = _text(form, "dataset")
    try:
        dataset = catalogue.get(dataset_id)
    except KeyError:
        errors["dataset"] = ("unknown_dataset", {"dataset": dataset_id}) if dataset_id else ("required", {})
    kpi_id = _text(form, "kpi")
    if dataset is not None:
        try:
            kpi = dataset.kpi(kpi_id)
        except KeyError:
            errors["kpi"] = ("unknown_kpi", {"kpi": kpi_id}) if kpi_id else ("required", {})

    scope = _text(form, "scope")
    if scope not in SCOPES:
        errors["scope"] = ("invalid_choice", {})
    elif scope == EACH_ENTITY and dataset is not None:
        if dataset.entity is None:
            errors["scope"] = ("scope_no_entities", {})
        elif not dataset.by_entity:
            errors["scope"] = (NEEDS_BY_ENTITY, {"dataset": dataset.id})
        elif kpi is not None and not kpi_has_entity_detail(dataset, kpi):
            errors["scope"] = ("scope_kpi_no_entity_detail", {})

    ward = _text(form, "ward") or None
    if scope == WARD:
        if ward is None:
            errors["ward"] = ("required", {})
        elif ward not in ward_codes:
            errors["ward"] = ("unknown_ward", {"ward": ward})
    else:
        ward = None

    comparator = _text(form, "comparator")
    if comparator not in COMPARATORS:
        errors["comparator"] = ("invalid_choice", {})

    warning = _threshold(form, "warning", dataset, scope, errors)
    critical = _threshold(form, "critical", dataset, scope, errors)
    if warning is None and critical is None and "warning" not in errors and "critical" not in errors:
        errors["warning"] = ("one_level_required", {})
    if (
        warning is not None
        and critical is not None
        and warning.value is not None
        and critical.value is not None
        and comparator in COMPARATORS
    ):
        rising = comparator in (">", ">=")
        if rising and warning.value >= critical.value:
            errors["warning"] = ("warning_not_below_critical", {})
        elif not rising and warning.value <= critical.value:
            errors["warning"] = ("warning_not_above_critical", {})

    hold_minutes = 0
    hold_text = _text(form, "hold_minutes") or "0"
    try:
        hold_number = parse_number(hold_text)
        if hold_number != int(hold_number):
            raise ValueError(hold_text)
        hold_minutes = int(hold_number)
        if not 0 <= hold_minutes <= MAX_HOLD_MINUTES:
            errors["hold_minutes"] = ("out_of_range", {"min": 0, "max": MAX_HOLD_MINUTES})
    except ValueError:
        errors["hold_minutes"] = ("not_a_whole_number", {"value": hold_text})

    clear_margin = 0.0
    margin_text = _text(form, "clear_margin") or "0"
    try:
        clear_margin = parse_number(margin_text)
        if clear_margin < 0:
            errors["clear_margin"] = ("negative", {})
    except ValueError:
        errors["clear_margin"] = ("not_a_number", {"value": margin_text})

    no_data = _text(form, "no_data") or NO_DATA_KEEP
    if no_data not in NO_DATA_CHOICES:
        errors["no_data"] = ("invalid_choice", {})

    description = _text(form, "description")
    if len(description) > MAX_DESCRIPTION:
        errors["description"] = ("too_long", {"max": MAX_DESCRIPTION})

    targets = parse_targets(form.get("targets"))
    bad = [target for target in targets if target_kind(target) is None]
    if bad:
        errors["targets"] = ("bad_target", {"target": bad[0]})
    elif len(targets) > MAX_TARGETS:
        errors["targets"] = ("too_many_targets", {"max": MAX_TARGETS})

    rule_owner = _text(form, "owner") or owner
    if not rule_owner:
        errors["owner"] = ("required", {})

    if errors:
        raise RuleError(errors)
    assert dataset is not None and kpi is not None
    enabled = form.get("enabled", True)
    if isinstance(enabled, list | tuple):  # a Dash checklist
        enabled = bool(enabled)
    return Rule(
        name=name,
        dataset=dataset.id,
        kpi=kpi.id,
        scope=scope,
        ward=ward,
        comparator=comparator,
        warning=warning,
        critical=critical,
        hold_minutes=hold_minutes,
        clear_margin=clear_margin,
        no_data=no_data,
        enabled=bool(enabled),
        owner=rule_owner,
        description=description,
        targets=targets,
    )


def config_problems(rule: Rule, catalogue: DatasetCatalogue, ward_codes: Set[str]) -> FieldErrors:
    """What no longer fits in a stored rule after the configuration changed (empty when it is fine)."""
    try:
        validate_rule(rule.as_form(), catalogue, ward_codes, owner=rule.owner or "-")
    except RuleError as error:
        return error.errors
    return {}


def evaluation_problems(rule: Rule, catalogue: DatasetCatalogue, ward_codes: Set[str]) -> FieldErrors:
    """The config problems that stop the poller evaluating a stored rule.

    A per-entity rule saved before its dataset lost ``by_entity`` keeps running while its KPI is still
    kept per entity (only the 7-day preview needs the per-entity history); the rules page still shows
    the problem so that the configuration gets fixed.
    """
    problems = config_problems(rule, catalogue, ward_codes)
    if problems.get("scope", ("",))[0] == NEEDS_BY_ENTITY:
        try:
            dataset = catalogue.get(rule.dataset)
            evaluable = kpi_has_entity_detail(dataset, dataset.kpi(rule.kpi))
        except KeyError:
            evaluable = False
        if evaluable:
            del problems["scope"]
        else:
            problems["scope"] = ("scope_kpi_no_entity_detail", {})
    return problems


@dataclass(frozen=True)
class Silence:
    """A rule or a ward muted for a period, with a reason: alerts still change state and are recorded,
    but are not notified and leave the banner."""

    id: int
    rule_id: int | None
    ward: str | None
    starts_at: Any
    ends_at: Any
    reason: str
    created_by: str
    ended_at: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def covers(self, rule_id: int | None, ward: str | None, now: Any) -> bool:
        """True when the silence is in force at ``now`` for this rule and subject ward."""
        if self.ended_at is not None and self.ended_at <= now:
            return False
        if not (self.starts_at <= now < self.ends_at):
            return False
        if self.rule_id is not None and self.rule_id != rule_id:
            return False
        return not (self.ward is not None and self.ward != ward)


def with_id(rule: Rule, rule_id: int, version: int) -> Rule:
    """The rule as stored."""
    return replace(rule, id=rule_id, version=version)
