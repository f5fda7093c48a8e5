"""The composition root: one site's components, built once from its settings.

``open_site`` opens the database (migrated), the audit log (signing key, head cadence,
witnesses), and the directory, whose every event goes into that audit log: the ``emit``
seam every component reports through. Whatever needs the whole system (the CLI, the
demo, the server) starts here and closes it when done.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from fastapi import APIRouter
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from pacsguard.agreements import load_agreements
from pacsguard.archives import Archive, DicomWebArchive, EmbeddedArchive
from pacsguard.archives.catalogue import StudyCatalogue, ZoneRules, load_sensitivity_rules
from pacsguard.archives.sealing import load_site_key
from pacsguard.audit import AuditLog, load_signing_key
from pacsguard.audit import settings as audit_settings
from pacsguard.audit.export_dicom import AuditSource
from pacsguard.audit.reader import LogReader
from pacsguard.audit.syslog import SyslogForwarder
from pacsguard.clock import Clock, SystemClock
from pacsguard.config import Settings
from pacsguard.directory import Directory
from pacsguard.directory.wiring import open_directory
from pacsguard.domain import AccessRequest, Action, AuthStrength, Purpose, RequestContext, Resource
from pacsguard.domain.decision import BreakGlassGrant, ConsentDirective
from pacsguard.errors import ConfigError, NotFound, Problem
from pacsguard.gateway import Gateway, GatewayOptions
from pacsguard.gateway.exports import exports_router
from pacsguard.gateway.shares import open_shares
from pacsguard.monitor.containment import IpBlocks
from pacsguard.monitor.wiring import Monitor
from pacsguard.policy import CompiledPolicy, DecisionPoint, compile_policy, load_policies
from pacsguard.site import load_zones
from pacsguard.storage import make_engine, migrate
from pacsguard.web import site_app
from pacsguard.web.metrics import metrics_route
from pacsguard.web.monitor import Desk, monitor_router

__all__ = [
    "ARCHIVE_KEY",
    "SENSITIVITY_FILE",
    "Site",
    "build_app",
    "load_site_policy",
    "open_archives",
    "open_audit_log",
    "open_site",
    "open_syslog_forwarder",
    "sensitivity_rules",
]

SENSITIVITY_FILE = "sensitivity.yaml"
ARCHIVE_KEY = "pki/archive.key"  # the embedded store's AES-256 key, made on first use


@dataclass
class Site:
    """A running site: its settings, database, audit log, directory and study catalogue."""

    settings: Settings
    engine: Engine
    audit: AuditLog
    directory: Directory
    catalogue: StudyCatalogue
    clock: Clock = field(default_factory=SystemClock)

    def access_request(
        self,
        principal_id: str,
        study_uid: str,
        action: Action,
        *,
        purpose: Purpose = Purpose.TREATMENT,
        auth_strength: AuthStrength = AuthStrength.PASSWORD,
        ip: str | None = None,
        break_glass: BreakGlassGrant | None = None,
    ) -> AccessRequest:
        """The request as the decision point sees it: the subject's roles now (delegations
        included) from the directory, the study from the catalogue, the patient's consent
        directives in force. Raises ``NotFound`` for an unknown principal or study."""
        subject = self.directory.subject(principal_id, auth_strength=auth_strength)
        resource, consents = self.study_resource(study_uid)
        return AccessRequest(subject, action, resource, RequestContext(purpose, ip, break_glass), consents)

    def study_resource(self, study_uid: str) -> tuple[Resource, tuple[ConsentDirective, ...]]:
        """A catalogued study as a ``Resource``, with its patient's consent directives in
        force. Raises ``NotFound``."""
        entry = self.catalogue.get(study_uid)
        if entry is None:
            raise NotFound(f"no study {study_uid!r} in the catalogue: run 'pacsguard archive sync' first")
        resource = Resource(
            zone=entry.zone,
            study_uid=entry.study_uid,
            patient_id=entry.patient_id or None,
            sensitivity=entry.sensitivity,
            modality=entry.modality or None,
        )
        return resource, self.directory.consents.in_force([entry.patient_id]).get(entry.patient_id, ())

    def close(self) -> None:
        """Stop the audit writer (everything acknowledged is durable already) and the pool."""
        self.audit.close()
        self.engine.dispose()

    def __enter__(self) -> Site:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


def open_audit_log(settings: Settings, engine: Engine, clock: Clock) -> AuditLog:
    """The site's audit log; heads are signed when the site has its signing key.

    Raises ``AuditUnavailable`` (tables unreadable) or ``ConfigError`` (a bad key file).
    """
    key_path = settings.path(settings.pki.signing_key)
    key = load_signing_key(key_path) if key_path.exists() else None
    return AuditLog(
        engine,
        signing_key=key,
        clock=clock,
        options=audit_settings.options(settings.audit),
        witnesses=audit_settings.witnesses(settings.audit, settings.path),
    )


def open_site(settings: Settings, clock: Clock | None = None) -> Site:
    """Open every stateful component of the site; close it with ``Site.close``."""
    clock = clock or SystemClock()
    engine = make_engine(settings.database_url, echo=settings.storage.echo)
    with contextlib.ExitStack() as undo:
        undo.callback(engine.dispose)
        migrate(engine)
        log = open_audit_log(settings, engine, clock)
        undo.callback(log.close)
        directory = open_directory(settings, engine, log, clock)
        catalogue = StudyCatalogue(engine, events=log, clock=clock, rules=sensitivity_rules(settings))
        undo.pop_all()
    return Site(settings, engine, log, directory, catalogue, clock)


def sensitivity_rules(settings: Settings) -> dict[str, ZoneRules]:
    """The per-zone default sensitivity rules of ``sensitivity.yaml``, if the site has one.

    Raises ``ConfigError`` naming the file, line and key of a bad rule.
    """
    path = settings.site / SENSITIVITY_FILE
    if not path.exists():
        return {}
    try:
        return load_sensitivity_rules(path)
    except OSError as exc:
        raise ConfigError(Problem(path, f"cannot read: {exc}")) from None


def load_site_policy(site: Path, policies: Path | None = None) -> CompiledPolicy:
    """Load ``zones.yaml``, ``policies/`` (or ``policies``) and ``agreements/`` of a site and
    compile them; raises ``ConfigError`` listing every problem of every file."""
    zones = load_zones(site / "zones.yaml")
    problems: list[Problem] = []
    policy = agreements = None
    try:
        policy = load_policies(policies if policies is not None else site / "policies", zones)
    except ConfigError as exc:
        problems.extend(exc.problems)
    try:
        agreements = load_agreements(site / "agreements", zones)
    except ConfigError as exc:
        problems.extend(exc.problems)
    if problems or policy is None or agreements is None:
        raise ConfigError(problems)
    return compile_policy(zones, policy, agreements)


def open_archives(site: Site) -> dict[str, Archive]:
    """The site's archives by owning zone, from its ``[[archives]]`` settings.

    Raises ``ConfigError`` for an unknown or repeated zone, or a bad archive key file.
    """
    settings = site.settings
    archives: dict[str, Archive] = {}
    public = settings.server.public_url
    for spec in settings.archives:
        where = settings.site / "pacsguard.toml"
        if spec.zone not in site.directory.zones:
            raise ConfigError(Problem(where, f"archive {spec.name!r}: unknown zone {spec.zone!r}", key="archives"))
        if spec.zone in archives:
            raise ConfigError(Problem(where, f"zone {spec.zone!r} has two archives", key="archives"))
        if spec.url:
            archives[spec.zone] = DicomWebArchive(
                spec.url, name=spec.name, public_url=public or None, admin_url=spec.admin_url or None
            )
        else:
            root = settings.site / "archive" / spec.name
            root.mkdir(parents=True, exist_ok=True)
            key = load_site_key(settings.path(ARCHIVE_KEY))
            archives[spec.zone] = EmbeddedArchive(spec.name, site.engine, root, key, public_url=public)
    return archives


def open_syslog_forwarder(site: Site) -> SyslogForwarder | None:
    """The ATNA forwarder of ``[audit.syslog]`` (or ``None``), resuming from its own
    spool cursor; run it with ``forwarder.run(stop, LogReader(site.engine))`` in a thread."""
    config = site.settings.audit.syslog
    if config is None:
        return None
    return SyslogForwarder(config, site=site.settings.site, clock=site.clock, source=AuditSource(site.settings.name))


def build_app(
    site: Site,
    archives: Mapping[str, Archive],
    point_source: Callable[[], DecisionPoint],
    options: GatewayOptions | None = None,
    *,
    monitor: Monitor | None = None,
    ingest_stats: Callable[[], Mapping[str, int]] | None = None,
) -> Starlette:
    """The ASGI app ``site`` serves: DICOMweb (``/dicomweb``), the JSON API (``/api/v1``,
    OpenAPI at ``/api/openapi.json``), the share pages, ``/healthz`` and ``/metrics``.
    ``archives`` maps zone ids to their archive; ``point_source`` gives the decision
    point in force (``PolicyStore.point``, so a reload takes effect on the next request).
    With the site's running ``monitor``, the officers' alerts, incidents and containment
    API is mounted too (``web.monitor``); ``ingest_stats`` gives the ATNA receiver's
    counters, when it runs."""
    public = options or GatewayOptions(public_url=site.settings.server.public_url)
    gateway = Gateway(
        directory=site.directory, catalogue=site.catalogue, audit=site.audit, archives=archives,
        point_source=point_source, clock=site.clock, options=public, ip_blocks=IpBlocks(site.engine),
    )  # fmt: skip
    shares_api, share_routes = open_shares(gateway, site.engine, site.settings)
    routers: list[APIRouter] = [shares_api, exports_router(gateway)]
    if monitor is not None:
        desk = Desk(monitor.service.store, monitor.containment, LogReader(site.engine))
        routers.append(monitor_router(gateway, desk))
    pages: list[BaseRoute] = [*share_routes, metrics_route(site.audit, ingest_stats)]
    health = (lambda: {"ingest": dict(ingest_stats())}) if ingest_stats is not None else None
    return site_app(gateway, routers, pages, health)
