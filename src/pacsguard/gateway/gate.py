"""What is checked before anyone is authenticated: blocked IP addresses, and requests
that bring no credentials at all.

``BlockedAddresses`` asks containment's IP blocks (``monitor.containment.IpBlocks``) at
most once per address every ``ttl`` (5 s): a block or an unblock takes effect within
that time, and the database is not read on every request. ``RefusalThrottle`` bounds the
audit events of refused anonymous traffic: at most one event per address and reason per
``window`` (a minute), whose ``count`` is the number of such refusals since the previous
event for that address and reason, this one included. A flood of 10,000 anonymous
requests from one address is thus one event a minute, not 10,000; refusals after the last
event are counted in the next one (if that address comes back). Both keep at most
``max_addresses`` entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import anyio.to_thread

__all__ = ["BLOCK_TTL", "REFUSAL_WINDOW", "BlockedAddresses", "IpBlockCheck", "RefusalThrottle"]

BLOCK_TTL = timedelta(seconds=5)
REFUSAL_WINDOW = timedelta(minutes=1)
_MAX_ADDRESSES = 10_000


class IpBlockCheck(Protocol):
    """Containment's IP blocks as the gateway reads them."""

    def is_blocked(self, ip: str, now: datetime) -> bool: ...


class BlockedAddresses:
    """``IpBlockCheck`` answers cached per address for ``ttl``."""

    def __init__(self, blocks: IpBlockCheck, ttl: timedelta = BLOCK_TTL, max_addresses: int = _MAX_ADDRESSES) -> None:
        self.blocks = blocks
        self.ttl = ttl
        self.max_addresses = max_addresses
        self._seen: dict[str, tuple[datetime, bool]] = {}

    async def is_blocked(self, ip: str | None, now: datetime) -> bool:
        """Whether ``ip`` is blocked at ``now`` (as of at most ``ttl`` ago)."""
        if not ip:
            return False
        cached = self._seen.get(ip)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        blocked = await anyio.to_thread.run_sync(self.blocks.is_blocked, ip, now)
        if len(self._seen) >= self.max_addresses:
            self._seen.clear()
        self._seen[ip] = (now, blocked)
        return blocked


@dataclass(slots=True)
class _Window:
    started: datetime
    unreported: int = 0


class RefusalThrottle:
    """Decides which anonymous refusals are audited (see the module docstring)."""

    def __init__(self, window: timedelta = REFUSAL_WINDOW, max_addresses: int = _MAX_ADDRESSES) -> None:
        self.window = window
        self.max_addresses = max_addresses
        self._windows: dict[tuple[str, str], _Window] = {}

    def hit(self, ip: str | None, reason: str, now: datetime) -> int | None:
        """The ``count`` for an event to record now, or ``None`` (counted, not recorded)."""
        key = (ip or "", reason)
        current = self._windows.get(key)
        if current is not None and now - current.started < self.window:
            current.unreported += 1
            return None
        if current is None and len(self._windows) >= self.max_addresses:
            self._forget_before(now)
        self._windows[key] = _Window(now)
        return 1 + (current.unreported if current else 0)

    def _forget_before(self, now: datetime) -> None:
        expired = [k for k, w in self._windows.items() if now - w.started >= self.window]
        for key in expired or list(self._windows)[: self.max_addresses // 2]:
            del self._windows[key]
