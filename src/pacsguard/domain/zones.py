"""Security zones (ISO/TS 22600 policy domains) and the roles defined in each.

Zones form a tree. A sub-zone inherits its parent's policy and may only narrow it; each
zone may own archives. Roles belong to one zone and may include junior roles, written
``name`` (same zone) or ``zone/name``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

__all__ = ["Role", "RoleRef", "Zone", "ZoneTree"]


@dataclass(frozen=True, slots=True, order=True)
class RoleRef:
    """A role named by zone and name; written ``zone/name``."""

    zone: str
    name: str

    def __str__(self) -> str:
        return f"{self.zone}/{self.name}"

    @classmethod
    def parse(cls, text: str, default_zone: str | None = None) -> RoleRef:
        """Parse ``zone/name``, or a bare ``name`` in ``default_zone``."""
        zone, sep, name = text.partition("/")
        if sep:
            if not zone or not name:
                raise ValueError(f"bad role reference {text!r}: expected zone/name")
            return cls(zone, name)
        if default_zone is None:
            raise ValueError(f"bad role reference {text!r}: expected zone/name")
        return cls(default_zone, text)


@dataclass(frozen=True, slots=True)
class Role:
    """A role of one zone. ``includes`` are junior roles whose rights it also has;
    ``assignable_by`` are the roles whose holders have the attestation right for it."""

    ref: RoleRef
    description: str = ""
    includes: tuple[RoleRef, ...] = ()
    assignable_by: tuple[RoleRef, ...] = ()


@dataclass(frozen=True, slots=True)
class Zone:
    """A security zone: a policy domain, usually one organisation or a department of it."""

    id: str
    name: str
    parent: str | None = None
    archives: tuple[str, ...] = ()
    roles: tuple[Role, ...] = ()


@dataclass(frozen=True)
class ZoneTree:
    """The validated zone tree with role lookups. Build it with ``pacsguard.site.load_zones``
    (which reports precise errors) or ``ZoneTree.build`` from already valid zones."""

    zones: Mapping[str, Zone]
    roles: Mapping[RoleRef, Role] = field(default_factory=dict)

    @classmethod
    def build(cls, zones: Iterable[Zone]) -> ZoneTree:
        by_id = {z.id: z for z in zones}
        roles = {r.ref: r for z in by_id.values() for r in z.roles}
        return cls(by_id, roles)

    def __contains__(self, zone_id: object) -> bool:
        return zone_id in self.zones

    def ancestors(self, zone_id: str) -> list[str]:
        """The zone and its ancestors, nearest first, ending at the root."""
        chain: list[str] = []
        current: str | None = zone_id
        while current is not None:
            chain.append(current)
            current = self.zones[current].parent
        return chain

    def is_within(self, zone_id: str, ancestor: str) -> bool:
        """True when ``zone_id`` is ``ancestor`` or lies in its sub-tree."""
        return ancestor in self.ancestors(zone_id)

    def children(self, zone_id: str) -> list[str]:
        return sorted(z.id for z in self.zones.values() if z.parent == zone_id)

    def subtree(self, zone_id: str) -> list[str]:
        """``zone_id`` and every zone below it."""
        out = [zone_id]
        for child in self.children(zone_id):
            out.extend(self.subtree(child))
        return out

    def expand_role(self, ref: RoleRef) -> frozenset[RoleRef]:
        """The role and every junior role it includes, transitively."""
        seen: set[RoleRef] = set()
        stack = [ref]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            role = self.roles.get(current)
            if role is not None:
                stack.extend(role.includes)
        return frozenset(seen)

    def roots(self) -> Iterator[Zone]:
        return (z for z in self.zones.values() if z.parent is None)
