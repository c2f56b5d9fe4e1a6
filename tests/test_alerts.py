"""The alert lifecycle as a pure function, and rule validation: every transition with an injected clock."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from config.datasets import load_datasets
from data_sources.alerts.evaluate import (
    _IDS,
    ACKNOWLEDGED,
    CRITICAL,
    FIRING,
    NO_DATA,
    NOTIFIED_KINDS,
    OK,
    PENDING,
    RESOLVED,
    WARNING,
    AlertState,
    Observation,
    TransitionError,
    acknowledge,
    evaluate,
    evaluate_rule,
)
from data_sources.alerts.model import (
    EACH_ENTITY,
    Rule,
    RuleError,
    Threshold,
    config_problems,
    evaluation_problems,
    parse_number,
    validate_rule,
)
from layouts.i18n import t

SUBJECT = "ward:19753"


def aqi_rule(**changes) -> Rule:
    """AQI-like rule: >= 150 warning, >= 200 critical."""
    rule = Rule(
        id=7,
        name="PM2.5",
        dataset="env_air",
        kpi="pm25_max",
        scope="each_ward",
        comparator=">=",
        warning=Threshold(150),
        critical=Threshold(200),
    )
    return replace(rule, **changes)


class Lifecycle:
    """Feeds values to ``evaluate`` one poll at a time, keeping state and events."""

    def __init__(self, rule: Rule, clock) -> None:
        self.rule, self.clock = rule, clock
        self.state = AlertState()
        self.events = []

    def see(self, value, *, minutes: float = 1, stale: bool = False, silenced: bool = False, attrs=None):
        self.clock.advance(minutes=minutes)
        warning = self.rule.warning.resolve(attrs) if self.rule.warning else None
        critical = self.rule.critical.resolve(attrs) if self.rule.critical else None
        observation = Observation(value, warning, critical, stale)
        self.state, events = evaluate(self.rule, SUBJECT, observation, self.state, self.clock(), silenced=silenced)
        self.events.extend(events)
        return [e.kind for e in events]

    def ack(self, who="van_hanh", comment="đang xử lý"):
        self.clock.advance(minutes=1)
        self.state, event = acknowledge(self.state, who, comment, self.clock(), rule_id=self.rule.id, subject=SUBJECT)
        self.events.append(event)
        return event


class TestTransitions:
    def test_ok_stays_ok_below_the_thresholds_without_events(self, clock):
        life = Lifecycle(aqi_rule(), clock)
        assert life.see(120) == []
        assert life.state.state == OK

    def test_hold_zero_fires_at_once_with_a_warning(self, clock):
        life = Lifecycle(aqi_rule(), clock)
        assert life.see(160) == ["fired"]
        assert (life.state.state, life.state.severity, life.state.threshold) == (FIRING, WARNING, 150)
        assert life.events[0].notify and life.events[0].alert_id == life.state.alert_id

    def test_pending_until_the_hold_duration_has_passed_then_fires(self, clock):
        life = Lifecycle(aqi_rule(hold_minutes=10), clock)
        started = clock()
        assert life.see(160, minutes=0) == ["pending"]
        assert life.state.state == PENDING and life.state.since == started
        assert life.see(170, minutes=9) == []
        assert life.state.state == PENDING
        assert life.see(170, minutes=1) == ["fired"]
        assert life.state.state == FIRING and life.state.since == started.replace() + (clock() - started)

    def test_pending_cancelled_when_the_condition_goes_away_before_the_hold(self, clock):
        life = Lifecycle(aqi_rule(hold_minutes=10), clock)
        life.see(160)
        assert life.see(140, minutes=5) == ["pending_cancelled"]
        assert life.state.state == OK
        assert not any(e.notify for e in life.events), "nothing notified for a condition that did not hold"
        assert life.see(160, minutes=5) == ["pending"], "the hold starts again from zero"

    def test_critical_directly(self, clock):
        life = Lifecycle(aqi_rule(), clock)
        assert life.see(250) == ["fired"]
        assert life.state.severity == CRITICAL and life.state.threshold == 200

    def test_warning_escalates_to_critical_and_notifies(self, clock):
        life = Lifecycle(aqi_rule(), clock)
        life.see(160)
        alert = life.state.alert_id
        assert life.see(210) == ["escalated"]
        assert life.state.severity == CRITICAL and life.state.alert_id == alert, "same alert, higher severity"
        assert life.events[-1].notify

    def test_escalation_is_held_like_firing(self, clock):
        life = Lifecycle(aqi_rule(hold_minutes=5), clock)
        life.see(160, minutes=0)
        life.see(160, minutes=5)
        assert life.state.severity == WARNING
        assert life.see(230, minutes=1) == []
        assert life.state.escalating_to == CRITICAL
        assert life.see(230, minutes=5) == ["escalated"]
        assert life.state.severity == CRITICAL and life.state.escalating_to is None

    def test_acknowledged_warning_escalating_to_critical_fires_again(self, clock):
        life = Lifecycle(aqi_rule(), clock)
        life.see(160)
        event = life.ack(comment="đội môi trường đã ra hiện trường")
        assert life.state.state == ACKNOWLEDGED
        assert (event.actor, event.comment, event.at) == ("van_hanh", "đội môi trường đã ra hiện trường", clock())
        assert life.see(205) == ["escalated"]
        assert life.state.state == FIRING and life.state.severity == CRITICAL
        assert life.state.acked_by is None, "the new severity needs a new acknowledgement"
        assert life.events[-1].from_state == ACKNOWLEDGED and life.events[-1].notify

    def test_acknowledged_alert_stays_acknowledged_while_the_value_moves_within_its_level(self, clock):
        life = Lifecycle(aqi_rule(), clock)
        life.see(160)
        life.ack()
        assert life.see(175) == []
        assert life.state.state == ACKNOWLEDGED and life.state.value == 175

    def test_critical_falling_to_warning_is_recorded_without_notification(self, clock):
        life = Lifecycle(aqi_rule(), clock)
        life.see(250)
        assert life.see(170) == ["deescalated"]
        assert life.state.severity == WARNING and life.state.state == FIRING
        assert not life.events[-1].notify

    def test_resolved_when_the_value_goes_back_and_refiring_is_a_new_alert(self, clock):
        life = Lifecycle(aqi_rule(), clock)
        life.see(160)
        first = life.state.alert_id
        assert life.see(100) == ["resolved"]
        assert life.state.state == RESOLVED and life.events[-1].notify
        assert life.see(100) == [], "resolved stays resolved without new events"
        assert life.see(165) == ["fired"]
        assert life.state.alert_id != first

    def test_acknowledged_alert_resolves(self, clock):
        life = Lifecycle(aqi_rule(), clock)
        life.see(160)
        life.ack()
        assert life.see(90) == ["resolved"]
        assert life.events[-1].from_state == ACKNOWLEDGED

    def test_acknowledging_needs_a_firing_alert(self, clock):
        life = Lifecycle(aqi_rule(), clock)
        with pytest.raises(TransitionError, match="not_firing"):
            life.ack()
        life.see(160)
        life.ack()
        with pytest.raises(TransitionError, match="already_acknowledged"):
            life.ack()
        life.see(10)
        with pytest.raises(TransitionError, match="not_firing"):
            life.ack()

    def test_every_transition_has_a_distinct_event_id(self, clock):
        life = Lifecycle(aqi_rule(hold_minutes=2), clock)
        for value in (160, 160, 160, 210, 210, 210, 170, 90, 160, 160, 160):
            life.see(value)
        ids = [e.event_id for e in life.events]
        assert len(ids) == len(set(ids))
        assert [e.kind for e in life.events] == [
            "pending",
            "fired",
            "escalated",
            "deescalated",
            "resolved",
            "pending",
            "fired",
        ]

    def test_same_inputs_give_the_same_output(self, clock):
        rule, now = aqi_rule(), clock()
        first = evaluate(rule, SUBJECT, Observation(180, 150, 200), AlertState(), now)
        again = evaluate(rule, SUBJECT, Observation(180, 150, 200), AlertState(), now)
        assert first == again


STATE_DIAGRAM = {
    (OK, "pending", PENDING),
    (PENDING, "pending_cancelled", OK),
    (PENDING, "fired", FIRING),
    (OK, "fired", FIRING),
    (RESOLVED, "pending", PENDING),
    (RESOLVED, "fired", FIRING),
    (FIRING, "escalated", FIRING),
    (FIRING, "deescalated", FIRING),
    (FIRING, "acknowledged", ACKNOWLEDGED),
    (FIRING, "unmuted", FIRING),
    (FIRING, "resolved", RESOLVED),
    (ACKNOWLEDGED, "escalated", FIRING),
    (ACKNOWLEDGED, "deescalated", ACKNOWLEDGED),
    (ACKNOWLEDGED, "resolved", RESOLVED),
}
"""Every edge of the lifecycle (evaluate.py's diagram): (from state, event kind, to state)."""


class TestEveryTransition:
    def test_the_lifecycle_walks_every_edge_of_the_state_diagram_and_notifies_only_where_it_should(self, clock):
        lives = []
        direct = Lifecycle(aqi_rule(), clock)
        direct.see(160)  # ok -> firing (warning)
        direct.see(210)  # escalated to critical
        direct.see(170)  # back to warning, recorded only
        direct.ack()
        direct.see(210)  # an acknowledged warning turning critical fires again
        direct.ack()
        direct.see(170)  # an acknowledged critical falling to warning stays acknowledged
        assert direct.state.state == ACKNOWLEDGED and direct.state.severity == WARNING
        direct.see(100)  # acknowledged -> resolved
        direct.see(160)  # resolved -> a new alert
        direct.see(100)  # firing -> resolved
        lives.append(direct)
        held = Lifecycle(aqi_rule(hold_minutes=10), clock)
        held.see(160)  # ok -> pending
        held.see(100, minutes=5)  # pending -> ok
        held.see(160)
        held.see(160, minutes=10)  # pending -> firing
        held.see(100)
        held.see(160)  # resolved -> pending
        lives.append(held)
        muted = Lifecycle(aqi_rule(), clock)
        muted.see(160, silenced=True)  # fires, recorded without notification
        muted.see(160)  # the silence is over: notified now
        lives.append(muted)

        events = [e for life in lives for e in life.events]
        assert {(e.from_state, e.kind, e.to_state) for e in events} == STATE_DIAGRAM
        for event in events:
            assert event.notify == (event.kind in NOTIFIED_KINDS and not event.silenced), event
        assert [e.kind for e in muted.events] == ["fired", "unmuted"] and muted.events[0].silenced


class TestHysteresis:
    def test_a_value_hovering_at_the_line_does_not_flap(self, clock):
        life = Lifecycle(aqi_rule(clear_margin=10), clock)
        kinds = [life.see(v) for v in (151, 149, 152, 145, 148, 150)]
        assert kinds == [["fired"], [], [], [], [], []]
        assert life.see(140) == [], "140 >= 150 - 10 still holds"
        assert life.see(139.9) == ["resolved"], "clears only once past the margin"

    def test_without_margin_the_same_values_flap(self, clock):
        life = Lifecycle(aqi_rule(), clock)
        kinds = [life.see(v) for v in (151, 149, 152)]
        assert kinds == [["fired"], ["resolved"], ["fired"]]

    def test_margin_applies_to_the_critical_level_too(self, clock):
        life = Lifecycle(aqi_rule(clear_margin=10), clock)
        life.see(205)
        assert life.see(195) == [], "still critical within the margin"
        assert life.see(189) == ["deescalated"]
        assert life.state.severity == WARNING

    def test_falling_rules_clear_above_the_threshold_plus_margin(self, clock):
        rule = aqi_rule(comparator="<", warning=Threshold(90), critical=Threshold(80), clear_margin=2)
        life = Lifecycle(rule, clock)
        assert life.see(89) == ["fired"]
        assert life.see(91) == [], "90 + 2 not reached"
        assert life.see(92.5) == ["resolved"]


class TestNoData:
    def test_alert_raises_a_no_data_alert_and_recovers(self, clock):
        life = Lifecycle(aqi_rule(no_data="alert"), clock)
        assert life.see(None) == ["fired"]
        assert life.state.severity == NO_DATA
        assert life.see(100) == ["resolved"]

    def test_alert_on_a_stale_dataset_even_with_an_old_value(self, clock):
        life = Lifecycle(aqi_rule(no_data="alert"), clock)
        assert life.see(100, stale=True) == ["fired"]
        assert life.state.severity == NO_DATA and life.state.value is None

    def test_no_data_then_a_real_breach_escalates(self, clock):
        life = Lifecycle(aqi_rule(no_data="alert"), clock)
        life.see(None)
        assert life.see(210) == ["escalated"]
        assert life.state.severity == CRITICAL

    def test_keep_leaves_a_firing_alert_as_it_is(self, clock):
        life = Lifecycle(aqi_rule(no_data="keep"), clock)
        life.see(210)
        before = life.state
        assert life.see(None) == [] and life.see(None, stale=True) == []
        assert life.state == before

    def test_keep_does_not_start_an_alert(self, clock):
        life = Lifecycle(aqi_rule(no_data="keep"), clock)
        assert life.see(None) == []
        assert life.state.state == OK

    def test_ignore_treats_missing_data_as_normal(self, clock):
        life = Lifecycle(aqi_rule(no_data="ignore"), clock)
        life.see(210)
        assert life.see(None) == ["resolved"]

    def test_held_no_data_alert_waits_like_any_other(self, clock):
        life = Lifecycle(aqi_rule(no_data="alert", hold_minutes=15), clock)
        assert life.see(None) == ["pending"]
        assert life.see(None, minutes=15) == ["fired"]


class TestSilencing:
    def test_a_muted_alert_changes_state_but_notifies_nothing(self, clock):
        life = Lifecycle(aqi_rule(), clock)
        assert life.see(170, silenced=True) == ["fired"]
        assert life.state.state == FIRING and not life.state.notified
        assert life.events[-1].silenced and not life.events[-1].notify

    def test_an_alert_that_fired_while_muted_is_notified_when_the_silence_ends(self, clock):
        life = Lifecycle(aqi_rule(), clock)
        life.see(170, silenced=True)
        assert life.see(170, silenced=True) == []
        assert life.see(170) == ["unmuted"]
        assert life.events[-1].notify and life.state.notified
        assert life.see(170) == []

    def test_resolving_an_alert_never_notified_sends_nothing(self, clock):
        life = Lifecycle(aqi_rule(), clock)
        life.see(170, silenced=True)
        assert life.see(10, silenced=True) == ["resolved"]
        assert not life.events[-1].notify


class TestEntityAttributes:
    def test_one_rule_covers_every_gauge_at_its_own_flood_level(self, clock):
        rule = aqi_rule(
            scope=EACH_ENTITY,
            dataset="env_river",
            kpi="level_max",
            comparator=">=",
            warning=Threshold(attribute="alert_level_2"),
            critical=Threshold(attribute="alert_level_3"),
        )
        gauges = {
            "TV01": {"alert_level_2": 3.0, "alert_level_3": 4.0},
            "TV02": {"alert_level_2": 1.5, "alert_level_3": 2.5},
        }
        observations = {
            f"entity:{g}": Observation(2.0, rule.warning.resolve(a), rule.critical.resolve(a))
            for g, a in gauges.items()
        }
        changes = evaluate_rule(rule, observations, {}, clock())
        assert [(c.subject, c.state.severity, c.state.threshold) for c in changes] == [("entity:TV02", WARNING, 1.5)]

    def test_an_entity_without_the_attribute_has_no_threshold(self):
        assert Threshold(attribute="alert_level_2").resolve({"alert_level_2": None}) is None
        assert Threshold(attribute="alert_level_2").resolve({}) is None
        assert Threshold(attribute="alert_level_2").resolve({"alert_level_2": "3.5"}) == 3.5


class TestEvaluateRule:
    def test_only_changed_subjects_are_returned(self, clock):
        rule = aqi_rule()
        observations = {f"ward:{i}": Observation(100 + i * 20, 150, 200) for i in range(6)}
        changes = evaluate_rule(rule, observations, {}, clock())
        assert sorted((c.subject, c.state.severity) for c in changes) == [
            ("ward:3", WARNING),
            ("ward:4", WARNING),
            ("ward:5", CRITICAL),
        ]

    def test_a_subject_that_disappeared_is_evaluated_as_no_data(self, clock):
        rule = aqi_rule(no_data="ignore")
        firing, _ = evaluate(rule, "entity:gone", Observation(250, 150, 200), AlertState(), clock())
        changes = evaluate_rule(rule, {}, {"entity:gone": firing}, clock())
        assert [c.state.state for c in changes] == [RESOLVED]

    def test_ids_are_the_uuid5_of_the_inputs_so_a_repeated_evaluation_writes_the_same_ids(self, clock):
        rule = replace(aqi_rule(), id=7)
        fired, [event] = evaluate(rule, "ward:19753", Observation(250, 150, 200), AlertState(), clock())
        alert_name = f"7|ward:19753|alert|{clock().isoformat()}"
        assert fired.alert_id == uuid.uuid5(_IDS, alert_name).hex
        event_name = f"7|ward:19753|{fired.alert_id}|fired|{clock().isoformat()}"
        assert event.event_id == uuid.uuid5(_IDS, event_name).hex


@pytest.fixture(scope="module")
def catalogue():
    return load_datasets()


WARDS = {"19753", "19774"}


def form(**changes):
    base = {
        "name": "PM2.5 cao",
        "dataset": "env_air",
        "kpi": "pm25_max",
        "scope": "each_ward",
        "comparator": ">=",
        "warning": "150",
        "critical": "200",
        "hold_minutes": "10",
        "clear_margin": "5",
        "no_data": "keep",
        "targets": "https://gateway.example.vn/hook\nmailto:truc.ban@hue.gov.vn",
        "owner": "van_hanh",
    }
    return base | changes


def errors_of(catalogue, **changes):
    with pytest.raises(RuleError) as caught:
        validate_rule(form(**changes), catalogue, WARDS)
    return {name: key for name, (key, _params) in caught.value.errors.items()}


class TestValidation:
    def test_a_complete_form_gives_a_rule(self, catalogue):
        rule = validate_rule(form(warning="150,5"), catalogue, WARDS)
        assert rule.warning == Threshold(150.5) and rule.critical == Threshold(200.0)
        assert rule.hold_minutes == 10 and rule.clear_margin == 5
        assert rule.targets == ("https://gateway.example.vn/hook", "mailto:truc.ban@hue.gov.vn")
        assert validate_rule(rule.as_form(), catalogue, WARDS) == rule, "the form round-trips"

    def test_thresholds_that_are_not_numbers(self, catalogue):
        assert errors_of(catalogue, warning="cao", critical="1.234,5") == {
            "warning": "not_a_number",
            "critical": "not_a_number",
        }
        for text in ("nan", "inf", "1e400", ""):
            with pytest.raises(ValueError):
                parse_number(text)

    def test_warning_above_critical_for_a_greater_than_rule(self, catalogue):
        assert errors_of(catalogue, warning="250", critical="200") == {"warning": "warning_not_below_critical"}
        assert errors_of(catalogue, comparator="<", warning="80", critical="90") == {
            "warning": "warning_not_above_critical"
        }
        assert validate_rule(form(comparator="<", warning="90", critical="80"), catalogue, WARDS).rising is False

    def test_a_kpi_or_attribute_that_does_not_exist(self, catalogue):
        assert errors_of(catalogue, kpi="aqi") == {"kpi": "unknown_kpi"}
        assert errors_of(catalogue, dataset="noise") == {"dataset": "unknown_dataset"}
        river = {"dataset": "env_river", "kpi": "level_max", "scope": "each_entity", "warning": "", "critical": ""}
        assert errors_of(catalogue, **river, warning_attribute="alert_level_9") == {"warning": "unknown_attribute"}
        rule = validate_rule(form(**river, warning_attribute="alert_level_2"), catalogue, WARDS)
        assert rule.warning == Threshold(attribute="alert_level_2")

    def test_an_attribute_threshold_needs_the_each_entity_scope(self, catalogue):
        river = {"dataset": "env_river", "kpi": "level_max", "warning": "", "critical": ""}
        assert errors_of(catalogue, **river, warning_attribute="alert_level_2") == {
            "warning": "attribute_needs_entity_scope"
        }

    def test_each_entity_needs_entities_and_a_kpi_kept_per_entity(self, catalogue):
        assert errors_of(catalogue, dataset="feedback", kpi="open", scope="each_entity") == {
            "scope": "scope_no_entities"
        }
        assert validate_rule(form(dataset="health_occupancy", kpi="occupancy", scope="each_entity"), catalogue, WARDS)
        assert validate_rule(
            form(dataset="traffic_readings", kpi="vehicles_today", scope="each_entity"), catalogue, WARDS
        )
        air = catalogue.get("env_air")
        weekly = replace(air, kpis=(replace(air.kpi("pm25_mean_24h"), window="7d"),))
        per_station = form(kpi="pm25_mean_24h", scope="each_entity")
        rule = validate_rule(per_station, replace(catalogue, datasets=(weekly,)), WARDS)
        assert rule.scope == "each_entity", "by_entity keeps 35 days of hourly rollups per station"
        forever = replace(air, kpis=(replace(air.kpi("pm25_mean_24h"), window="all"),))
        with pytest.raises(RuleError) as caught:
            validate_rule(per_station, replace(catalogue, datasets=(forever,)), WARDS)
        assert caught.value.errors == {"scope": ("scope_kpi_no_entity_detail", {})}, "daily rollups drop the station"
        for kpi in ("aqi_max", "stations_above_moderate"):
            assert errors_of(catalogue, kpi=kpi, scope="each_entity") == {"scope": "scope_kpi_no_entity_detail"}

    def test_every_dataset_with_entities_keeps_them_for_per_entity_rules(self, catalogue):
        with_entities = [d for d in catalogue if d.entity is not None]
        assert {d.id for d in with_entities} >= {"traffic_readings", "health_occupancy", "env_air", "env_river"}
        assert all(d.by_entity for d in with_entities), "each station's 7-day preview needs hourly_entity"

    def test_an_entity_dataset_without_by_entity_gets_a_config_message_and_stored_rules_keep_running(self, catalogue):
        air = replace(catalogue.get("env_air"), by_entity=False)
        no_history = replace(catalogue, datasets=(air,))
        with pytest.raises(RuleError) as caught:
            validate_rule(form(scope="each_entity"), no_history, WARDS)
        assert caught.value.errors == {"scope": ("scope_needs_by_entity", {"dataset": "env_air"})}
        assert "by_entity = true" in t("alerts.error.scope_needs_by_entity", "vi", dataset="env_air")
        assert "config/datasets.toml" in t("alerts.error.scope_needs_by_entity", "en", dataset="env_air")
        stored = validate_rule(form(scope="each_entity"), catalogue, WARDS)
        assert config_problems(stored, no_history, WARDS)["scope"][0] == "scope_needs_by_entity", "shown on the list"
        assert evaluation_problems(stored, no_history, WARDS) == {}, "the poller still evaluates it from fine buckets"
        weekly = replace(air, kpis=(replace(air.kpi("pm25_mean_24h"), window="7d"),))
        stored_weekly = replace(stored, kpi="pm25_mean_24h")
        assert evaluation_problems(stored_weekly, replace(catalogue, datasets=(weekly,)), WARDS) == {
            "scope": ("scope_kpi_no_entity_detail", {})
        }

    def test_one_ward_scope_needs_a_current_ward(self, catalogue):
        assert errors_of(catalogue, scope="ward") == {"ward": "required"}
        assert errors_of(catalogue, scope="ward", ward="00001") == {"ward": "unknown_ward"}
        assert validate_rule(form(scope="ward", ward="19753"), catalogue, WARDS).ward == "19753"

    def test_other_fields(self, catalogue):
        assert errors_of(
            catalogue,
            name="",
            hold_minutes="2,5",
            clear_margin="-1",
            targets="zalo:abc",
            warning="",
            critical="",
        ) == {
            "name": "required",
            "hold_minutes": "not_a_whole_number",
            "clear_margin": "negative",
            "targets": "bad_target",
            "warning": "one_level_required",
        }
        assert errors_of(catalogue, hold_minutes="5000") == {"hold_minutes": "out_of_range"}

    def test_a_stored_rule_whose_kpi_left_the_config_is_reported(self, catalogue):
        rule = validate_rule(form(), catalogue, WARDS)
        assert config_problems(rule, catalogue, WARDS) == {}
        gone = replace(rule, kpi="pm25_max_removed")
        assert config_problems(gone, catalogue, WARDS)["kpi"][0] == "unknown_kpi"
