"""A generated month of ordinary hospital traffic, with attacks injected, as AuditEvents.

Deterministic for a seed. Ordinary users work weekdays 07:00-19:00 (a tenth work nights
and some weekends), log in from one or two workstations in the hospital LAN or the
VPN, mistype passwords now and then, query and read studies, rarely export or share,
are sometimes refused a study, and a few use break-glass or change the directory.
Each attack is a list of events whose sequence numbers are recorded, so a detector
can be scored by the evidence of its alerts.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pacsguard.domain.events import Actor, AuditEvent, ObjectRef, Outcome

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
DAYS = 30

_OUTCOMES = {"login.failure": Outcome.FAILURE, "access.denied": Outcome.DENIED}


@dataclass
class User:
    id: str
    roles: tuple[str, ...]
    devices: list[str]
    ips: list[str]
    night: bool
    recipients: list[str]


@dataclass
class Attack:
    kind: str
    expects: tuple[str, ...]  # rule ids, any of which counts as a catch
    events: list[AuditEvent] = field(default_factory=list)
    severity: str | None = None  # the severity a catch must have, when it matters


@dataclass
class Traffic:
    events: list[AuditEvent]
    attacks: list[Attack]
    user_days: int
    attack_seqs: dict[int, Attack]


def _event(
    type: str,
    at: datetime,
    user: User | None,
    *,
    ip: str | None = None,
    device: str | None = None,
    country: str = "DE",
    study: str | None = None,
    detail: dict[str, object] | None = None,
    principal: str | None = None,
) -> AuditEvent:
    actor = Actor(
        principal_id=principal or (user.id if user else None),
        roles=user.roles if user else (),
        ip=ip or (user.ips[0] if user else None),
        device_id=device or (user.devices[0] if user else None),
        country=country,
    )
    return AuditEvent(
        type=type,
        occurred_at=at,
        outcome=_OUTCOMES.get(type, Outcome.SUCCESS),
        actor=actor,
        objects=ObjectRef(study_uid=study),
        detail=detail or {},  # type: ignore[arg-type]
    )


def _users(rng: random.Random, n: int) -> list[User]:
    users = []
    for i in range(n):
        admin = i < 5
        roles = ("admin",) if admin else (rng.choice(["radiologist", "clinician", "technologist"]),)
        devices = [f"ws-{i}-{d}" for d in range(rng.choice([1, 1, 2]))]
        ips = [f"10.{i // 200}.{i % 200}.{rng.randrange(2, 250)}"]
        if rng.random() < 0.3:
            ips.append(f"172.16.{i % 250}.{rng.randrange(2, 250)}")  # VPN from home
        recipients = [f"gp{i}-{r}@clinic{r}.example" for r in range(rng.choice([1, 2, 3]))]
        users.append(User(f"u{i:04d}", roles, devices, ips, night=rng.random() < 0.1, recipients=recipients))
    return users


def _session(rng: random.Random, user: User, at: datetime, device: str, out: list[AuditEvent]) -> None:
    ip = rng.choice(user.ips)
    if rng.random() < 0.06:  # a typo or two before getting in
        for _ in range(rng.choice([1, 1, 2, 3])):
            out.append(_event("login.failure", at, user, ip=ip, device=device))
            at += timedelta(seconds=rng.randrange(5, 40))
    out.append(_event("login.success", at, user, ip=ip, device=device))
    for _ in range(rng.randrange(2, 8)):
        at += timedelta(seconds=rng.randrange(30, 600))
        out.append(_event("study.query", at, user, ip=ip, device=device, detail={"count": rng.randrange(0, 60)}))
        for _ in range(rng.randrange(1, 8)):
            at += timedelta(seconds=rng.randrange(5, 120))
            study = f"1.2.826.{rng.randrange(10**6)}"
            out.append(_event("study.read", at, user, ip=ip, device=device, study=study))
    _rare(rng, user, at, ip, device, out)


def _rare(rng: random.Random, user: User, at: datetime, ip: str, device: str, out: list[AuditEvent]) -> None:
    def add(kind: str, **kw: object) -> None:
        out.append(_event(kind, at + timedelta(seconds=rng.randrange(60, 1800)), user, ip=ip, device=device, **kw))  # type: ignore[arg-type]

    if rng.random() < 0.04:
        for _ in range(rng.choice([1, 1, 2, 3])):
            add("study.export", study=f"1.2.826.{rng.randrange(10**6)}")
    if rng.random() < 0.03:
        for _ in range(rng.choice([1, 2, 4])):
            add("study.read", study=f"1.2.826.{rng.randrange(10**6)}", detail={"download": True})
    if rng.random() < 0.04:
        for _ in range(rng.choice([1, 1, 2])):
            add("share.created", detail={"recipient": rng.choice(user.recipients)})
    if rng.random() < 0.08:
        study = f"1.2.999.{rng.randrange(10**6)}"
        for _ in range(rng.choice([1, 2, 3])):
            add("access.denied", study=study)
    if rng.random() < 0.002:
        add("break_glass.granted", detail={"reason": "emergency"})
    if "admin" in user.roles and rng.random() < 0.1:
        add(rng.choice(["principal.created", "admin.role.grant", "delegation.created"]))


def ordinary(rng: random.Random, users: list[User]) -> list[AuditEvent]:
    """The month's ordinary events, not yet in time order."""
    out: list[AuditEvent] = []
    settled: set[str] = set()  # users who have used all their workstations once
    for day in range(DAYS):
        date = START + timedelta(days=day)
        weekend = date.weekday() >= 5
        for user in users:
            if weekend and not (user.night and rng.random() < 0.3):
                continue
            if not weekend and rng.random() < 0.08:  # off sick, on leave
                continue
            hour = rng.choice([20, 21, 22]) if user.night else rng.choice([7, 8, 8, 9, 10])
            at = date + timedelta(hours=hour, minutes=rng.randrange(60))
            sessions = rng.choice([1, 2, 2, 3])
            if user.id not in settled:  # the first day: every workstation the user has
                sessions = max(sessions, len(user.devices))
                settled.add(user.id)
            for k in range(sessions):
                device = user.devices[k % len(user.devices)] if k < len(user.devices) else rng.choice(user.devices)
                _session(rng, user, at, device, out)
                at += timedelta(hours=rng.choice([2, 3, 4]))
            if rng.random() < 0.0004:  # a new workstation: legitimate, but the rule says alert
                user.devices.append(f"{user.id}-new-{day}")
    return out


AttackMaker = Callable[[random.Random, User, datetime], Attack]


def _stuffing(rng: random.Random, victim: User, at: datetime) -> Attack:
    attack = Attack("credential stuffing", ("auth.failed-logins-account",))
    for i in range(rng.randrange(12, 30)):
        ip = f"185.220.{rng.randrange(256)}.{rng.randrange(256)}"
        attack.events.append(
            _event("login.failure", at + timedelta(seconds=20 * i), victim, ip=ip, device="bot", country="NL")
        )
    return attack


def _spray(rng: random.Random, victim: User, at: datetime) -> Attack:
    attack = Attack("password spray", ("auth.failed-logins-ip",))
    ip = f"45.155.{rng.randrange(256)}.{rng.randrange(256)}"
    for i in range(rng.randrange(25, 60)):
        attack.events.append(
            _event(
                "login.failure",
                at + timedelta(seconds=8 * i),
                None,
                ip=ip,
                device="bot",
                country="US",
                principal=f"u{i * 7 % 300:04d}",
            )
        )
    return attack


def _stuffing_success(rng: random.Random, victim: User, at: datetime) -> Attack:
    attack = Attack("stuffing then success", ("auth.success-after-failures",))
    ip = f"91.240.{rng.randrange(256)}.{rng.randrange(256)}"
    n = rng.randrange(5, 8)
    for i in range(n):
        attack.events.append(
            _event("login.failure", at + timedelta(seconds=15 * i), victim, ip=ip, device="bot", country="DE")
        )
    attack.events.append(
        _event("login.success", at + timedelta(seconds=15 * n), victim, ip=ip, device="bot", country="DE")
    )
    return attack


def _new_country(rng: random.Random, victim: User, at: datetime) -> Attack:
    attack = Attack("new-country login", ("auth.new-country",))
    attack.events.append(_event("login.success", at, victim, ip="203.0.113.9", country=rng.choice(["RU", "BR", "VN"])))
    return attack


def _export_spike(rng: random.Random, victim: User, at: datetime) -> Attack:
    attack = Attack("export spike", ("data.export-spike",))
    for i in range(rng.randrange(20, 40)):
        attack.events.append(_event("study.export", at + timedelta(seconds=30 * i), victim, study=f"1.3.{at.day}.{i}"))
    return attack


def _export_new_device(rng: random.Random, victim: User, at: datetime) -> Attack:
    attack = Attack("export spike after new-device login", ("data.export-spike",), severity="urgent")
    attack.events.append(_event("login.success", at, victim, device="attacker-laptop"))
    for i in range(20):
        t = at + timedelta(minutes=5, seconds=40 * i)
        attack.events.append(_event("study.export", t, victim, device="attacker-laptop", study=f"1.4.{at.day}.{i}"))
    return attack


def _slow_exfil(rng: random.Random, victim: User, at: datetime) -> Attack:
    attack = Attack("export far above own baseline", ("data.export-baseline",))
    for i in range(12):
        attack.events.append(_event("study.export", at + timedelta(minutes=4 * i), victim, study=f"1.5.{at.day}.{i}"))
    return attack


def _share_spree(rng: random.Random, victim: User, at: datetime) -> Attack:
    attack = Attack("share spree", ("share.spree", "share.recipients-rise"))
    for i in range(rng.randrange(12, 25)):
        detail = {"recipient": f"drop{i % 8}@mail.example"}
        attack.events.append(_event("share.created", at + timedelta(minutes=2 * i), victim, detail=detail))
    return attack


def _break_glass(rng: random.Random, victim: User, at: datetime) -> Attack:
    attack = Attack("break-glass abuse", ("breakglass.repeated",))
    for i in range(4):
        attack.events.append(
            _event("break_glass.granted", at + timedelta(hours=i), victim, detail={"reason": "urgent"})
        )
    return attack


def _probing(rng: random.Random, victim: User, at: datetime) -> Attack:
    attack = Attack("probing denied studies", ("access.denied-burst",))
    for i in range(rng.randrange(10, 30)):
        attack.events.append(_event("access.denied", at + timedelta(seconds=15 * i), victim, study=f"1.6.{i}"))
    return attack


def _bulk_query(rng: random.Random, victim: User, at: datetime) -> Attack:
    attack = Attack("off-hours bulk query", ("query.off-hours-bulk",))
    night = at.replace(hour=2, minute=rng.randrange(60))
    for i in range(6):
        attack.events.append(_event("study.query", night + timedelta(minutes=3 * i), victim, detail={"count": 400}))
    return attack


ATTACKS: list[AttackMaker] = [
    _stuffing,
    _spray,
    _stuffing_success,
    _new_country,
    _export_spike,
    _export_new_device,
    _slow_exfil,
    _share_spree,
    _break_glass,
    _probing,
    _bulk_query,
]


def generate(seed: int = 7, n_users: int = 300, per_kind: int = 4) -> Traffic:
    """The month, in time order, with ``seq`` 1..n; attacks start from day 10 on."""
    rng = random.Random(seed)
    users = _users(rng, n_users)
    events = ordinary(rng, users)
    attacks: list[Attack] = []
    candidates = [u for u in users if "admin" not in u.roles and not u.night]
    for make in ATTACKS:
        for _ in range(per_kind):
            at = START + timedelta(days=rng.randrange(10, DAYS), hours=rng.randrange(9, 16), minutes=rng.randrange(60))
            attacks.append(make(rng, rng.choice(candidates), at))
    tagged = [(e, None) for e in events] + [(e, a) for a in attacks for e in a.events]
    tagged.sort(key=lambda pair: pair[0].occurred_at)
    out: list[AuditEvent] = []
    attack_seqs: dict[int, Attack] = {}
    for seq, (event, attack) in enumerate(tagged, start=1):
        numbered = AuditEvent(
            type=event.type,
            occurred_at=event.occurred_at,
            outcome=event.outcome,
            actor=event.actor,
            objects=event.objects,
            detail=event.detail,
            seq=seq,
        )
        out.append(numbered)
        if attack is not None:
            attack_seqs[seq] = attack
    for attack in attacks:
        attack.events = [out[seq - 1] for seq, a in attack_seqs.items() if a is attack]
    user_days = len({(e.actor.principal_id, e.occurred_at.date()) for e in events if e.type == "login.success"})
    return Traffic(out, attacks, user_days, attack_seqs)
