"""What every route of the officer's API shares: the ``Desk`` it works on, the officer
check (refusals recorded), recording reads and changes before they happen, and running
database work off the event loop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import Depends
from starlette.requests import Request

from pacsguard.audit.reader import LogReader
from pacsguard.domain import Outcome
from pacsguard.domain.events import JsonValue
from pacsguard.errors import Forbidden
from pacsguard.gateway import Gateway
from pacsguard.gateway.api import OFFICER_ROLE, api_caller, require_role
from pacsguard.gateway.auth import Caller
from pacsguard.monitor.containment import Containment
from pacsguard.monitor.store import MonitorStore

__all__ = ["Desk", "in_thread", "officer", "read_recorded", "update_recorded"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Desk:
    """What the officer's routes work on: the monitor's store (alerts, incidents), the
    containment playbooks and a reader of the audit log (evidence events)."""

    store: MonitorStore
    containment: Containment
    reader: LogReader


def officer(gateway: Gateway) -> Callable[..., Awaitable[Caller]]:
    """A FastAPI dependency: the caller, who must hold the whole security-officer role.

    Raises ``Forbidden`` (403) after recording ``access.denied``; the credential errors of
    ``api_caller`` (401) pass through."""
    authenticated = api_caller(gateway)

    async def dependency(request: Request, caller: Caller = Depends(authenticated)) -> Caller:  # noqa: B008
        try:
            require_role(caller, OFFICER_ROLE)
        except Forbidden:
            detail = {"api": request.url.path, "method": request.method, "needs": OFFICER_ROLE}
            await gateway.record(caller, "access.denied", outcome=Outcome.DENIED, detail=detail)
            raise
        return caller

    return dependency


async def read_recorded(gateway: Gateway, caller: Caller, what: str, query: dict[str, JsonValue]) -> None:
    """Record, durably and before reading, that ``caller`` reads ``what`` (``audit.log.used``)."""
    await gateway.record(caller, "audit.log.used", detail={"api": what, "query": query})


async def update_recorded(gateway: Gateway, caller: Caller, detail: dict[str, JsonValue]) -> None:
    """Record, durably and before the change, an officer's change (``incident.updated``)."""
    await gateway.record(caller, "incident.updated", detail=detail)


async def in_thread(work: Callable[..., T], *args: Any) -> T:
    """Run blocking database work off the event loop."""
    return await anyio.to_thread.run_sync(work, *args)
