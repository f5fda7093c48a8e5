"""The live monitor: tails the audit log by sequence number and closes the loop.

Each ``step`` reads the events after the durable cursor, runs them through the engine
and commits the alerts, their incidents, their notification deliveries and the new
cursor with the engine snapshot in one transaction. Only then, outside any write
transaction, the follow-up runs for each live alert: evidence pinned with a signed tree
head, scope computed from the log, automatic containment. A crash anywhere resumes
from the last commit; alerts are keyed by ``Alert.key`` and the follow-up is idempotent
and marked done per alert, so nothing is lost or done twice.

Events older than ``horizon`` (by their own time) update the engine's state but raise no
live alert: importing history makes no alert storm.

With a ``Leadership`` lock (``monitor.leader``) several instances share one database:
only the holder consumes; the others stand by and take over from the last checkpoint.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta

from sqlalchemy import Engine as DbEngine

from pacsguard.audit.heads import SignedHead
from pacsguard.audit.reader import LogReader
from pacsguard.clock import Clock, SystemClock
from pacsguard.errors import ContainmentError, PacsguardError
from pacsguard.monitor.alerts import Alert
from pacsguard.monitor.containment import PLAYBOOKS, Containment
from pacsguard.monitor.engine import Engine
from pacsguard.monitor.incidents import Incident, group, mark
from pacsguard.monitor.leader import Leadership
from pacsguard.monitor.rules import Response
from pacsguard.monitor.scope import actor_events, scope_of
from pacsguard.monitor.store import Checkpoint, MonitorStore, StoredAlert

__all__ = ["MonitorOptions", "MonitorService"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MonitorOptions:
    """How the live loop runs: poll interval, batch size, live horizon, scope look-back,
    and the channels that have a notifier (``dashboard`` always has)."""

    poll: timedelta = timedelta(milliseconds=150)
    batch: int = 1000
    horizon: timedelta = timedelta(hours=1)
    scope_lookback: timedelta = timedelta(days=30)
    channels: frozenset[str] = field(default_factory=lambda: frozenset({"dashboard"}))


class MonitorService:
    """The durable tail of one site's audit log through one rule engine.

    ``make_engine`` builds a fresh rule engine (it is rebuilt from the checkpoint after a
    failed commit). ``containment`` and ``sign_head`` are optional: without them the
    incident's contain and preserve steps stay open for a person to do.
    """

    def __init__(
        self,
        db: DbEngine,
        make_engine: Callable[[], Engine],
        *,
        clock: Clock | None = None,
        options: MonitorOptions | None = None,
        containment: Containment | None = None,
        sign_head: Callable[[], SignedHead] | None = None,
        leader: Leadership | None = None,
    ) -> None:
        self._db = db
        self.store = MonitorStore(db)
        self.reader = LogReader(db)
        self.options = options or MonitorOptions()
        self._make_engine = make_engine
        self._clock = clock or SystemClock()
        self._containment = containment
        self._sign_head = sign_head
        self.leader = leader
        self._wake = threading.Event()
        self.engine = self._restored()

    def _restored(self) -> Engine:
        engine = self._make_engine()
        checkpoint = self.store.checkpoint()
        if checkpoint is not None:
            reset = engine.restore(checkpoint.snapshot)
            if reset:
                log.warning("monitor rules changed since the checkpoint; state reset for %s", ", ".join(reset))
        return engine

    @property
    def cursor(self) -> int:
        """The last consumed sequence number (-1 before the first event)."""
        return self.engine.last_seq if self.engine.last_seq is not None else -1

    def wake(self) -> None:
        """Ask the loop to look at the log now (the audit log may call this after a commit)."""
        self._wake.set()

    def step(self) -> int:
        """Consume one batch of events and follow up on live alerts; returns events consumed.

        Raises ``AuditIntegrityError`` on an undecodable event; a failed commit rebuilds the
        engine from the last checkpoint and re-raises.
        """
        events = self.reader.events_after(self.cursor, self.options.batch)
        if events:
            alerts = [alert for event in events for alert in self.engine.process(event)]
            try:
                self._commit(alerts)
            except Exception:
                self.engine = self._restored()
                raise
        self.follow_up()
        return len(events)

    def _commit(self, alerts: list[Alert]) -> None:
        now = self._clock.now()
        pairs = [(a, now - a.triggered_at <= self.options.horizon) for a in alerts]
        live = [a for a, is_live in pairs if is_live]
        incidents, joined = group(((a, now) for a in live), self.store.open_incidents(a.subject for a in live))
        channels = {a.key: [c for c in a.channels if c in self.options.channels] for a in live}
        checkpoint = Checkpoint(self.cursor, self.engine.snapshot(), now)
        self.store.commit(pairs, incidents, joined, channels, checkpoint)

    def follow_up(self) -> None:
        """For each stored live alert not yet handled: pin evidence, compute scope, contain.

        Evidence and scope are worked out once per incident per call, however many of its
        alerts are waiting."""
        waiting: dict[str | None, list[StoredAlert]] = {}
        for stored in self.store.unhandled():
            waiting.setdefault(stored.incident_id, []).append(stored)
        for incident_id, alerts in waiting.items():
            incident = self.store.incident(incident_id) if incident_id else None
            if incident is not None:
                incident = self._scope(self._preserve(incident))
                for stored in alerts:
                    incident = self._contain(incident, stored)
                self.store.save_incident(incident)
            for stored in alerts:
                self.store.mark_handled(stored.alert.key, self._clock.now())

    def _preserve(self, incident: Incident) -> Incident:
        if self._sign_head is None or _covered(incident):
            return incident
        try:
            head = self._sign_head()
        except PacsguardError as exc:
            log.warning("incident %s: no signed head: %s", incident.id, exc)
            return incident
        pinned = {**head.to_json(), "evidence_from": incident.evidence_from, "evidence_to": incident.evidence_to}
        note = f"seq {incident.evidence_from}..{incident.evidence_to} under signed head of size {head.size}"
        return mark(replace(incident, head=pinned), "preserve", self._clock.now(), "monitor", note)

    def _scope(self, incident: Incident) -> Incident:
        principal = _principal_of(incident.subject)
        if principal is None:
            return incident
        since = incident.first_event_at - self.options.scope_lookback
        scope = scope_of(actor_events(self._db, principal, since), principal)
        note = f"{len(scope['studies'])} studies, {len(scope['patients'])} patients, {len(scope['exported'])} exported"
        return mark(replace(incident, scope=scope), "scope", self._clock.now(), "monitor", note)

    def _contain(self, incident: Incident, stored: StoredAlert) -> Incident:
        alert = stored.alert
        if self._containment is None or alert.response is not Response.CONTAIN:
            return incident
        done: list[str] = []
        for action in alert.actions:
            target = _target(alert, action)
            if target is None:
                continue
            try:
                self._containment.apply(action, target, ordered_by=f"rule:{alert.rule_id}", reason=alert.title)
            except ContainmentError as exc:
                log.warning("alert %s: %s", alert.key, exc)
                continue
            done.append(action)
        if not done:
            return incident
        return mark(incident, "contain", self._clock.now(), f"rule:{alert.rule_id}", ", ".join(done))

    def lead(self) -> bool:
        """Whether this instance may consume now: always without a ``leader`` lock; with
        one, once it holds the lock (taking over from the last committed checkpoint)."""
        if self.leader is None:
            return True
        was = self.leader.held
        leading = self.leader.acquire()
        if leading and not was:
            self.engine = self._restored()
            log.info("monitor: leading from seq %d", self.cursor)
        return leading

    def run(self, stop: threading.Event, on_step: Callable[[int], None] | None = None) -> None:
        """Poll until ``stop`` is set, waking early on ``wake()``; a standby (another
        instance leads) asks for the lead at every poll."""
        while not stop.is_set():
            if not self.lead():
                stop.wait(self.options.poll.total_seconds())
                continue
            consumed = self.step()
            if on_step is not None:
                on_step(consumed)
            if consumed < self.options.batch:
                self._wake.wait(self.options.poll.total_seconds())
                self._wake.clear()


def _covered(incident: Incident) -> bool:
    """A head is pinned already and covers the evidence (a redo after a crash, or an
    alert whose evidence the head already holds)."""
    return incident.head is not None and int(incident.head["size"]) > incident.evidence_to


def _principal_of(subject: str) -> str | None:
    fields = dict(part.split("=", 1) for part in subject.split(",") if "=" in part)
    return fields.get("actor.principal_id")


def _target(alert: Alert, action: str) -> str | None:
    fields = alert.subject_fields
    kind = PLAYBOOKS[action].target if action in PLAYBOOKS else "principal"
    if kind == "ip":
        return fields.get("actor.ip")
    if kind == "device":
        return fields.get("actor.ae_title") and fields.get("actor.principal_id")
    return fields.get("actor.principal_id")
