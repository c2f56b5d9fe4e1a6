"""Accounts and the audit log in the app database (SQLite by default, PostgreSQL when configured).

Passwords are hashed with Argon2id and never logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from config.datasets import SECTORS
from config.roles import ROLES, Scope, scope_for

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

_hasher = PasswordHasher()


class UserError(ValueError):
    """A user could not be created or changed; the message says why."""


@dataclass(frozen=True)
class Account:
    """A signed-in person."""

    id: int
    username: str
    role: str
    sectors: tuple[str, ...]
    wards: tuple[str, ...]
    language: str
    display_name: str

    @property
    def scope(self) -> Scope:
        """The sectors and wards this account may see."""
        return scope_for(self.role, self.sectors, self.wards)


def _split(text: str) -> tuple[str, ...]:
    return tuple(part for part in (text or "").split(",") if part)


def _account(row) -> Account:
    return Account(
        row.id, row.username, row.role, _split(row.sectors), _split(row.wards), row.language, row.display_name
    )


def create_schema(engine: Engine) -> None:
    """Create the app tables when missing."""
    metadata.create_all(engine)


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
) -> Account:
    """Add an account; ``UserError`` for an unknown role or sector, a short password or a taken name."""
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    unknown = [s for s in sectors if s not in SECTORS]
    if unknown:
        raise UserError(f"unknown sector(s) {', '.join(unknown)}; expected {', '.join(SECTORS)}")
    if len(password) < 10:
        raise UserError("passwords need at least 10 characters")
    if not username or len(username) > 64:
        raise UserError("a username has 1 to 64 characters")
    with engine.begin() as connection:
        if connection.execute(select(users_table.c.id).where(users_table.c.username == username)).first():
            raise UserError(f"user {username!r} already exists")
        connection.execute(
            insert(users_table).values(
                username=username,
                password_hash=_hasher.hash(password),
                role=role,
                sectors=",".join(sectors),
                wards=",".join(wards),
                display_name=display_name or username,
                language=language,
                created_at=datetime.now(UTC),
            )
        )
    found = get_user_by_name(engine, username)
    assert found is not None
    return found


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
    """The account when the password matches; None otherwise (also for unknown users)."""
    with engine.connect() as connection:
        row = connection.execute(select(users_table).where(users_table.c.username == username)).first()
    if row is None:
        _hasher.hash(password)  # same work as a real check, so timing does not reveal unknown names
        return None
    try:
        _hasher.verify(row.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
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


def audit(engine: Engine, action: str, *, username: str | None, detail: str = "", address: str | None = None) -> None:
    """Append one row to the audit log."""
    with engine.begin() as connection:
        connection.execute(
            insert(audit_table).values(
                at=datetime.now(UTC), username=username, action=action, detail=detail[:2000], address=address
            )
        )
