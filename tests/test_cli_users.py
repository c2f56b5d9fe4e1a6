"""``python app.py users ...``: accounts from the command line, passwords never on the command line."""

from __future__ import annotations

import io
import secrets
import sys
from types import SimpleNamespace

import pytest

from data_sources import throttle
from data_sources.users import audit_entries, create_schema, get_user_by_name, verify_password
from data_sources.warehouse import create_warehouse_engine

PASSWORD = "typed at the prompt 42"


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """Run ``app.py users ...`` (the real entry point, in this process) against a fresh app database."""
    import app

    monkeypatch.setenv("IOC_WAREHOUSE_URL", f"sqlite:///{tmp_path / 'warehouse.db'}")
    monkeypatch.setenv("IOC_APP_DB_URL", f"sqlite:///{tmp_path / 'app.db'}")
    monkeypatch.setenv("IOC_SNAPSHOT_URL", f"sqlite:///{tmp_path / 'snapshots.db'}")
    monkeypatch.setenv("IOC_SECRET_KEY", secrets.token_urlsafe(48))
    engine = create_warehouse_engine(f"sqlite:///{tmp_path / 'app.db'}")
    create_schema(engine)

    def run(*args: str, stdin: str = "") -> SimpleNamespace:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        try:
            code = app.cli(["users", *args])
        except SystemExit as exit_:  # argparse refusals
            code = exit_.code
        out, err = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)

    yield run, engine
    engine.dispose()


def test_create_reads_the_password_from_stdin_and_never_prints_it(cli):
    run, engine = cli
    result = run(
        "create",
        "--username",
        "minh",
        "--role",
        "department_head",
        "--sector",
        "feedback",
        "--ward",
        "19753",
        stdin=PASSWORD + "\n",
    )
    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    account = verify_password(engine, "minh", PASSWORD)
    assert account.sectors == ("feedback",) and account.wards == ("19753",)
    (entry,) = audit_entries(engine, action="user_created")
    assert entry.username.startswith("cli:")
    assert entry.detail == "minh role=department_head sectors=feedback wards=19753"


def test_a_password_argument_is_refused(cli):
    run, engine = cli
    result = run("create", "--username", "minh", "--role", "leader", "--password", PASSWORD)
    assert result.returncode == 2 and "unrecognized arguments: --password" in result.stderr
    assert get_user_by_name(engine, "minh") is None


def test_bad_input_is_refused_with_a_one_line_reason(cli):
    run, engine = cli
    short = run("create", "--username", "minh", "--role", "leader", stdin="short\n")
    assert short.returncode == 2 and short.stderr.strip() == "error: passwords need at least 10 characters"
    ward = run(
        "create",
        "--username",
        "minh",
        "--role",
        "department_head",
        "--sector",
        "feedback",
        "--ward",
        "99999",
        stdin=PASSWORD + "\n",
    )
    assert ward.returncode == 2 and ward.stderr.strip() == "error: unknown ward code(s) 99999"
    missing = run("unlock", "--username", "nobody")
    assert missing.returncode == 2 and missing.stderr.strip() == "error: no user 'nobody'"
    assert get_user_by_name(engine, "minh") is None


def test_reset_unlock_disable_and_list(cli):
    run, engine = cli
    assert run("create", "--username", "lan", "--role", "operator", stdin=PASSWORD + "\n").returncode == 0
    for _ in range(5):
        throttle.record_failure(engine, "lan", "203.0.113.9", throttle.ThrottlePolicy())
    assert run("list").stdout.split()[-1] == "throttled"
    generated = run("reset-password", "--username", "lan", "--generate-password")
    new_password = generated.stdout.strip().rsplit(" ", 1)[-1]
    assert generated.returncode == 0 and verify_password(engine, "lan", new_password) is not None
    assert verify_password(engine, "lan", PASSWORD) is None
    assert run("list").stdout.split()[-1] == "active", "a reset also lifts the blocks"
    for _ in range(5):
        throttle.record_failure(engine, "lan", "203.0.113.9", throttle.ThrottlePolicy())
    assert run("unlock", "--username", "lan").stdout.strip() == "unlock lan: done"
    assert throttle.blocked_until(engine, "lan", "203.0.113.9") is None
    assert run("disable", "--username", "lan").returncode == 0
    assert run("list").stdout.split() == ["lan", "operator", "*", "*", "disabled"]
    actions = [e.action for e in reversed(audit_entries(engine))]
    assert actions == ["user_created", "password_reset", "user_unlocked", "user_disabled"]
