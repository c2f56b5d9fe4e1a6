"""Login throttling per (account, client address), kept in the app database so every web worker shares it.

After ``max_failures`` failed sign-ins for one account from one address, that pair is blocked for
``base_delay`` seconds; each further failure doubles the delay, up to ``max_delay``. While blocked,
attempts are refused without checking the password (no oracle for a guesser). A success from that
address, or an admin unlock, clears the pair. Failures from another address never block this one:
an attacker elsewhere cannot lock the duty operator out of their own desk.

The attempted name is the key whether or not such an account exists, so throttling behaves the same
for unknown names and does not reveal which accounts exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Column, DateTime, Engine, Integer, String, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from data_sources.users import metadata, utc

throttle_table = Table(
    "login_throttle",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("address", String(64), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("first_failed_at", DateTime(timezone=True), nullable=False),
    Column("last_failed_at", DateTime(timezone=True), nullable=False),
    Column("blocked_until", DateTime(timezone=True)),
)

FORGET_AFTER = timedelta(days=1)
"""Failures older than this (and no block still running) are forgotten."""


@dataclass(frozen=True)
class ThrottlePolicy:
    """When and for how long failed sign-ins block an (account, address) pair."""

    max_failures: int = 5
    base_delay_seconds: int = 30
    max_delay_seconds: int = 3600

    def delay_after(self, failures: int) -> timedelta | None:
        """The block that ``failures`` consecutive failures earn (None below the limit)."""
        if failures < self.max_failures:
            return None
        seconds = self.base_delay_seconds * 2 ** min(failures - self.max_failures, 30)
        return timedelta(seconds=min(seconds, self.max_delay_seconds))


@dataclass(frozen=True)
class Block:
    """A blocked (account, address) pair."""

    username: str
    address: str
    failures: int
    blocked_until: datetime


def throttle_key(username: str) -> str:
    """Names are compared case-insensitively so 'Admin' and 'admin' share one counter."""
    return username.strip().lower()[:64]


def blocked_until(engine: Engine, username: str, address: str, *, now: datetime | None = None) -> datetime | None:
    """When the pair may try again, if it is blocked right now."""
    now = now or datetime.now(UTC)
    with engine.connect() as connection:
        until = connection.execute(
            select(throttle_table.c.blocked_until).where(
                throttle_table.c.username == throttle_key(username), throttle_table.c.address == address
            )
        ).scalar()
    until = utc(until)
    return until if until is not None and until > now else None


def record_failure(
    engine: Engine, username: str, address: str, policy: ThrottlePolicy, *, now: datetime | None = None
) -> datetime | None:
    """Count one failed sign-in; returns the end of the block it starts, if any.

    The increment is one UPDATE (``failures = failures + 1``), so failures arriving at once on
    several workers are all counted.
    """
    now = now or datetime.now(UTC)
    key = throttle_key(username)
    where = (throttle_table.c.username == key, throttle_table.c.address == address)
    with engine.begin() as connection:
        connection.execute(
            delete(throttle_table).where(
                throttle_table.c.last_failed_at < now - FORGET_AFTER,
                (throttle_table.c.blocked_until.is_(None)) | (throttle_table.c.blocked_until < now),
            )
        )
    for _ in range(3):
        try:
            with engine.begin() as connection:
                changed = connection.execute(
                    update(throttle_table)
                    .where(*where)
                    .values(failures=throttle_table.c.failures + 1, last_failed_at=now)
                ).rowcount
                if not changed:
                    connection.execute(
                        insert(throttle_table).values(
                            username=key, address=address, failures=1, first_failed_at=now, last_failed_at=now
                        )
                    )
                failures = connection.execute(select(throttle_table.c.failures).where(*where)).scalar_one()
                delay = policy.delay_after(failures)
                if delay is None:
                    return None
                until = now + delay
                connection.execute(update(throttle_table).where(*where).values(blocked_until=until))
                return until
        except IntegrityError:  # another worker inserted the same pair first: count on its row
            continue
    raise RuntimeError(f"could not record a failed sign-in for {key!r} from {address}")


def clear(engine: Engine, username: str, address: str | None = None) -> int:
    """Forget the failures of an account (from one address, or from all: the admin unlock)."""
    conditions = [throttle_table.c.username == throttle_key(username)]
    if address is not None:
        conditions.append(throttle_table.c.address == address)
    with engine.begin() as connection:
        return connection.execute(delete(throttle_table).where(*conditions)).rowcount


def active_blocks(engine: Engine, *, now: datetime | None = None) -> list[Block]:
    """Every pair blocked right now, longest block first."""
    now = now or datetime.now(UTC)
    query = (
        select(throttle_table)
        .where(throttle_table.c.blocked_until > now)
        .order_by(throttle_table.c.blocked_until.desc())
    )
    with engine.connect() as connection:
        rows = connection.execute(query).fetchall()
    return [Block(r.username, r.address, r.failures, utc(r.blocked_until)) for r in rows]
