"""``Gateway``: what every DICOMweb route needs — the catalogue, the decision point, the
archives per zone, break-glass and durable audit events.

Directory, catalogue and consent calls are synchronous database work; they run in worker
threads so the event loop keeps streaming other responses. Every event the gateway emits
is awaited until the audit log has made it durable (``AuditLog.append``): data leaves only
after its access event is on disk, and an audit failure refuses the request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import anyio.to_thread
from starlette.requests import HTTPConnection

from pacsguard.archives import Archive, CatalogueEntry, DicomJson, StudyCatalogue
from pacsguard.audit import Health
from pacsguard.clock import Clock
from pacsguard.directory import Client, Directory
from pacsguard.domain import (
    AccessRequest,
    Action,
    Actor,
    AuditEvent,
    BreakGlassGrant,
    Decision,
    ObjectRef,
    Outcome,
    Purpose,
    RequestContext,
    Resource,
)
from pacsguard.errors import ArchiveError, AuthenticationError, Forbidden, NotFound, TokenError
from pacsguard.gateway.auth import (
    MALFORMED_HEADER,
    SCOPE,
    Caller,
    MissingCredentials,
    authenticate,
    client_of,
)
from pacsguard.gateway.gate import BlockedAddresses, IpBlockCheck, RefusalThrottle
from pacsguard.policy import BreakGlassRefusal, DecisionPoint, request_break_glass

__all__ = ["IP_BLOCKED", "NO_CREDENTIALS", "AuditSink", "Gateway", "GatewayOptions", "Intent"]

IP_BLOCKED = "ip_blocked"  # access.denied reasons of requests refused before authentication
NO_CREDENTIALS = "no_credentials"


class AuditSink(Protocol):
    """The audit log as the gateway uses it: durable appends and a health state."""

    def append(self, event: AuditEvent) -> Awaitable[Any]: ...

    @property
    def health(self) -> Health: ...


@dataclass(frozen=True, slots=True)
class GatewayOptions:
    """Limits of the gateway. ``public_url`` is the base clients use (no ``/dicomweb``);
    empty means the base URL of each request."""

    public_url: str = ""
    archive_timeout: float = 30.0
    max_body_bytes: int = 1 << 30
    max_instance_bytes: int = 256 << 20
    max_results: int = 10_000


@dataclass(frozen=True, slots=True)
class Intent:
    """Why the caller asks: purpose of use and an optional break-glass reason."""

    purpose: Purpose = Purpose.TREATMENT
    break_glass_reason: str | None = None


class Gateway:
    """The shared state of the DICOMweb routes."""

    def __init__(
        self,
        *,
        directory: Directory,
        catalogue: StudyCatalogue,
        audit: AuditSink,
        archives: Mapping[str, Archive],
        point_source: Callable[[], DecisionPoint],
        clock: Clock,
        options: GatewayOptions | None = None,
        ip_blocks: IpBlockCheck | None = None,
    ) -> None:
        self.directory = directory
        self.catalogue = catalogue
        self.audit = audit
        self.archives = dict(archives)
        self.point_source = point_source
        self.clock = clock
        self.options = options or GatewayOptions()
        self.blocked = BlockedAddresses(ip_blocks) if ip_blocks is not None else None
        self.refusals = RefusalThrottle()

    # --- before authentication ------------------------------------------------------------
    async def admit(self, conn: HTTPConnection, scope: str = SCOPE) -> Caller:
        """The caller of a request to ``/dicomweb`` or (``scope=API_SCOPE``) ``/api``: the one
        way in, with every refusal audited. Raises ``Forbidden`` for an address containment
        blocks and ``MissingCredentials`` for a request without credentials (both recorded
        as ``access.denied``, bounded per address), ``AuthenticationError`` for refused
        credentials (a malformed header recorded here as ``token.rejected``, the rest by
        the directory), or ``AuditUnavailable``."""
        client = client_of(conn)
        if await self.address_blocked(client):
            await self.refuse_anonymous(client, conn.url.path, IP_BLOCKED)
            raise Forbidden("requests from this address are blocked; contact the site's security officer")
        try:
            return await authenticate(conn, self.directory, scope)
        except MissingCredentials:
            await self.refuse_anonymous(client, conn.url.path, NO_CREDENTIALS)
            raise
        except AuthenticationError as exc:
            if exc.reason == MALFORMED_HEADER:
                actor = Actor(ip=client.ip, device_id=client.device_id, user_agent=client.user_agent)
                await self.record(actor, "token.rejected", outcome=Outcome.FAILURE,
                                  detail={"kind": "header", "reason": MALFORMED_HEADER})  # fmt: skip
            raise
        except NotFound as exc:  # the credential's principal was deleted since
            raise TokenError("unknown_principal", "the credentials are not valid") from exc

    async def address_blocked(self, client: Client) -> bool:
        """Whether containment blocks the client's IP address (cached a few seconds)."""
        return self.blocked is not None and await self.blocked.is_blocked(client.ip, self.clock.now())

    async def refuse_anonymous(self, client: Client, path: str, reason: str) -> None:
        """Record ``access.denied`` for a request refused before authentication (reason
        ``ip_blocked`` or ``no_credentials``): at most one event per address and reason a
        minute, its ``count`` the refusals since the previous one. Raises ``AuditUnavailable``."""
        count = self.refusals.hit(client.ip, reason, self.clock.now())
        if count is None:
            return
        actor = Actor(ip=client.ip, device_id=client.device_id, user_agent=client.user_agent)
        await self.record(actor, "access.denied", outcome=Outcome.DENIED,
                          detail={"reason": reason, "path": path[:256], "count": count})  # fmt: skip

    # --- events -------------------------------------------------------------------------
    async def record(
        self,
        caller: Caller | Actor,
        type_: str,
        *,
        outcome: Outcome = Outcome.SUCCESS,
        objects: ObjectRef | None = None,
        decision: Decision | None = None,
        grant: BreakGlassGrant | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Append one event and wait until it is durable; raises ``AuditUnavailable``."""
        actor = caller.actor if isinstance(caller, Caller) else caller
        ref = decision.ref(grant.reason if grant and decision and decision.break_glass else None) if decision else None
        event = AuditEvent(
            type=type_,
            occurred_at=self.clock.now(),
            outcome=outcome,
            actor=actor,
            objects=objects or ObjectRef(),
            decision=ref,
            detail=dict(detail or {}),
        )
        await self.audit.append(event)

    # --- the catalogue ------------------------------------------------------------------
    async def entries(self, study_uids: Iterable[str]) -> dict[str, CatalogueEntry]:
        """Catalogue entries of many studies; unknown ones are absent."""
        return await anyio.to_thread.run_sync(self.catalogue.get_many, list(study_uids))

    async def record_found(self, found: Mapping[str, tuple[str, DicomJson]]) -> dict[str, CatalogueEntry]:
        """Catalogue studies an archive returned that the catalogue did not know: each
        goes to the zone whose archive returned it, classified by that zone's rules."""
        return await anyio.to_thread.run_sync(self._record_found, dict(found))

    def _record_found(self, found: dict[str, tuple[str, DicomJson]]) -> dict[str, CatalogueEntry]:
        out = {}
        for uid, (zone, item) in found.items():
            out[uid] = self.catalogue.record(
                uid,
                zone=zone,
                archive=self.archives[zone].name,
                patient_id=_text(item, "00100020"),
                modality=",".join(_values(item, "00080061") or _values(item, "00080060")),
                description=_text(item, "00081030"),
            )
        return out

    async def locate(self, study_uid: str) -> CatalogueEntry | None:
        """The catalogue entry of a study, or ``None``. Archives are not asked: a study the
        catalogue lacks is unknown (``archive sync`` or a search catalogues it), and a
        denied study must not answer faster than an unknown one."""
        return (await self.entries([study_uid])).get(study_uid)

    def archive_for(self, entry: CatalogueEntry) -> Archive | None:
        """The archive holding a study: the one the catalogue names, else its zone's (or
        the nearest ancestor zone's) archive."""
        for archive in self.archives.values():
            if archive.name == entry.archive:
                return archive
        return self.zone_archive(entry.zone)

    def zone_archive(self, zone: str) -> Archive | None:
        """The archive of ``zone`` or of its nearest ancestor that has one."""
        chain = self.directory.zones.ancestors(zone) if zone in self.directory.zones else [zone]
        return next((self.archives[z] for z in chain if z in self.archives), None)

    # --- decisions ----------------------------------------------------------------------
    async def decide(
        self,
        caller: Caller,
        action: Action,
        resources: Sequence[Resource],
        intent: Intent,
        grant: BreakGlassGrant | None = None,
    ) -> list[Decision]:
        """One batched decision over studies, with their patients' consent directives."""
        if not resources:
            return []
        return await anyio.to_thread.run_sync(self._decide, caller, action, list(resources), intent, grant)

    def _decide(
        self,
        caller: Caller,
        action: Action,
        resources: list[Resource],
        intent: Intent,
        grant: BreakGlassGrant | None,
    ) -> list[Decision]:
        patients = [r.patient_id for r in resources if r.patient_id]
        consents = self.directory.consents.in_force(patients) if patients else {}
        context = RequestContext(intent.purpose, caller.client.ip, grant)
        requests = [
            AccessRequest(caller.subject, action, r, context, consents.get(r.patient_id or "", ())) for r in resources
        ]
        return self.point_source().decide_many(requests, self.clock.now())

    async def break_glass(self, caller: Caller, entry: CatalogueEntry | None, intent: Intent) -> BreakGlassGrant | None:
        """Ask for emergency access to ``entry`` when the request gives a reason; the grant
        or the refusal is recorded durably. ``None`` when refused or not asked for."""
        reason = intent.break_glass_reason
        if reason is None or entry is None:
            return None
        point = self.point_source()
        outcome = request_break_glass(
            point, caller.subject, resource_of(entry), reason, self.clock.now(), ip=caller.client.ip
        )
        objects = ObjectRef(patient_id=entry.patient_id or None, study_uid=entry.study_uid, zone=entry.zone)
        if isinstance(outcome, BreakGlassRefusal):
            decision = outcome.decision
            await self.record(
                caller, "break_glass.refused", outcome=Outcome.DENIED, objects=objects, decision=decision,
                detail={"code": outcome.code, "reason": reason, "purpose": intent.purpose.value},
            )  # fmt: skip
            return None
        await self.record(
            caller, "break_glass.granted", objects=objects,
            detail={"grant": outcome.id, "reason": outcome.reason, "until": outcome.validity.not_after.isoformat()
                    if outcome.validity.not_after else None, "purpose": intent.purpose.value},
        )  # fmt: skip
        return outcome


def resource_of(entry: CatalogueEntry) -> Resource:
    """A catalogued study as the decision point's ``Resource``."""
    return Resource(
        zone=entry.zone,
        study_uid=entry.study_uid,
        patient_id=entry.patient_id or None,
        sensitivity=entry.sensitivity,
        modality=entry.modality or None,
    )


def _values(item: DicomJson, tag: str) -> list[str]:
    element = item.get(tag)
    values = element.get("Value", []) if isinstance(element, dict) else []
    return [str(v) for v in values if isinstance(v, str | int | float)]


def _text(item: DicomJson, tag: str) -> str:
    values = _values(item, tag)
    return values[0] if values else ""


def is_archive_failure(exc: BaseException) -> bool:
    """An archive that could not answer (down, timed out, or an error answer)."""
    return isinstance(exc, ArchiveError | TimeoutError | asyncio.TimeoutError)
