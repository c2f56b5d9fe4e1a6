"""Accounts, sessions, login throttling and the audit log in the app database, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, text

from data_sources import throttle
from data_sources.users import (
    UserError,
    audit,
    audit_actions,
    audit_entries,
    create_schema,
    create_user,
    end_session,
    get_user_by_name,
    session_account,
    set_disabled,
    set_password,
    start_session,
    update_user,
    verify_password,
)
from data_sources.warehouse import create_warehouse_engine

PASSWORD = "correct horse battery"
NOW = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
POLICY = throttle.ThrottlePolicy(max_failures=3, base_delay_seconds=30, max_delay_seconds=300)


@pytest.fixture
def app_db(warehouse_url):
    """An empty app database with the schema, once on SQLite and once on PostgreSQL."""
    engine = create_warehouse_engine(warehouse_url)
    create_schema(engine)
    yield engine
    engine.dispose()


class TestAccounts:
    def test_passwords_are_stored_as_argon2id_hashes_and_verified(self, app_db):
        create_user(app_db, "lan", PASSWORD, "leader")
        with app_db.connect() as connection:
            stored = connection.execute(text("SELECT password_hash FROM users WHERE username = 'lan'")).scalar()
        assert stored.startswith("$argon2id$") and PASSWORD not in stored
        assert verify_password(app_db, "lan", PASSWORD).username == "lan"
        assert verify_password(app_db, "lan", "wrong password") is None
        assert verify_password(app_db, "nobody", PASSWORD) is None

    @pytest.mark.parametrize(
        ("username", "password", "role", "sectors", "wards", "code"),
        [
            ("bad name", PASSWORD, "leader", (), (), "bad_username"),
            ("", PASSWORD, "leader", (), (), "bad_username"),
            ("ok", "short", "leader", (), (), "password_short"),
            ("samesame12", "SameSame12", "leader", (), (), "password_is_username"),
            ("ok", PASSWORD, "king", (), (), "unknown_role"),
            ("ok", PASSWORD, "department_head", (), (), "sector_required"),
            ("ok", PASSWORD, "department_head", ("weather",), (), "unknown_sector"),
            ("ok", PASSWORD, "department_head", ("feedback",), ("99999",), "unknown_ward"),
        ],
    )
    def test_invalid_accounts_are_refused_with_a_code(self, app_db, username, password, role, sectors, wards, code):
        with pytest.raises(UserError) as refused:
            create_user(app_db, username, password, role, sectors=sectors, wards=wards, known_wards={"19753"})
        assert refused.value.code == code
        assert get_user_by_name(app_db, username) is None

    def test_a_taken_name_is_refused(self, app_db):
        create_user(app_db, "lan", PASSWORD, "leader")
        with pytest.raises(UserError, match="already exists"):
            create_user(app_db, "lan", PASSWORD, "operator")

    def test_only_department_heads_keep_a_scope(self, app_db):
        leader = create_user(app_db, "lan", PASSWORD, "leader", sectors=("traffic",), wards=("19753",))
        head = create_user(
            app_db, "minh", PASSWORD, "department_head", sectors=("feedback", "traffic"), wards=("19753",)
        )
        assert (leader.sectors, leader.wards, leader.scope.sectors) == ((), (), None)
        assert head.sectors == ("traffic", "feedback"), "kept in the catalogue's sector order"
        assert head.scope.allows_ward("19753") and not head.scope.allows_ward("19774")

    def test_update_reports_what_changed(self, app_db):
        create_user(app_db, "minh", PASSWORD, "department_head", sectors=("feedback",))
        account, changes = update_user(app_db, "minh", role="department_head", sectors=("traffic",), wards=("19753",))
        assert changes == ["sectors feedback->traffic", "wards -->19753"]
        assert account.sectors == ("traffic",) and account.wards == ("19753",)
        account, changes = update_user(app_db, "minh", role="operator")
        assert changes == ["role department_head->operator", "sectors traffic->-", "wards 19753->-"]
        assert update_user(app_db, "minh", role="operator")[1] == []

    def test_an_app_database_from_before_the_disabled_column_is_upgraded(self, warehouse_url):
        engine = create_warehouse_engine(warehouse_url)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "CREATE TABLE users (id INTEGER PRIMARY KEY, username VARCHAR(64) NOT NULL UNIQUE, "
                    "password_hash TEXT NOT NULL, role VARCHAR(32) NOT NULL, sectors TEXT NOT NULL, "
                    "wards TEXT NOT NULL, language VARCHAR(8) NOT NULL, display_name TEXT NOT NULL, "
                    "created_at TIMESTAMP NOT NULL)"
                )
            )
            connection.execute(
                text("INSERT INTO users VALUES (1, 'old', 'x', 'leader', '', '', 'vi', 'Old', '2025-01-01 00:00:00')")
            )
        create_schema(engine)
        assert "disabled" in {c["name"] for c in inspect(engine).get_columns("users")}
        assert get_user_by_name(engine, "old").disabled is False
        engine.dispose()


class TestSessions:
    def test_a_session_lives_until_logout_disable_or_password_reset(self, app_db):
        account = create_user(app_db, "lan", PASSWORD, "operator")
        first = start_session(app_db, account.id, "10.0.0.1")
        assert session_account(app_db, first).username == "lan"
        end_session(app_db, first, "logout")
        assert session_account(app_db, first) is None

        second, third = (start_session(app_db, account.id, "10.0.0.1") for _ in range(2))
        set_password(app_db, "lan", "another long password")
        assert session_account(app_db, second) is None and session_account(app_db, third) is None

        fourth = start_session(app_db, account.id, "10.0.0.1")
        set_disabled(app_db, "lan", True)
        assert session_account(app_db, fourth) is None
        set_disabled(app_db, "lan", False)
        assert session_account(app_db, fourth) is None, "re-enabling does not revive ended sessions"

    def test_only_a_hash_of_the_token_is_stored(self, app_db):
        account = create_user(app_db, "lan", PASSWORD, "operator")
        token = start_session(app_db, account.id, "10.0.0.1")
        with app_db.connect() as connection:
            stored = connection.execute(text("SELECT token_hash FROM user_sessions")).scalar()
        assert token not in stored and len(stored) == 64


class TestThrottle:
    def test_delays_start_at_the_limit_and_double_up_to_the_cap(self):
        delays = [POLICY.delay_after(n) for n in range(1, 9)]
        assert delays[:2] == [None, None]
        assert [d.total_seconds() for d in delays[2:]] == [30, 60, 120, 240, 300, 300]

    def test_failures_block_the_pair_with_growing_delays(self, app_db):
        now = NOW
        assert throttle.record_failure(app_db, "lan", "203.0.113.9", POLICY, now=now) is None
        assert throttle.record_failure(app_db, "lan", "203.0.113.9", POLICY, now=now) is None
        until = throttle.record_failure(app_db, "lan", "203.0.113.9", POLICY, now=now)
        assert until == now + timedelta(seconds=30)
        assert throttle.blocked_until(app_db, "LAN", "203.0.113.9", now=now + timedelta(seconds=29)) == until
        assert throttle.blocked_until(app_db, "lan", "10.46.1.20", now=now) is None, "another address is free"
        later = now + timedelta(seconds=31)
        assert throttle.blocked_until(app_db, "lan", "203.0.113.9", now=later) is None
        assert throttle.record_failure(app_db, "lan", "203.0.113.9", POLICY, now=later) == later + timedelta(seconds=60)
        blocks = throttle.active_blocks(app_db, now=later)
        assert [(b.username, b.address, b.failures) for b in blocks] == [("lan", "203.0.113.9", 4)]
        assert throttle.clear(app_db, "lan") == 1
        assert throttle.blocked_until(app_db, "lan", "203.0.113.9", now=later) is None

    def test_clearing_one_address_leaves_the_others_blocked(self, app_db):
        for address in ("203.0.113.9", "198.51.100.4"):
            for _ in range(3):
                throttle.record_failure(app_db, "lan", address, POLICY, now=NOW)
        assert throttle.clear(app_db, "lan", "203.0.113.9") == 1
        assert throttle.blocked_until(app_db, "lan", "198.51.100.4", now=NOW) is not None

    def test_failures_from_several_workers_at_once_are_all_counted(self, app_db):
        def worker():
            for _ in range(5):
                throttle.record_failure(app_db, "lan", "203.0.113.9", POLICY, now=NOW)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with app_db.connect() as connection:
            failures = connection.execute(text("SELECT failures FROM login_throttle")).scalar()
        assert failures == 20

    def test_old_unblocked_failures_are_forgotten(self, app_db):
        throttle.record_failure(app_db, "lan", "203.0.113.9", POLICY, now=NOW)
        throttle.record_failure(app_db, "minh", "203.0.113.9", POLICY, now=NOW + timedelta(days=2))
        with app_db.connect() as connection:
            names = list(connection.execute(text("SELECT username FROM login_throttle")).scalars())
        assert names == ["minh"]


class TestAuditLog:
    def test_filters_and_keyset_paging(self, app_db):
        for index in range(7):
            audit(app_db, "login", username="lan" if index % 2 else "minh", detail=f"n={index}", address="10.0.0.1")
        audit(app_db, "user_created", username="admin", detail="created 100%_sure", address="cli")
        assert audit_actions(app_db) == ["login", "user_created"]
        first = audit_entries(app_db, action="login", limit=3)
        assert [e.detail for e in first] == ["n=6", "n=5", "n=4"]
        second = audit_entries(app_db, action="login", limit=3, before_id=first[-1].id)
        assert [e.detail for e in second] == ["n=3", "n=2", "n=1"]
        assert [e.detail for e in audit_entries(app_db, username="lan")] == ["n=5", "n=3", "n=1"]
        assert [e.detail for e in audit_entries(app_db, contains="100%_SURE")] == ["created 100%_sure"]
        assert audit_entries(app_db, contains="100%x") == [], "% and _ are literal"
        now = datetime.now(UTC)
        assert len(audit_entries(app_db, start=now - timedelta(minutes=5), end=now + timedelta(minutes=5))) == 8
        assert audit_entries(app_db, end=now - timedelta(minutes=5)) == []
        assert first[0].at.tzinfo is not None
