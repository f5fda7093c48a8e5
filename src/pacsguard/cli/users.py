"""``pacsguard users …``: the directory from the command line.

Run on the site by its operator: without ``--by`` a change is made as the local site
operator (audited as ``operator:<os user>``), the root of attestation; with ``--by ID``
it is made as that principal, and its attestation right is checked.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from rich.tree import Tree

from pacsguard.cli._common import console, load_settings, site_option
from pacsguard.cli._directory import _by, _open, _period, _show_time, _table, _when, open_site_for_command
from pacsguard.directory import (
    Assignment,
    Delegation,
    Device,
    Directory,
    Operator,
    Principal,
    PrincipalKind,
    check_policy,
)
from pacsguard.domain import Action, RoleRef

__all__ = ["users"]


def _role(text: str, default_zone: str) -> RoleRef:
    try:
        return RoleRef.parse(text, default_zone)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="ROLE") from None


@click.group()
def users() -> None:
    """Principals, role assignments, delegations, locks, second factors and API tokens."""


@users.command("add")
@click.argument("principal_id")
@click.option("--zone", required=True, help="The principal's home zone (from zones.yaml).")
@click.option("--name", "display_name", default="", help="Display name (default: the id).")
@click.option("--email", default=None)
@click.option("--kind", type=click.Choice([k.value for k in PrincipalKind]), default="person", show_default=True)
@click.option("--ae-title", default=None, help="Device: its DICOM AE title.")
@click.option("--host", default=None, help="Device: its host name or address.")
@click.option("--fingerprint", default=None, help="Device: SHA-256 fingerprint of its client certificate.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@click.option("--no-password", is_flag=True, help="Create without a password (devices, applications, SSO users).")
@site_option
def add(
    principal_id: str,
    zone: str,
    display_name: str,
    email: str | None,
    kind: str,
    ae_title: str | None,
    host: str | None,
    fingerprint: str | None,
    password_stdin: bool,
    no_password: bool,
    site: Path | None,
) -> None:
    """Add a person, device or application with a unique id (persons get a password)."""
    kind_ = PrincipalKind(kind)
    wants_password = not no_password and (kind_ is PrincipalKind.PERSON or password_stdin)
    password = _read_password(password_stdin) if wants_password else None
    device = Device(ae_title, host, fingerprint) if ae_title else None
    if device is None and (host or fingerprint):
        raise click.BadParameter("a host or fingerprint belongs to a device with an AE title", param_hint="--ae-title")
    settings = load_settings(site)
    if password is not None:
        check_policy(settings.auth.password, password, principal_id)
    directory = open_site_for_command(settings).directory
    operator = Operator.current()
    created = directory.principals.create(
        principal_id, kind=kind_, display_name=display_name, zone=zone, email=email, device=device, by=operator
    )
    if password is not None:
        directory.auth.set_password(principal_id, password, by=operator)
    console.print(f"added {created.kind.value} [bold]{created.id}[/] in zone {created.zone}")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line.strip():
            raise click.BadParameter("standard input held no password", param_hint="--password-stdin")
        return line.rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@users.command("list")
@click.option("--zone", default=None, help="Only principals of this zone.")
@click.option("--kind", type=click.Choice([k.value for k in PrincipalKind]), default=None)
@site_option
def list_(zone: str | None, kind: str | None, site: Path | None) -> None:
    """List principals with their state and current roles."""
    directory = _open(site)
    now = datetime.now(UTC)
    table = _table("principals", "id", "kind", "name", "zone", "state", "roles now", "MFA")
    for p in directory.principals.list(kind=PrincipalKind(kind) if kind else None, zone=zone):
        roles = ", ".join(str(a.role) for a in directory.assignments.of(p.id) if a.active(now))
        table.add_row(
            p.id,
            p.kind.value,
            p.display_name,
            p.zone,
            p.state_at(now).value,
            roles or "—",
            "totp" if p.mfa_enrolled else "—",
        )
    console.print(table)


@users.command("show")
@click.argument("principal_id")
@site_option
def show(principal_id: str, site: Path | None) -> None:
    """Show a principal: state, assignments, delegation chains, sessions and tokens."""
    directory = _open(site)
    p = directory.principals.get(principal_id)
    now = datetime.now(UTC)
    console.print(_summary(p, now))
    console.print(_assignments_tree(directory.assignments.of(principal_id), now))
    delegations = directory.delegations.involving(principal_id)
    if delegations:
        console.print(_chains(directory, delegations, now))
    sessions = directory.sessions.of(principal_id)
    tokens = [t for t in directory.tokens.of(principal_id) if t.revoked_at is None and t.expires_at > now]
    console.print(
        f"live sessions: {len(sessions)}   API tokens: "
        + (
            ", ".join(
                f"{t.id} ({t.name}: {' '.join(sorted(t.scopes))}, until {_show_time(t.expires_at)})" for t in tokens
            )
            or "none"
        )
    )


def _summary(p: Principal, now: datetime) -> str:
    lines = [
        f"[bold]{p.id}[/] — {p.display_name} ({p.kind.value}, zone {p.zone})",
        f"state: {p.state_at(now).value}   MFA: {'totp' if p.mfa_enrolled else 'none'}   "
        f"created {_show_time(p.created_at)} by {p.created_by}",
    ]
    if p.lock and p.state_at(now).value == "locked":
        until = f" until {_show_time(p.lock.until)}" if p.lock.until else ""
        lines.append(f"locked by {p.lock.by}{until}: {p.lock.reason}")
    if p.device:
        lines.append(
            f"AE title {p.device.ae_title}, host {p.device.host or '—'}, certificate {p.device.cert_fingerprint or '—'}"
        )
    return "\n".join(lines)


def _assignments_tree(assignments: list[Assignment], now: datetime) -> Tree:
    tree = Tree("[bold]role assignments[/]" + ("" if assignments else ": none"))
    for a in assignments:
        status = "revoked" if a.revoked_at else ("active" if a.active(now) else "not current")
        period = f"{_show_time(a.validity.not_before)} to {_show_time(a.validity.not_after)}"
        tree.add(f"{a.id}: {a.role}, {period}, assigned by {a.assigned_by} — {status}")
    return tree


def _chains(directory: Directory, delegations: list[Delegation], now: datetime) -> Tree:
    tree = Tree("[bold]delegations[/] (chain: assignment → delegations, oldest first)")
    for d in delegations:
        status = "revoked" if d.revoked_at else ("active" if d.validity.contains(now) else "not current")
        actions = ", ".join(sorted(a.value for a in d.actions)) if d.actions is not None else "whole role"
        node = tree.add(
            f"{d.id}: {d.from_principal} → {d.to_principal}, {d.role} ({actions}), "
            f"until {_show_time(d.validity.not_after)}, "
            f"{'may' if d.may_redelegate else 'may not'} pass on — {status}"
        )
        root = directory.assignments.get(d.assignment_id)
        branch = node.add(f"{root.id}: {root.principal_id} holds {root.role} (assigned by {root.assigned_by})")
        for link in directory.delegations.chain_of(d.id):
            branch = branch.add(f"{link.id}: {link.from_principal} → {link.to_principal}")
    return tree


@users.command("grant")
@click.argument("principal_id")
@click.argument("role")
@click.option("--from", "start", default=None, help="Start of the period (ISO date/time or +7d); default now.")
@click.option("--until", "end", default=None, help="End of the period (ISO date/time or +7d); default open.")
@click.option("--by", "by", default=None, help="Act as this principal (its attestation right is checked).")
@site_option
def grant(principal_id: str, role: str, start: str | None, end: str | None, by: str | None, site: Path | None) -> None:
    """Assign ROLE (zone/name, or a name in the principal's zone) to a principal."""
    directory = _open(site)
    ref = _role(role, directory.principals.get(principal_id).zone)
    a = directory.assignments.grant(principal_id, ref, _period(start, end), by=_by(by))
    console.print(f"assigned {a.role} to {a.principal_id} as [bold]{a.id}[/]")


@users.command("revoke")
@click.argument("entry_id")
@click.option("--by", "by", default=None, help="Act as this principal.")
@click.option("--reason", default="", help="Why, for the audit trail.")
@site_option
def revoke(entry_id: str, by: str | None, reason: str, site: Path | None) -> None:
    """Revoke an assignment (a-…) or a delegation (d-…) and the delegations made from it."""
    directory = _open(site)
    if entry_id.startswith("d-"):
        changed = directory.delegations.revoke(entry_id, by=_by(by), reason=reason)
    else:
        changed = directory.assignments.revoke(entry_id, by=_by(by), reason=reason)
    console.print(f"revoked {entry_id}" if changed else f"{entry_id} was revoked already")


@users.command("delegate")
@click.argument("from_principal")
@click.argument("to_principal")
@click.argument("role")
@click.option("--until", "end", required=True, help="End of the delegation (ISO date/time or +7d).")
@click.option("--from", "start", default=None, help="Start (default now).")
@click.option(
    "--action",
    "actions",
    multiple=True,
    type=click.Choice([a.value for a in Action]),
    help="Pass only these actions (repeat); default the whole role.",
)
@click.option("--allow-redelegation", is_flag=True, help="Let the recipient pass it on.")
@click.option("--source", default=None, help="The assignment or delegation id to delegate from.")
@site_option
def delegate(
    from_principal: str,
    to_principal: str,
    role: str,
    end: str,
    start: str | None,
    actions: tuple[str, ...],
    allow_redelegation: bool,
    source: str | None,
    site: Path | None,
) -> None:
    """Delegate ROLE held by FROM_PRINCIPAL to TO_PRINCIPAL for a period."""
    directory = _open(site)
    ref = _role(role, directory.principals.get(from_principal).zone)
    d = directory.delegations.delegate(
        from_principal,
        to_principal,
        ref,
        _period(start, end),
        actions=[Action(a) for a in actions] or None,
        may_redelegate=allow_redelegation,
        source_id=source,
        by=Operator.current(),
    )
    console.print(
        f"delegated {d.role} {d.from_principal} → {d.to_principal} as [bold]{d.id}[/], "
        f"until {_show_time(d.validity.not_after)}; chain {' → '.join(d.chain)}"
    )


@users.command("lock")
@click.argument("principal_id")
@click.option("--reason", required=True, help="Why, for the audit trail.")
@click.option("--until", "end", default=None, help="Lift the lock by itself then (ISO date/time or +1h).")
@click.option("--revoke-sessions", is_flag=True, help="Also end its sessions and revoke its API tokens.")
@site_option
def lock(principal_id: str, reason: str, end: str | None, revoke_sessions: bool, site: Path | None) -> None:
    """Lock an account (idempotent)."""
    directory = _open(site)
    operator = Operator.current()
    changed = directory.principals.lock(principal_id, reason=reason, by=operator, until=_when(end, "--until"))
    console.print(f"locked {principal_id}" if changed else f"{principal_id} was locked already")
    if revoke_sessions:
        ended = directory.sessions.revoke_all(principal_id, by=operator, reason="account locked")
        revoked = directory.tokens.revoke_all(principal_id, by=operator)
        console.print(f"ended {ended} sessions, revoked {revoked} API tokens")


@users.command("unlock")
@click.argument("principal_id")
@site_option
def unlock(principal_id: str, site: Path | None) -> None:
    """Lift a lock (idempotent)."""
    changed = _open(site).principals.unlock(principal_id, by=Operator.current())
    console.print(f"unlocked {principal_id}" if changed else f"{principal_id} was not locked")


@users.command("disable")
@click.argument("principal_id")
@click.option("--reason", default="", help="Why, for the audit trail.")
@site_option
def disable(principal_id: str, reason: str, site: Path | None) -> None:
    """Disable an account until enabled again (idempotent)."""
    changed = _open(site).principals.disable(principal_id, by=Operator.current(), reason=reason)
    console.print(f"disabled {principal_id}" if changed else f"{principal_id} was disabled already")


@users.command("enable")
@click.argument("principal_id")
@site_option
def enable(principal_id: str, site: Path | None) -> None:
    """Enable a disabled account (idempotent)."""
    changed = _open(site).principals.enable(principal_id, by=Operator.current())
    console.print(f"enabled {principal_id}" if changed else f"{principal_id} was not disabled")


@users.command("mfa-enroll")
@click.argument("principal_id")
@site_option
def mfa_enroll(principal_id: str, site: Path | None) -> None:
    """Give a principal a new TOTP secret; prints the provisioning URI once."""
    enrolment = _open(site).auth.enroll_totp(principal_id, by=Operator.current())
    console.print("Add this to the authenticator app (shown once):")
    console.print(enrolment.provisioning_uri, markup=False, soft_wrap=True)
    console.print(f"secret: {enrolment.secret}", markup=False)


@users.command("token")
@click.argument("principal_id")
@click.option("--name", default="api", show_default=True, help="What the token is for.")
@click.option("--scope", "scopes", multiple=True, help="A scope the token carries (repeat), e.g. query, read.")
@click.option("--days", type=click.IntRange(min=1), default=None, help="Lifetime in days (default: the site maximum).")
@click.option("--revoke", "revoke_id", default=None, help="Revoke this token id (t-…) instead.")
@site_option
def token(
    principal_id: str, name: str, scopes: tuple[str, ...], days: int | None, revoke_id: str | None, site: Path | None
) -> None:
    """Issue an API token for a principal (printed once), or revoke one."""
    directory = _open(site)
    operator = Operator.current()
    if revoke_id:
        found = directory.tokens.get(revoke_id)
        if found.principal_id != principal_id:
            raise click.BadParameter(f"{revoke_id} belongs to {found.principal_id}", param_hint="--revoke")
        changed = directory.tokens.revoke(revoke_id, by=operator)
        console.print(f"revoked {revoke_id}" if changed else f"{revoke_id} was revoked already")
        return
    if not scopes:
        raise click.BadParameter("name at least one scope", param_hint="--scope")
    issued = directory.tokens.issue(
        principal_id, name=name, scopes=scopes, by=operator, expires_in=timedelta(days=days) if days else None
    )
    console.print(
        f"token {issued.token.id} for {principal_id}, until {_show_time(issued.token.expires_at)} "
        "(the secret is shown once):"
    )
    console.print(issued.secret, markup=False)
