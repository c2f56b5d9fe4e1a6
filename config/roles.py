"""Roles and what each may do. Checked on the server in the login guard and inside every callback."""

from __future__ import annotations

from dataclasses import dataclass

from config.datasets import SECTORS

LEADER = "leader"
DEPARTMENT_HEAD = "department_head"
OPERATOR = "operator"
ADMIN = "admin"
ROLES = (LEADER, DEPARTMENT_HEAD, OPERATOR, ADMIN)

VIEW = "view"
"""Permission to read a sector's data (scoped to the account's sectors and wards)."""
EDIT_ALERTS = "edit_alerts"
MANAGE_USERS = "manage_users"
VIEW_POLL_HEALTH = "view_poll_health"
"""Permission to see the poller's health (runs, errors, retries): operators run the centre and act on it;
leaders and department heads see each dataset's freshness instead (error texts name hosts and tables)."""
PUBLIC = "public"
"""Marks a callback that returns no data (language switch, clientside helpers)."""

PERMISSIONS = {
    LEADER: {VIEW},
    DEPARTMENT_HEAD: {VIEW},
    OPERATOR: {VIEW, EDIT_ALERTS, VIEW_POLL_HEALTH},
    ADMIN: {VIEW, EDIT_ALERTS, MANAGE_USERS, VIEW_POLL_HEALTH},
}


@dataclass(frozen=True)
class Scope:
    """What part of the province an account may see: None means everything."""

    sectors: frozenset[str] | None
    wards: frozenset[str] | None

    def allows_sector(self, sector: str) -> bool:
        """True when the account may see ``sector``."""
        return self.sectors is None or sector in self.sectors

    def allows_ward(self, ward: str) -> bool:
        """True when the account may see ward ``ward``."""
        return self.wards is None or ward in self.wards

    @property
    def visible_sectors(self) -> tuple[str, ...]:
        """Sectors in display order."""
        return tuple(s for s in SECTORS if self.allows_sector(s))


def scope_for(role: str, sectors: tuple[str, ...], wards: tuple[str, ...]) -> Scope:
    """A department head sees their assigned sectors (and wards, when set); other roles see all."""
    if role == DEPARTMENT_HEAD:
        return Scope(frozenset(sectors), frozenset(wards) if wards else None)
    return Scope(None, None)


def has_permission(role: str, permission: str) -> bool:
    """True when ``role`` grants ``permission``."""
    return permission == PUBLIC or permission in PERMISSIONS.get(role, set())
