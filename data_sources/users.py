"""Accounts, sign-in sessions and the audit log in the app database (SQLite by default, PostgreSQL when configured).

Passwords are hashed with Argon2id and never logged. Every signed-in browser has one row in
``user_sessions`` (only a hash of its random token is stored), so logout, disabling an account and
a password reset end sessions on every web worker at once. Times are stored in UTC.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)

from config.datasets import SECTORS
from config.roles import DEPARTMENT_HEAD, ROLES, Scope, scope_for

metadata = MetaData()

users_table = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(32), nullable=False),
    Column("sectors", Text, nullable=False, default=""),
    Column("wards", Text, nullable=False, default=""),
    Column("language", String(8), nullable=False, default="vi"),
    Column("display_name", Text, nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
)

audit_table = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("username", String(64)),
    Column("action", String(64), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("address", String(64)),
)
Index("ix_audit_log_username", audit_table.c.username)

sessions_table = Table(
    "user_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("ended_reason", String(32)),
    Column("address", String(64)),
)

ADDED_COLUMNS = {
    ("users", "disabled"): {"sqlite": "BOOLEAN NOT NULL DEFAULT 0", "other": "BOOLEAN NOT NULL DEFAULT false"},
}
"""Columns added after the first release: created on older app databases by ``create_schema``."""

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 256
MAX_DISPLAY_NAME = 120
ACCOUNT_LANGUAGES = ("vi", "en")
SESSION_TOUCH_SECONDS = 60
"""A session's last-seen time is written at most once a minute (fewer writes on busy pages)."""
SESSION_RETENTION_DAYS = 30

_hasher = PasswordHasher()


class UserError(ValueError):
    """A user could not be created or changed; ``code`` and ``params`` let the interface translate why."""

    def __init__(self, message: str, code: str, **params: object) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


@dataclass(frozen=True)
class Account:
    """A person who may sign in."""

    id: int
    username: str
    role: str
    sectors: tuple[str, ...]
    wards: tuple[str, ...]
    language: str
    display_name: str
    disabled: bool = False

    @property
    def scope(self) -> Scope:
        """The sectors and wards this account may see."""
        return scope_for(self.role, self.sectors, self.wards)


def utc(moment: datetime | None) -> datetime | None:
    """``moment`` as an aware UTC datetime (SQLite hands stored UTC times back naive)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _split(text_value: str) -> tuple[str, ...]:
    return tuple(part for part in (text_value or "").split(",") if part)


def _account(row) -> Account:
    return Account(
        row.id,
        row.username,
        row.role,
        _split(row.sectors),
        _split(row.wards),
        row.language,
        row.display_name,
        bool(row.disabled),
    )


def create_schema(engine: Engine) -> None:
    """Create the app tables when missing and add columns that older app databases lack."""
    from data_sources import throttle  # noqa: F401  (its table shares this metadata)

    metadata.create_all(engine)
    inspector = inspect(engine)
    dialect = "sqlite" if engine.dialect.name == "sqlite" else "other"
    for (table, column), ddl in ADDED_COLUMNS.items():
        if column not in {c["name"] for c in inspector.get_columns(table)}:
            with engine.begin() as connection:
                connection.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl[dialect]}"))


# --- validation -----------------------------------------------------------------------------------


def check_password(password: str, username: str) -> None:
    """``UserError`` for a password that is too short, too long or the username itself."""
    if len(password) < MIN_PASSWORD:
        raise UserError(f"passwords need at least {MIN_PASSWORD} characters", "password_short", minimum=MIN_PASSWORD)
    if len(password) > MAX_PASSWORD:
        raise UserError(f"passwords have at most {MAX_PASSWORD} characters", "password_long", maximum=MAX_PASSWORD)
    if password.strip().lower() == username.strip().lower():
        raise UserError("the password must not be the username", "password_is_username")


def _checked_scope(
    role: str, sectors: tuple[str, ...], wards: tuple[str, ...], known_wards: AbstractSet[str] | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Validated (sectors, wards) for ``role``: only department heads keep a scope, and they need a sector."""
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}", "unknown_role", role=role)
    unknown = [s for s in sectors if s not in SECTORS]
    if unknown:
        raise UserError(
            f"unknown sector(s) {', '.join(unknown)}; expected {', '.join(SECTORS)}",
            "unknown_sector",
            sectors=", ".join(unknown),
        )
    if known_wards is not None:
        strange = [w for w in wards if w not in known_wards]
        if strange:
            raise UserError(f"unknown ward code(s) {', '.join(strange)}", "unknown_ward", wards=", ".join(strange))
    if role != DEPARTMENT_HEAD:
        return (), ()
    if not sectors:
        raise UserError("a department head needs at least one sector", "sector_required")
    ordered = tuple(s for s in SECTORS if s in sectors)
    return ordered, tuple(sorted(set(wards)))


def _check_username(username: str) -> None:
    if not USERNAME_PATTERN.match(username or ""):
        raise UserError(
            "a username has 1 to 64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit",
            "bad_username",
        )


# --- accounts -------------------------------------------------------------------------------------


def create_user(
    engine: Engine,
    username: str,
    password: str,
    role: str,
    *,
    sectors: tuple[str, ...] = (),
    wards: tuple[str, ...] = (),
    display_name: str = "",
    language: str = "vi",
    known_wards: AbstractSet[str] | None = None,
) -> Account:
    """Add an account; ``UserError`` for a bad name, role, sector, ward or password, or a taken name."""
    _check_username(username)
    sectors, wards = _checked_scope(role, tuple(sectors), tuple(wards), known_wards)
    check_password(password, username)
    if len(display_name) > MAX_DISPLAY_NAME:
        raise UserError(f"a display name has at most {MAX_DISPLAY_NAME} characters", "name_long")
    if language not in ACCOUNT_LANGUAGES:
        raise UserError(f"unknown language {language!r}", "unknown_language", language=language)
    with engine.begin() as connection:
        if connection.execute(select(users_table.c.id).where(users_table.c.username == username)).first():
            raise UserError(f"user {username!r} already exists", "username_taken", username=username)
        connection.execute(
            insert(users_table).values(
                username=username,
                password_hash=_hasher.hash(password),
                role=role,
                sectors=",".join(sectors),
                wards=",".join(wards),
                display_name=display_name.strip() or username,
                language=language,
                created_at=datetime.now(UTC),
                disabled=False,
            )
        )
    found = get_user_by_name(engine, username)
    assert found is not None
    return found


def _require(engine: Engine, username: str) -> Account:
    account = get_user_by_name(engine, username)
    if account is None:
        raise UserError(f"no user {username!r}", "no_such_user", username=username)
    return account


def update_user(
    engine: Engine,
    username: str,
    *,
    role: str,
    sectors: tuple[str, ...] = (),
    wards: tuple[str, ...] = (),
    display_name: str | None = None,
    known_wards: AbstractSet[str] | None = None,
) -> tuple[Account, list[str]]:
    """Change an account's role, scope and name; returns the account and what changed (for the audit log)."""
    before = _require(engine, username)
    sectors, wards = _checked_scope(role, tuple(sectors), tuple(wards), known_wards)
    name = before.display_name if display_name is None else (display_name.strip() or before.username)
    if len(name) > MAX_DISPLAY_NAME:
        raise UserError(f"a display name has at most {MAX_DISPLAY_NAME} characters", "name_long")
    changes = []
    if role != before.role:
        changes.append(f"role {before.role}->{role}")
    if sectors != before.sectors:
        changes.append(f"sectors {','.join(before.sectors) or '-'}->{','.join(sectors) or '-'}")
    if wards != before.wards:
        changes.append(f"wards {','.join(before.wards) or '-'}->{','.join(wards) or '-'}")
    if name != before.display_name:
        changes.append("display name")
    if changes:
        with engine.begin() as connection:
            connection.execute(
                update(users_table)
                .where(users_table.c.id == before.id)
                .values(role=role, sectors=",".join(sectors), wards=",".join(wards), display_name=name)
            )
    return _require(engine, username), changes


def set_password(engine: Engine, username: str, password: str) -> Account:
    """Give an account a new password and end every session it has."""
    account = _require(engine, username)
    check_password(password, username)
    with engine.begin() as connection:
        connection.execute(
            update(users_table).where(users_table.c.id == account.id).values(password_hash=_hasher.hash(password))
        )
    end_user_sessions(engine, account.id, "password_reset")
    return account


def set_disabled(engine: Engine, username: str, disabled: bool) -> Account:
    """Disable (ending every session) or re-enable an account."""
    account = _require(engine, username)
    with engine.begin() as connection:
        connection.execute(update(users_table).where(users_table.c.id == account.id).values(disabled=disabled))
    if disabled:
        end_user_sessions(engine, account.id, "disabled")
    return _require(engine, username)


def get_user(engine: Engine, user_id: int) -> Account | None:
    """The account with this id."""
    with engine.connect() as connection:
        row = connection.execute(select(users_table).where(users_table.c.id == user_id)).first()
    return _account(row) if row else None


def get_user_by_name(engine: Engine, username: str) -> Account | None:
    """The account with this username."""
    with engine.connect() as connection:
        row = connection.execute(select(users_table).where(users_table.c.username == username)).first()
    return _account(row) if row else None


def verify_password(engine: Engine, username: str, password: str) -> Account | None:
    """The account when the password matches (disabled ones too: the caller refuses them); None otherwise."""
    with engine.connect() as connection:
        row = connection.execute(select(users_table).where(users_table.c.username == username)).first()
    if row is None:
        _hasher.hash(password)  # same work as a real check, so timing does not reveal unknown names
        return None
    try:
        _hasher.verify(row.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(row.password_hash):
        with engine.begin() as connection:
            connection.execute(
                update(users_table).where(users_table.c.id == row.id).values(password_hash=_hasher.hash(password))
            )
    return _account(row)


def set_language(engine: Engine, user_id: int, language: str) -> None:
    """Remember the account's interface language."""
    with engine.begin() as connection:
        connection.execute(update(users_table).where(users_table.c.id == user_id).values(language=language))


def list_users(engine: Engine) -> list[Account]:
    """All accounts by username."""
    with engine.connect() as connection:
        rows = connection.execute(select(users_table).order_by(users_table.c.username)).fetchall()
    return [_account(row) for row in rows]


# --- sessions -------------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(engine: Engine, user_id: int, address: str | None, *, now: datetime | None = None) -> str:
    """Open a session for ``user_id``; returns its random token (only its hash is stored)."""
    now = now or datetime.now(UTC)
    token = secrets.token_urlsafe(32)
    with engine.begin() as connection:
        connection.execute(
            delete(sessions_table).where(sessions_table.c.last_seen_at < now - timedelta(days=SESSION_RETENTION_DAYS))
        )
        connection.execute(
            insert(sessions_table).values(
                token_hash=_token_hash(token), user_id=user_id, created_at=now, last_seen_at=now, address=address
            )
        )
    return token


_SESSION_ACCOUNT = (
    select(users_table)
    .join(sessions_table, sessions_table.c.user_id == users_table.c.id)
    .where(
        sessions_table.c.token_hash == bindparam("token_hash"),
        sessions_table.c.ended_at.is_(None),
        users_table.c.disabled.is_(False),
    )
)
"""Built once: every request of a signed-in user asks it (the statement and its cache key cost more than the query)."""


def session_account(engine: Engine, token: str) -> Account | None:
    """The account of an open session; None when the session ended or its account is disabled."""
    with engine.connect() as connection:
        row = connection.execute(_SESSION_ACCOUNT, {"token_hash": _token_hash(token)}).first()
    return _account(row) if row else None


def touch_session(engine: Engine, token: str, *, now: datetime | None = None) -> None:
    """Record activity on a session (written at most once a minute)."""
    now = now or datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            update(sessions_table)
            .where(
                sessions_table.c.token_hash == _token_hash(token),
                sessions_table.c.last_seen_at < now - timedelta(seconds=SESSION_TOUCH_SECONDS),
            )
            .values(last_seen_at=now)
        )


def end_session(engine: Engine, token: str, reason: str) -> None:
    """End one session (logout, inactivity)."""
    with engine.begin() as connection:
        connection.execute(
            update(sessions_table)
            .where(sessions_table.c.token_hash == _token_hash(token), sessions_table.c.ended_at.is_(None))
            .values(ended_at=datetime.now(UTC), ended_reason=reason)
        )


def end_user_sessions(engine: Engine, user_id: int, reason: str) -> int:
    """End every open session of an account; returns how many were open."""
    with engine.begin() as connection:
        result = connection.execute(
            update(sessions_table)
            .where(sessions_table.c.user_id == user_id, sessions_table.c.ended_at.is_(None))
            .values(ended_at=datetime.now(UTC), ended_reason=reason)
        )
    return result.rowcount


def open_session_counts(engine: Engine, *, idle_minutes: int, now: datetime | None = None) -> dict[int, int]:
    """Sessions per account seen within the idle limit and not ended."""
    now = now or datetime.now(UTC)
    query = (
        select(sessions_table.c.user_id, func.count())
        .where(
            sessions_table.c.ended_at.is_(None),
            sessions_table.c.last_seen_at >= now - timedelta(minutes=idle_minutes, seconds=SESSION_TOUCH_SECONDS),
        )
        .group_by(sessions_table.c.user_id)
    )
    with engine.connect() as connection:
        return {user_id: count for user_id, count in connection.execute(query)}


# --- audit log ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditEntry:
    """One audit-log row."""

    id: int
    at: datetime
    username: str | None
    action: str
    detail: str
    address: str | None


def audit(engine: Engine, action: str, *, username: str | None, detail: str = "", address: str | None = None) -> None:
    """Append one row to the audit log: who (``username``), what (``action``, ``detail``), from where."""
    with engine.begin() as connection:
        connection.execute(
            insert(audit_table).values(
                at=datetime.now(UTC),
                username=username[:64] if username else username,
                action=action[:64],
                detail=detail[:2000],
                address=address[:64] if address else address,
            )
        )


def audit_actions(engine: Engine) -> list[str]:
    """Every action the log holds, sorted (the viewer's filter choices)."""
    with engine.connect() as connection:
        query = select(audit_table.c.action).distinct().order_by(audit_table.c.action)
        return list(connection.execute(query).scalars())


def audit_entries(
    engine: Engine,
    *,
    username: str | None = None,
    action: str | None = None,
    contains: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[AuditEntry]:
    """Newest first, keyset-paged on id: rows older than ``before_id`` matching every filter given.

    ``start`` is inclusive and ``end`` exclusive; ``username`` matches exactly, ``contains`` anywhere in
    the detail (case-insensitive).
    """
    conditions = []
    if username:
        conditions.append(audit_table.c.username == username)
    if action:
        conditions.append(audit_table.c.action == action)
    if contains:
        escaped = contains.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(func.lower(audit_table.c.detail).like(f"%{escaped}%", escape="\\"))
    if start is not None:
        conditions.append(audit_table.c.at >= start.astimezone(UTC))
    if end is not None:
        conditions.append(audit_table.c.at < end.astimezone(UTC))
    if before_id is not None:
        conditions.append(audit_table.c.id < before_id)
    query = select(audit_table).where(and_(True, *conditions)).order_by(audit_table.c.id.desc()).limit(limit)
    with engine.connect() as connection:
        rows = connection.execute(query).fetchall()
    return [AuditEntry(r.id, utc(r.at), r.username, r.action, r.detail, r.address) for r in rows]
