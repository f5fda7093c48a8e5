"""The seeded, self-contained demo: ``pacsguard demo``.

It builds a fresh demo site (SQLite, the template's three zones, policies and agreement),
seeds people, a device, studies and a patient's consent, and then walks through what
pacsguard does today, each step a real call into the code the service runs: attestation,
delegation, decisions with their reasons, break-glass, logins and a lockout, the monitor's
alerts over the audit log, and the audit log's own proofs. Everything it does is in the
site's audit log afterwards, for ``pacsguard audit verify --site DIR`` and friends.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from pacsguard import config
from pacsguard.app import Site, load_site_policy, open_site
from pacsguard.audit import load_signing_key, merkle
from pacsguard.audit.proofs import inclusion
from pacsguard.audit.reader import LogReader
from pacsguard.audit.verify import verify
from pacsguard.clock import SystemClock
from pacsguard.demo.data import ARCHIVES_TOML, PASSWORD, STUDIES, DemoStudy
from pacsguard.demo.loop import run_loop
from pacsguard.directory import Acting, Client, Operator, PrincipalKind
from pacsguard.domain import Action, Actor, AuditEvent, Decision, ObjectRef, Purpose, RoleRef, Validity
from pacsguard.domain.decision import BreakGlassGrant, ConsentKind
from pacsguard.domain.zones import ZoneTree
from pacsguard.errors import AccountLocked, AttestationRefused, ConfigError, InvalidCredentials, Problem
from pacsguard.monitor import Engine, load_rules
from pacsguard.policy import DecisionPoint, request_break_glass
from pacsguard.site import scaffold

__all__ = ["MARKER", "PASSWORD", "run"]

MARKER = ".pacsguard-demo"
OPERATOR = Operator("demo")


N1, N2, C1, S1, S2 = (s.uid for s in STUDIES)


def run(directory: Path, console: Console) -> None:
    """Build a fresh demo site in ``directory`` and walk through it.

    Raises ``ConfigError`` when ``directory`` holds something that is not a demo site.
    """
    _fresh(directory)
    settings = config.load(directory)
    console.rule(f"[bold]pacsguard demo[/] — site {settings.site}")
    with open_site(settings, SystemClock()) as site:
        console.print(_zone_tree(site.directory.zones))
        _seed(site, console)
        _decisions(site, console)
        _logins(site, console)
        _monitor(site, console)
        run_loop(site, STUDIES, PASSWORD, console)
        _audit(site, console)
    _next_steps(settings.site, console)


def _fresh(directory: Path) -> None:
    if directory.exists() and any(directory.iterdir()):
        if not (directory / MARKER).exists():
            raise ConfigError(Problem(directory, "not empty and not a demo site; choose another --dir"))
        shutil.rmtree(directory)
    scaffold(directory)
    with (directory / "pacsguard.toml").open("a") as settings:
        settings.write(ARCHIVES_TOML)
    (directory / MARKER).write_text("made by 'pacsguard demo'; the demo replaces this directory on every run\n")


def _seed(site: Site, console: Console) -> None:
    console.rule("directory: people, a device, roles, attestation, delegation")
    d = site.directory
    people = [("olga", "north"), ("alice", "north"), ("carl", "north-cardiology"), ("bob", "south"), ("eve", "north")]
    for pid, zone in people:
        d.principals.create(pid, kind=PrincipalKind.PERSON, display_name=pid.title(), zone=zone, by=OPERATOR)
        d.auth.set_password(pid, PASSWORD, by=OPERATOR)
    d.assignments.grant("olga", RoleRef("north", "security-officer"), by=OPERATOR)
    d.assignments.grant("bob", RoleRef("south", "radiologist"), by=OPERATOR)
    d.assignments.grant("alice", RoleRef("north", "radiologist"), by=Acting("olga"))
    d.assignments.grant("carl", RoleRef("north-cardiology", "cardiologist"), by=Acting("olga"))
    d.assignments.grant("eve", RoleRef("north", "referrer"), by=Acting("olga"))
    console.print("olga (officer) assigned alice radiologist, carl cardiologist, eve referrer")
    try:
        d.assignments.grant("eve", RoleRef("north", "radiologist"), by=Acting("eve"))
    except AttestationRefused as exc:
        console.print(f"eve tried to make herself radiologist: [red]refused[/] ({exc})")
    now = site.clock.now()
    delegation = d.delegations.delegate(
        "alice", "carl", RoleRef("north", "radiologist"), Validity(now, now + timedelta(days=2)), actions=[Action.READ]
    )
    console.print(f"alice delegated 'read' of her radiologist role to carl for 2 days ({delegation.id})")
    for s in STUDIES:
        site.catalogue.record(
            s.uid, zone=s.zone, archive=s.archive, patient_id=s.patient, modality=s.modality,
            study_date=date(2026, 11, 2), description=s.description,
        )  # fmt: skip
        site.catalogue.set_sensitivity(s.uid, s.sensitivity, by="olga", reason="demo classification")
    d.consents.add(
        "S-200", ConsentKind.ONLY_ZONES, zones=["south"], by=OPERATOR, description="no access outside South Clinic"
    )
    console.print(f"{len(STUDIES)} studies catalogued in 3 zones; patient S-200 allows access from south only")


def _decisions(site: Site, console: Console) -> None:
    console.rule("decisions: who may do what, and why")
    point = DecisionPoint(load_site_policy(site.settings.site), site.clock)
    table = Table("who", "action", "study", "effect", "because")
    cases = [
        ("alice", Action.READ, N1, "north"),
        ("alice", Action.READ, S2, "south"),
        ("alice", Action.READ, S1, "south, consent"),
        ("alice", Action.EXPORT, S2, "south"),
        ("alice", Action.READ, N2, "north, secret"),
        ("bob", Action.READ, N1, "north"),
        ("carl", Action.READ, C1, "cardiology"),
        ("carl", Action.DELETE, C1, "cardiology"),
        ("carl", Action.READ, N1, "north, via alice"),
        ("carl", Action.READ, N2, "north, secret"),
    ]
    for who, action, uid, note in cases:
        decision = point.decide(site.access_request(who, uid, action))
        table.add_row(
            who, action.value, f"{_study(uid).description} ({note})", _effect(decision.permitted), _why(decision)
        )
    console.print(table)
    _break_glass(site, point, console)


def _break_glass(site: Site, point: DecisionPoint, console: Console) -> None:
    request = site.access_request("carl", N2, Action.READ)
    refused = request_break_glass(point, request.subject, request.resource, "urgent", site.clock.now())
    if not isinstance(refused, BreakGlassGrant):
        console.print(f"carl asks for break-glass without a real reason: [red]{refused.message}[/]")
    reason = "patient unconscious in the emergency room, prior brain MR needed now"
    grant = request_break_glass(point, request.subject, request.resource, reason, site.clock.now())
    if not isinstance(grant, BreakGlassGrant):
        console.print(f"break-glass refused: {grant.message}")
        return
    site.audit.emit(
        AuditEvent(
            "break_glass.granted",
            site.clock.now(),
            actor=Actor(principal_id="carl", zone="north-cardiology"),
            objects=ObjectRef(patient_id=request.resource.patient_id, study_uid=N2, zone="north"),
            detail={
                "grant": grant.id,
                "reason": reason,
                "until": grant.validity.not_after.isoformat() if grant.validity.not_after else None,
            },
        )
    )
    decision = point.decide(site.access_request("carl", N2, Action.READ, purpose=Purpose.EMERGENCY, break_glass=grant))
    console.print(f"carl with break-glass ({reason!r}): {_effect(decision.permitted)}, {_why(decision)}")


def _logins(site: Site, console: Console) -> None:
    console.rule("authentication: a login, and a password-guessing attack")
    issued = site.directory.auth.login("alice", PASSWORD, client=Client(ip="10.1.4.20", device_id="ws-114"))
    console.print(f"alice logged in from 10.1.4.20: session of strength {int(issued.session.auth_strength)}")
    attacker = Client(ip="203.0.113.9", device_id="unknown-laptop", user_agent="curl/8")
    failures = 0
    for guess in range(12):
        try:
            site.directory.auth.login("bob", f"Winter2026-{guess}", client=attacker)
        except InvalidCredentials:
            failures += 1
        except AccountLocked:
            console.print(f"after {failures} wrong passwords bob's account is [red]locked[/] for 15 minutes")
            break
    try:
        site.directory.auth.login("bob", PASSWORD, client=attacker)
    except AccountLocked:
        console.print("even the right password is refused while the lock lasts")


def _monitor(site: Site, console: Console) -> None:
    console.rule("monitor: the detection rules over the audit log")
    engine = Engine(load_rules(site.settings.site / "rules"))
    alerts = [a for event in LogReader(site.engine).iter_events(None, None) for a in engine.process(event)]
    table = Table("rule", "severity", "alerts", "subjects", "response")
    for rule_id in dict.fromkeys(a.rule_id for a in alerts):
        same = [a for a in alerts if a.rule_id == rule_id]
        subjects = ", ".join(dict.fromkeys(a.subject.split("=", 1)[-1] for a in same))
        table.add_row(rule_id, same[0].severity.value, str(len(same)), subjects, same[0].response.value)
    console.print(table)


def _audit(site: Site, console: Console) -> None:
    console.rule("audit: a tamper-evident log an outsider can check")
    head = site.audit.sign_head()
    console.print(
        f"signed tree head: {head.size} events, root {head.root_hash.hex()[:16]}…, Ed25519 key {head.key_id[:12]}…"
    )
    proof = inclusion(site.engine, 0, head.size)
    ok = merkle.verify_inclusion(proof.leaf_hash, proof.seq, proof.size, proof.path, head.root_hash)
    console.print(f"inclusion proof of event 0 in that head ({len(proof.path)} hashes), checked offline: {ok}")
    public_key = load_signing_key(site.settings.path(site.settings.pki.signing_key)).public_key()
    report = verify(site.engine, public_key)
    console.print(
        f"whole-log verification: {'[green]intact[/]' if report.ok else '[red]' + str(report.first()) + '[/]'}"
    )


def _next_steps(site: Path, console: Console) -> None:
    console.rule("try it yourself")
    for command in (
        "users list",
        "users show carl",
        "policy explain --user alice --study 1.2.826.0.1.3680043.10.3.2",
        "policy test",
        "consent list --patient S-200",
        "audit verify",
        "audit export --format dicom",
        "monitor check",
    ):
        console.print(f"  .venv/bin/pacsguard {command} --site {site}")
    console.print("serve it to a viewer or dicomweb-client (HTTPS, the studies above, the live monitor):")
    console.print(f"  .venv/bin/pacsguard pki init --site {site} && .venv/bin/pacsguard serve --site {site}")
    console.print(f"logins: olga, alice, carl, bob, eve — password {PASSWORD}")


def _study(uid: str) -> DemoStudy:
    return next(s for s in STUDIES if s.uid == uid)


def _effect(permitted: bool) -> str:
    return "[green]permit[/]" if permitted else "[red]deny[/]"


def _why(decision: Decision) -> str:
    parts = list(decision.rule_ids)
    if decision.agreement:
        parts.append(f"agreement {decision.agreement}")
    if decision.delegation:
        parts.append("delegation " + " → ".join(decision.delegation))
    if decision.consent:
        parts.append("consent " + ", ".join(decision.consent))
    if not decision.permitted and decision.closest and decision.lacking:
        parts.append(f"closest {decision.closest} lacks {'; '.join(decision.lacking)}")
    return "; ".join(parts) or (decision.reasons[0].message if decision.reasons else "")


def _zone_tree(zones: ZoneTree) -> Tree:
    tree = Tree("[bold]security zones[/]")

    def add(node: Tree, zone_id: str) -> None:
        zone = zones.zones[zone_id]
        roles = ", ".join(r.ref.name for r in zone.roles) or "no roles of its own"
        branch = node.add(f"[bold]{zone.id}[/] {zone.name} — roles: {roles}")
        for child in zones.children(zone_id):
            add(branch, child)

    for root in sorted(zones.roots(), key=lambda z: z.id):
        add(tree, root.id)
    return tree
