"""Alert rules, states, events and silences in the app database, on SQLite and PostgreSQL.

The engine is driven with hand-made snapshots of the ``feedback`` dataset (open reports per ward),
so each test states exactly what the data says.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import func, select

from config.datasets import load_datasets
from config.roles import Scope
from data_sources.admin_units import crosswalk as unit_crosswalk
from data_sources.admin_units import current_units
from data_sources.alerts.engine import AlertEngine
from data_sources.alerts.evaluate import (
    ACKNOWLEDGED,
    FIRING,
    RESOLVED,
    AlertState,
    Change,
    Event,
    TransitionError,
)
from data_sources.alerts.model import Rule, Threshold
from data_sources.alerts.store import (
    ConflictError,
    HistoryFilter,
    SilenceError,
    acknowledge_alert,
    active_alerts,
    alert_history,
    apply_batch,
    apply_changes,
    create_silence,
    end_silence,
    get_rule,
    list_rules,
    load_states,
    save_rule,
    set_rule_enabled,
)
from data_sources.alerts.tables import alert_deliveries, alert_events, create_alert_schema
from data_sources.snapshots import MemorySnapshotStore, Snapshot
from data_sources.users import audit_table
from data_sources.warehouse import create_warehouse_engine

PHU_XUAN, THUAN_HOA = "19753", "19774"
EVERYONE = Scope(None, None)


@pytest.fixture(scope="module")
def world():
    units = current_units("46")
    return load_datasets(), unit_crosswalk("46"), list(units["code"])


@pytest.fixture
def app_db(warehouse_url):
    """An empty app database, on SQLite and on PostgreSQL."""
    engine = create_warehouse_engine(warehouse_url)
    create_alert_schema(engine)
    yield engine
    engine.dispose()


def open_reports(now, per_ward: dict[str, float], *, version: int = 1) -> Snapshot:
    """A feedback snapshot whose state frame holds ``per_ward`` open reports, polled at ``now``."""
    frame = pd.DataFrame({"unit": pd.Series(list(per_ward), dtype="string"), "open": list(per_ward.values())})
    return Snapshot("feedback", version, now, meta={"polled_at": now.isoformat()}, frames={"state": frame})


def feedback_rule(**changes) -> Rule:
    rule = Rule(
        name="Phản ánh tồn đọng",
        dataset="feedback",
        kpi="open",
        scope="each_ward",
        comparator=">",
        warning=Threshold(20),
        critical=Threshold(40),
        owner="van_hanh",
        targets=("https://hook.example.vn/ioc",),
    )
    return replace(rule, **changes)


def make_engine(app_db, world, clock) -> AlertEngine:
    catalogue, crosswalk, wards = world
    return AlertEngine(app_db, MemorySnapshotStore(), catalogue, crosswalk, wards, clock)


def events_of(app_db, alert_id=None):
    statement = select(alert_events).order_by(alert_events.c.id)
    if alert_id:
        statement = statement.where(alert_events.c.alert_id == alert_id)
    with app_db.connect() as connection:
        return [row._mapping for row in connection.execute(statement)]


class TestRules:
    def test_create_update_disable_are_audited_and_versioned(self, app_db, clock):
        rule = save_rule(app_db, feedback_rule(), actor="van_hanh", now=clock())
        assert rule.id is not None and rule.version == 1
        edited = save_rule(app_db, replace(rule, warning=Threshold(25)), actor="quan_tri", now=clock())
        assert edited.version == 2 and get_rule(app_db, rule.id).warning == Threshold(25)
        disabled = set_rule_enabled(app_db, rule.id, False, actor="van_hanh", now=clock())
        assert not disabled.enabled and list_rules(app_db, enabled_only=True) == []
        with app_db.connect() as connection:
            rows = connection.execute(select(audit_table).order_by(audit_table.c.id)).fetchall()
        assert [(r.action, r.username) for r in rows] == [
            ("alert_rule_create", "van_hanh"),
            ("alert_rule_update", "quan_tri"),
            ("alert_rule_disable", "van_hanh"),
        ]
        assert '"warning_value": [20.0, 25.0]' in rows[1].detail

    def test_saving_a_stale_copy_changes_nothing(self, app_db, clock):
        rule = save_rule(app_db, feedback_rule(), actor="van_hanh", now=clock())
        save_rule(app_db, replace(rule, name="Sửa lần 1"), actor="a", now=clock())
        with pytest.raises(ConflictError):
            save_rule(app_db, replace(rule, name="Sửa từ bản cũ"), actor="b", now=clock())
        assert get_rule(app_db, rule.id).name == "Sửa lần 1"

    def test_a_rule_round_trips_with_attribute_thresholds_and_targets(self, app_db, clock):
        rule = feedback_rule(
            dataset="env_river",
            kpi="level_max",
            scope="each_entity",
            warning=Threshold(attribute="alert_level_2"),
            critical=Threshold(attribute="alert_level_3"),
            targets=("mailto:phong.chong.lut@hue.gov.vn", "https://zalo-adapter.hue.gov.vn/ioc"),
            description="Mực nước vượt báo động II",
        )
        saved = save_rule(app_db, rule, actor="van_hanh", now=clock())
        assert get_rule(app_db, saved.id) == saved


class TestEvaluationInTheDatabase:
    def test_fire_acknowledge_resolve_are_stored_with_their_history(self, app_db, world, clock):
        save_rule(app_db, feedback_rule(), actor="van_hanh", now=clock())
        engine = make_engine(app_db, world, clock)
        report = engine.evaluate_dataset("feedback", snapshot=open_reports(clock(), {PHU_XUAN: 30, THUAN_HOA: 5}))
        assert (report.rules, report.subjects, report.changes) == (1, 40, 1)
        [alert] = active_alerts(app_db, EVERYONE, clock())
        assert (alert.ward, alert.severity, alert.state, alert.value) == (PHU_XUAN, "warning", FIRING, 30)

        clock.advance(minutes=3)
        acknowledge_alert(app_db, alert.alert_id, actor="van_hanh", comment="Đã giao phường xử lý", now=clock())
        [acked] = active_alerts(app_db, EVERYONE, clock())
        assert (acked.state, acked.acked_by, acked.ack_comment) == (ACKNOWLEDGED, "van_hanh", "Đã giao phường xử lý")

        clock.advance(minutes=3)
        engine.evaluate_dataset("feedback", snapshot=open_reports(clock(), {PHU_XUAN: 45}))
        [escalated] = active_alerts(app_db, EVERYONE, clock())
        assert (escalated.state, escalated.severity) == (FIRING, "critical"), "acknowledged warning fires again"

        clock.advance(minutes=3)
        engine.evaluate_dataset("feedback", snapshot=open_reports(clock(), {PHU_XUAN: 3}))
        assert active_alerts(app_db, EVERYONE, clock()) == []
        assert [e["kind"] for e in events_of(app_db, alert.alert_id)] == [
            "fired",
            "acknowledged",
            "escalated",
            "resolved",
        ]
        with app_db.connect() as connection:
            queued = connection.execute(select(alert_deliveries.c.event_id)).scalars().all()
        notified = [e["event_id"] for e in events_of(app_db) if e["kind"] in ("fired", "escalated", "resolved")]
        assert sorted(queued) == sorted(notified), "one outbox row per notified event and target"

    def test_refiring_after_resolve_is_a_new_alert_on_the_same_row(self, app_db, world, clock):
        rule = save_rule(app_db, feedback_rule(scope="ward", ward=PHU_XUAN), actor="van_hanh", now=clock())
        engine = make_engine(app_db, world, clock)
        alerts = []
        for minutes, value in ((0, 30), (5, 1), (10, 35)):
            clock.advance(minutes=minutes)
            engine.evaluate_dataset("feedback", snapshot=open_reports(clock(), {PHU_XUAN: value}))
            alerts += [a.alert_id for a in active_alerts(app_db, EVERYONE, clock())]
        assert len(alerts) == 2 and alerts[0] != alerts[1]
        assert [e["kind"] for e in events_of(app_db)] == ["fired", "resolved", "fired"]
        state = load_states(app_db, [rule.id])[rule.id][f"ward:{PHU_XUAN}"]
        assert (state.state, state.version, state.alert_id) == (FIRING, 3, alerts[1])

    def test_a_value_that_stays_put_writes_nothing_new(self, app_db, world, clock):
        save_rule(app_db, feedback_rule(), actor="van_hanh", now=clock())
        engine = make_engine(app_db, world, clock)
        engine.evaluate_dataset("feedback", snapshot=open_reports(clock(), {PHU_XUAN: 30}))
        clock.advance(minutes=1)
        report = engine.evaluate_dataset("feedback", snapshot=open_reports(clock(), {PHU_XUAN: 30}))
        assert report.events == 0 and len(events_of(app_db)) == 1

    def test_stale_dataset_raises_a_no_data_alert_through_the_sweep(self, app_db, world, clock):
        rule = save_rule(app_db, feedback_rule(scope="province", no_data="alert"), actor="van_hanh", now=clock())
        catalogue, crosswalk, wards = world
        store = MemorySnapshotStore()
        store.put("feedback", {"polled_at": clock()}, open_reports(clock(), {PHU_XUAN: 1}).frames)
        engine = AlertEngine(app_db, store, catalogue, crosswalk, wards, clock)
        assert engine.sweep() == [], "fresh: nothing to sweep"
        clock.advance(seconds=2 * catalogue.get("feedback").poll_seconds + 1)
        [report] = engine.sweep()
        assert report.stale
        [alert] = active_alerts(app_db, EVERYONE, clock())
        assert (alert.rule_id, alert.severity, alert.value) == (rule.id, "no_data", None)

    def test_a_rule_whose_kpi_left_the_config_is_skipped_and_the_others_still_run(self, app_db, world, clock):
        broken = save_rule(app_db, feedback_rule(kpi="open_removed"), actor="van_hanh", now=clock())
        save_rule(app_db, feedback_rule(name="ok"), actor="van_hanh", now=clock())
        report = make_engine(app_db, world, clock).evaluate_dataset(
            "feedback", snapshot=open_reports(clock(), {PHU_XUAN: 30})
        )
        assert report.invalid_rules == [broken.id] and report.changes == 1

    def test_a_losing_writer_writes_nothing(self, app_db, world, clock):
        rule = save_rule(app_db, feedback_rule(), actor="van_hanh", now=clock())
        engine = make_engine(app_db, world, clock)
        engine.evaluate_dataset("feedback", snapshot=open_reports(clock(), {PHU_XUAN: 30}))
        state = load_states(app_db, [rule.id])[rule.id][f"ward:{PHU_XUAN}"]
        outdated = replace(state, version=state.version - 1)
        change = Change(f"ward:{PHU_XUAN}", outdated, replace(state, state=RESOLVED), ())
        lost = apply_changes(app_db, rule, "feedback", [change], lambda s: (PHU_XUAN, None), clock())
        assert lost == [f"ward:{PHU_XUAN}"]
        assert load_states(app_db, [rule.id])[rule.id][f"ward:{PHU_XUAN}"] == state
        inserted_twice = Change("ward:19774", AlertState(), replace(state, version=0), ())
        assert apply_changes(app_db, rule, "feedback", [inserted_twice], lambda s: (None, None), clock()) == []
        assert apply_changes(app_db, rule, "feedback", [inserted_twice], lambda s: (None, None), clock()) == [
            "ward:19774"
        ]

    def test_one_batch_keeps_the_rows_it_won_and_hands_back_the_others(self, app_db, world, clock):
        """Inserts and conditional updates of several rules in one batch: a row whose version moved on and a
        subject inserted meanwhile are handed back; events and outbox rows are written for the won rows only."""
        hook = save_rule(app_db, feedback_rule(), actor="van_hanh", now=clock())
        mail = save_rule(app_db, feedback_rule(name="Thư", targets=("truc@hue.gov.vn",)), actor="van_hanh", now=clock())
        make_engine(app_db, world, clock).evaluate_dataset(
            "feedback", snapshot=open_reports(clock(), {PHU_XUAN: 30, THUAN_HOA: 30})
        )
        before = load_states(app_db, [hook.id, mail.id])
        clock.advance(minutes=1)
        now = clock()

        def change(subject: str, previous: AlertState, state: str, kind: str) -> Change:
            event_id = f"{kind}-{subject}-{previous.version}"
            event = Event(event_id, "a1", kind, previous.state, state, "warning", 3.0, 20.0, now, notify=True)
            return Change(subject, previous, replace(previous, state=state, since=now, notified=False), (event,))

        phu_xuan, thuan_hoa, other = f"ward:{PHU_XUAN}", f"ward:{THUAN_HOA}", "ward:19777"
        outdated = replace(before[hook.id][thuan_hoa], version=before[hook.id][thuan_hoa].version - 1)
        hook_changes = [
            change(phu_xuan, before[hook.id][phu_xuan], RESOLVED, "resolved"),  # won
            change(thuan_hoa, outdated, RESOLVED, "resolved"),  # lost: the row is a version further
        ]
        mail_changes = [
            change(other, AlertState(), FIRING, "fired"),  # won: a new row
            change(phu_xuan, AlertState(), FIRING, "fired"),  # lost: the row exists already
        ]
        with app_db.begin() as connection:
            lost = apply_batch(
                connection,
                [(hook, "feedback", hook_changes), (mail, "feedback", mail_changes)],
                lambda subject: (subject.removeprefix("ward:"), None),
                now,
            )

        assert {(rule.id, c.subject) for rule, changes in lost for c in changes} == {
            (hook.id, thuan_hoa),
            (mail.id, phu_xuan),
        }
        after = load_states(app_db, [hook.id, mail.id])
        assert after[hook.id][phu_xuan] == replace(hook_changes[0].state, version=2), "every field round-trips"
        assert after[hook.id][thuan_hoa] == before[hook.id][thuan_hoa]
        assert after[mail.id][other] == replace(mail_changes[0].state, version=1)
        assert after[mail.id][phu_xuan] == before[mail.id][phu_xuan]
        ours = {event.event_id for c in hook_changes + mail_changes for event in c.events}
        written = [e for e in events_of(app_db) if e["event_id"] in ours]
        assert sorted((e["rule_id"], e["subject"], e["kind"]) for e in written) == sorted(
            [(hook.id, phu_xuan, "resolved"), (mail.id, other, "fired")]
        )
        with app_db.connect() as connection:
            outbox = connection.execute(
                select(alert_deliveries.c.event_id, alert_deliveries.c.target).where(
                    alert_deliveries.c.event_id.in_([e["event_id"] for e in written])
                )
            ).all()
        assert sorted(outbox) == sorted(
            [(f"resolved-{phu_xuan}-1", "https://hook.example.vn/ioc"), (f"fired-{other}-0", "truc@hue.gov.vn")]
        ), "each rule's own targets, for the won rows only"


class TestConcurrentAcknowledgeAndResolve:
    ROUNDS = 12

    def test_an_acknowledge_between_the_pollers_read_and_write_is_kept_and_then_resolved(
        self, app_db, world, clock, monkeypatch
    ):
        """The exact interleaving: the poller reads 'firing', the operator acknowledges, the poller writes."""
        import data_sources.alerts.engine as engine_module

        rule = save_rule(app_db, feedback_rule(scope="ward", ward=PHU_XUAN), actor="van_hanh", now=clock())
        engine = make_engine(app_db, world, clock)
        engine.evaluate_dataset("feedback", snapshot=open_reports(clock(), {PHU_XUAN: 30}))
        [alert] = active_alerts(app_db, EVERYONE, clock())
        real_load = engine_module.load_states
        calls = []

        def load_then_operator_acknowledges(*args, **kwargs):
            states = real_load(*args, **kwargs)
            if not calls:
                acknowledge_alert(app_db, alert.alert_id, actor="van_hanh", comment="đã nhận", now=clock())
            calls.append(1)
            return states

        monkeypatch.setattr(engine_module, "load_states", load_then_operator_acknowledges)
        clock.advance(minutes=1)
        report = engine.evaluate_dataset("feedback", snapshot=open_reports(clock(), {PHU_XUAN: 1}))
        assert report.conflicts_retried == 1 and len(calls) == 2
        assert [e["kind"] for e in events_of(app_db, alert.alert_id)] == ["fired", "acknowledged", "resolved"]
        state = load_states(app_db, [rule.id])[rule.id][f"ward:{PHU_XUAN}"]
        assert (state.state, state.acked_by, state.version) == (RESOLVED, "van_hanh", 3)

    def test_one_consistent_state_whoever_wins(self, app_db, world, clock, warehouse_url):
        """An operator acknowledges while the poller resolves, on separate connections, many times."""
        rule = save_rule(app_db, feedback_rule(scope="ward", ward=PHU_XUAN), actor="van_hanh", now=clock())
        poller_side = make_engine(create_warehouse_engine(warehouse_url), world, clock)
        web_side = create_warehouse_engine(warehouse_url)
        outcomes = []
        for _round in range(self.ROUNDS):
            clock.advance(minutes=1)
            poller_side.evaluate_dataset("feedback", snapshot=open_reports(clock(), {PHU_XUAN: 30}))
            [alert] = active_alerts(app_db, EVERYONE, clock())
            barrier = threading.Barrier(2)
            result: dict[str, object] = {}

            def operator(alert_id=alert.alert_id, barrier=barrier, result=result):
                barrier.wait()
                try:
                    acknowledge_alert(web_side, alert_id, actor="van_hanh", comment="xem", now=clock())
                    result["ack"] = "ok"
                except TransitionError as error:
                    result["ack"] = error.reason

            def poller(barrier=barrier):
                barrier.wait()
                poller_side.evaluate_dataset("feedback", snapshot=open_reports(clock(), {PHU_XUAN: 2}))

            threads = [threading.Thread(target=operator), threading.Thread(target=poller)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            kinds = [e["kind"] for e in events_of(app_db, alert.alert_id)]
            state = load_states(app_db, [rule.id])[rule.id][f"ward:{PHU_XUAN}"]
            assert state.state == RESOLVED, "the poller's resolve is never lost"
            if result["ack"] == "ok":
                assert kinds == ["fired", "acknowledged", "resolved"]
                assert state.acked_by == "van_hanh", "the acknowledgement survives in the resolved alert"
            else:
                assert result["ack"] == "not_firing"
                assert kinds == ["fired", "resolved"]
            outcomes.append(result["ack"])
        assert set(outcomes) <= {"ok", "not_firing"}
        poller_side.app_db.dispose()
        web_side.dispose()


class TestSilences:
    def test_a_muted_ward_records_its_alerts_without_notifications_or_banner(self, app_db, world, clock):
        save_rule(app_db, feedback_rule(), actor="van_hanh", now=clock())
        _, _, wards = world
        silence = create_silence(
            app_db,
            rule_id=None,
            ward=PHU_XUAN,
            ends_at=clock() + timedelta(hours=2),
            reason="Bảo trì hệ thống tiếp nhận của phường",
            actor="van_hanh",
            now=clock(),
            ward_codes=wards,
        )
        engine = make_engine(app_db, world, clock)
        engine.evaluate_dataset("feedback", snapshot=open_reports(clock(), {PHU_XUAN: 30, THUAN_HOA: 30}))
        shown = active_alerts(app_db, EVERYONE, clock(), include_silenced=False)
        assert [a.ward for a in shown] == [THUAN_HOA]
        events = {e["ward"]: e for e in events_of(app_db)}
        assert events[PHU_XUAN]["silenced"] and not events[PHU_XUAN]["notify"]
        with app_db.connect() as connection:
            queued = connection.execute(select(alert_deliveries.c.event_id)).scalars().all()
        assert queued == [events[THUAN_HOA]["event_id"]]

        clock.advance(minutes=5)
        assert end_silence(app_db, silence.id, actor="van_hanh", now=clock())
        engine.evaluate_dataset("feedback", snapshot=open_reports(clock(), {PHU_XUAN: 30, THUAN_HOA: 30}))
        assert [e["kind"] for e in events_of(app_db) if e["ward"] == PHU_XUAN] == ["fired", "unmuted"]
        assert len(active_alerts(app_db, EVERYONE, clock(), include_silenced=False)) == 2
        with app_db.connect() as connection:
            actions = connection.execute(select(audit_table.c.action)).scalars().all()
        assert {"alert_silence_create", "alert_silence_end"} <= set(actions)

    def test_a_muted_rule_and_silence_validation(self, app_db, world, clock):
        rule = save_rule(app_db, feedback_rule(), actor="van_hanh", now=clock())
        _, _, wards = world
        with pytest.raises(SilenceError) as caught:
            create_silence(
                app_db, rule_id=None, ward=None, ends_at=clock(), reason=" ", actor="x", now=clock(), ward_codes=wards
            )
        assert set(caught.value.errors) == {"silence_target", "silence_until", "silence_reason"}
        create_silence(
            app_db,
            rule_id=rule.id,
            ward=None,
            ends_at=clock() + timedelta(minutes=30),
            reason="Đang hiệu chỉnh ngưỡng",
            actor="van_hanh",
            now=clock(),
        )
        make_engine(app_db, world, clock).evaluate_dataset("feedback", snapshot=open_reports(clock(), {PHU_XUAN: 30}))
        assert active_alerts(app_db, EVERYONE, clock(), include_silenced=False) == []
        clock.advance(minutes=31)
        assert len(active_alerts(app_db, EVERYONE, clock(), include_silenced=False)) == 1, "the silence ran out"


class TestScope:
    def test_department_heads_see_only_their_sectors_and_wards(self, app_db, world, clock):
        save_rule(app_db, feedback_rule(), actor="van_hanh", now=clock())
        save_rule(
            app_db,
            feedback_rule(name="Toàn tỉnh", scope="province", warning=Threshold(50), critical=Threshold(100)),
            actor="v",
            now=clock(),
        )
        make_engine(app_db, world, clock).evaluate_dataset(
            "feedback", snapshot=open_reports(clock(), {PHU_XUAN: 30, THUAN_HOA: 30})
        )
        assert len(active_alerts(app_db, EVERYONE, clock())) == 3
        feedback_head = Scope(frozenset({"feedback"}), None)
        assert len(active_alerts(app_db, feedback_head, clock())) == 3
        ward_head = Scope(frozenset({"feedback"}), frozenset({THUAN_HOA}))
        assert [a.ward for a in active_alerts(app_db, ward_head, clock())] == [THUAN_HOA]
        traffic_head = Scope(frozenset({"traffic"}), None)
        assert active_alerts(app_db, traffic_head, clock()) == []
        rows, total = alert_history(app_db, ward_head, HistoryFilter())
        assert total == 1 and rows[0]["ward"] == THUAN_HOA
        assert alert_history(app_db, traffic_head, HistoryFilter()) == ([], 0)
        [other] = [a for a in active_alerts(app_db, EVERYONE, clock()) if a.ward == PHU_XUAN]
        with pytest.raises(LookupError):
            acknowledge_alert(app_db, other.alert_id, actor="x", comment="y", now=clock(), scope=ward_head)

    def test_history_filters(self, app_db, world, clock):
        save_rule(app_db, feedback_rule(), actor="van_hanh", now=clock())
        engine = make_engine(app_db, world, clock)
        start = clock()
        engine.evaluate_dataset("feedback", snapshot=open_reports(clock(), {PHU_XUAN: 30, THUAN_HOA: 50}))
        clock.advance(hours=1)
        engine.evaluate_dataset("feedback", snapshot=open_reports(clock(), {PHU_XUAN: 0, THUAN_HOA: 0}))
        _rows, total = alert_history(app_db, EVERYONE, HistoryFilter())
        assert total == 4
        assert alert_history(app_db, EVERYONE, HistoryFilter(severity="critical"))[1] == 2
        assert alert_history(app_db, EVERYONE, HistoryFilter(kind="resolved"))[1] == 2
        assert alert_history(app_db, EVERYONE, HistoryFilter(ward=PHU_XUAN))[1] == 2
        window = HistoryFilter(start=start, end=start + timedelta(minutes=30))
        assert [r["kind"] for r in alert_history(app_db, EVERYONE, window)[0]] == ["fired", "fired"]
        with app_db.connect() as connection:
            assert connection.execute(select(func.count()).select_from(alert_events)).scalar_one() == 4
