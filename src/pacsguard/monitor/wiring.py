"""Putting the live monitor together for one site: rules, geo, containment, signed heads,
notification dispatcher. ``pacsguard monitor run`` (and later ``pacsguard serve``) start
it with ``open_monitor`` and run ``MonitorService.run`` and ``Dispatcher.run`` in threads.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine as DbEngine

from pacsguard.audit import AuditLog
from pacsguard.clock import Clock
from pacsguard.directory import Directory
from pacsguard.monitor.containment import Containment, IpBlocks, ShareLinks
from pacsguard.monitor.engine import Engine
from pacsguard.monitor.geo import site_geo
from pacsguard.monitor.leader import Leadership
from pacsguard.monitor.loader import RuleSet, load_rules
from pacsguard.monitor.notify import Dispatcher, EmailNotifier, Notifier
from pacsguard.monitor.owners import OwnerAddresses
from pacsguard.monitor.service import MonitorOptions, MonitorService
from pacsguard.monitor.store import MonitorStore

__all__ = ["Monitor", "open_monitor", "with_owners"]


@dataclass
class Monitor:
    """The running parts: the tail, the dispatcher, the containment playbooks, the rules."""

    service: MonitorService
    dispatcher: Dispatcher
    containment: Containment
    rules: RuleSet
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        """Run the tail and the dispatcher in two daemon threads (both idle while another
        instance leads)."""
        self._stop.clear()
        leading = self.service.leader
        active = (lambda: leading.held) if leading is not None else None
        self._threads = [
            threading.Thread(target=self.service.run, args=(self._stop,), name="monitor-tail", daemon=True),
            threading.Thread(
                target=self.dispatcher.run, args=(self._stop, 0.5, active), name="monitor-notify", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop both threads (the tail finishes its batch; its last commit stands)."""
        self._stop.set()
        self.service.wake()
        for thread in self._threads:
            thread.join(timeout)
        if self.service.leader is not None:
            self.service.leader.release()


def open_monitor(
    rules_dir: Path | None,
    db: DbEngine,
    audit: AuditLog,
    directory: Directory,
    clock: Clock,
    *,
    notifiers: Mapping[str, Notifier] | None = None,
    options: MonitorOptions | None = None,
    shares: ShareLinks | None = None,
    leader: Leadership | None = None,
) -> Monitor:
    """The site's monitor, resumed from its checkpoint; ``leader`` (``leadership_for(db)``)
    lets several instances share the database with one consuming. Raises ``ConfigError``
    (bad rules), ``GeoDatabaseError`` or ``SnapshotError``."""
    rules = load_rules(rules_dir)
    geo = site_geo(rules.networks, rules.geoip)
    containment = Containment(directory, IpBlocks(db), audit, clock, shares=shares)
    dispatcher = Dispatcher(MonitorStore(db), with_owners(notifiers or {}, directory), clock=clock)
    base = options or MonitorOptions()
    options = MonitorOptions(base.poll, base.batch, base.horizon, base.scope_lookback, dispatcher.channels)
    service = MonitorService(
        db,
        lambda: Engine(rules, geo=geo),
        clock=clock,
        options=options,
        containment=containment,
        sign_head=audit.sign_head,
        leader=leader,
    )
    audit.on_commit(lambda _size: service.wake())  # event -> alert without waiting for a poll
    return Monitor(service, dispatcher, containment, rules)


def with_owners(notifiers: Mapping[str, Notifier], directory: Directory) -> dict[str, Notifier]:
    """The notifiers, the e-mail one resolving each alert's owner through ``directory``."""
    out = dict(notifiers)
    for channel, notifier in out.items():
        if isinstance(notifier, EmailNotifier) and notifier.owners is None:
            out[channel] = dataclasses.replace(notifier, owners=OwnerAddresses(directory))
    return out
