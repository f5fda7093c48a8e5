"""Containment playbooks: idempotent, audited, undone only by an officer, and never the
last active security officer locked automatically."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import Engine as DbEngine

from pacsguard.clock import FakeClock
from pacsguard.config import AuthSettings
from pacsguard.directory import Client, Device, Directory, Operator, PrincipalKind
from pacsguard.domain import RecordingSink, RoleRef
from pacsguard.errors import AccountLocked, ContainmentError, ContainmentRefused, MfaError, TokenError
from pacsguard.monitor.containment import PLAYBOOKS, Containment, IpBlocks
from pacsguard.site import load_zones, scaffold

OPERATOR = Operator("test")
README = Path(__file__).resolve().parents[3] / "README.md"


@pytest.fixture
def directory(engine: DbEngine, clock: FakeClock, events: RecordingSink, tmp_path: Path) -> Directory:
    scaffold(tmp_path / "site")
    zones = load_zones(tmp_path / "site" / "zones.yaml")
    d = Directory(engine, zones, AuthSettings(), events, clock)
    for pid in ("olga", "alice"):
        d.principals.create(pid, kind=PrincipalKind.PERSON, display_name=pid, zone="north", by=OPERATOR)
    d.assignments.grant("olga", RoleRef("north", "security-officer"), by=OPERATOR)
    return d


@pytest.fixture
def contain(directory: Directory, engine: DbEngine, events: RecordingSink, clock: FakeClock) -> Containment:
    return Containment(directory, IpBlocks(engine), events, clock)


def types(events: RecordingSink) -> list[str]:
    return [e.type for e in events.events if e.type.startswith("containment.")]


def test_every_playbook_is_documented_in_the_readme() -> None:
    text = README.read_text(encoding="utf-8")
    for name, playbook in PLAYBOOKS.items():
        assert f"`{name}`" in text, f"document the containment action {name} in README.md"
        assert playbook.summary


def test_lock_is_idempotent_audited_and_undone_only_by_an_officer(
    contain: Containment, directory: Directory, events: RecordingSink
) -> None:
    assert contain.apply("lock_account", "alice", ordered_by="rule:auth.x", reason="burst")
    assert not contain.apply("lock_account", "alice", ordered_by="rule:auth.x", reason="burst")
    assert types(events) == ["containment.account_locked"]
    [recorded] = [e for e in events.events if e.type == "containment.account_locked"]
    assert recorded.actor.principal_id == "rule:auth.x"
    assert recorded.objects.target_principal == "alice"
    with pytest.raises(AccountLocked):
        directory.subject("alice")
    with pytest.raises(ContainmentError, match="only an officer"):
        contain.undo("lock_account", "alice", officer="alice")
    assert contain.undo("lock_account", "alice", officer="olga")
    assert directory.subject("alice").principal_id == "alice"
    assert types(events)[-1] == "containment.undone"


def test_revoke_sessions_ends_sessions_and_tokens(contain: Containment, directory: Directory) -> None:
    from pacsguard.domain import AuthStrength

    issued = directory.sessions.create("alice", AuthStrength.PASSWORD, Client())
    token = directory.tokens.issue("alice", name="ci", scopes=["read"], by=OPERATOR)
    assert contain.apply("revoke_sessions", "alice", ordered_by="olga", reason="export spike")
    assert not contain.apply("revoke_sessions", "alice", ordered_by="olga", reason="export spike")
    with pytest.raises(TokenError):
        directory.sessions.validate(issued.secret)
    with pytest.raises(TokenError):
        directory.tokens.validate(token.secret)


def test_automatic_containment_never_locks_the_last_security_officer(
    contain: Containment, directory: Directory, events: RecordingSink
) -> None:
    with pytest.raises(ContainmentRefused):
        contain.apply("lock_account", "olga", ordered_by="rule:auth.x", reason="burst")
    assert directory.subject("olga").principal_id == "olga"
    assert types(events) == ["containment.refused"]
    # a person may still lock her, and with a second officer the rule may too
    directory.principals.create("sam", kind=PrincipalKind.PERSON, display_name="sam", zone="north", by=OPERATOR)
    directory.assignments.grant("sam", RoleRef("north", "security-officer"), by=OPERATOR)
    assert contain.apply("lock_account", "olga", ordered_by="rule:auth.x", reason="burst")


def test_block_ip_for_a_period(contain: Containment, clock: FakeClock, events: RecordingSink) -> None:
    assert contain.apply("block_ip", "203.0.113.9", ordered_by="rule:auth.ip", reason="stuffing")
    assert not contain.apply("block_ip", "203.0.113.9", ordered_by="rule:auth.ip", reason="stuffing")
    assert contain.blocks.is_blocked("203.0.113.9", clock.now())
    assert not contain.blocks.is_blocked("203.0.113.10", clock.now())
    assert not contain.blocks.is_blocked("203.0.113.9", clock.now() + timedelta(hours=1, seconds=1))
    assert contain.undo("block_ip", "203.0.113.9", officer="olga")
    assert not contain.blocks.is_blocked("203.0.113.9", clock.now())


def test_suspend_device_locks_the_device_principal(contain: Containment, directory: Directory) -> None:
    directory.principals.create(
        "ct-1", kind=PrincipalKind.DEVICE, display_name="CT", zone="north", by=OPERATOR, device=Device(ae_title="CT1")
    )
    assert contain.apply("suspend_device", "ct-1", ordered_by="rule:x", reason="odd queries")
    with pytest.raises(AccountLocked):
        directory.subject("ct-1")


def test_share_links_and_unknown_actions_say_what_is_missing(contain: Containment) -> None:
    with pytest.raises(ContainmentError, match="no share store"):
        contain.apply("expire_shares", "alice", ordered_by="olga", reason="x")
    with pytest.raises(ContainmentError, match="no containment action"):
        contain.apply("wipe_disk", "alice", ordered_by="olga", reason="x")
    with pytest.raises(ContainmentError, match="no principal"):
        contain.apply("lock_account", "nobody", ordered_by="olga", reason="x")


def test_mfa_reenrolment_makes_the_login_path_demand_a_code_nobody_holds(
    contain: Containment, directory: Directory, events: RecordingSink, clock: FakeClock
) -> None:
    directory.auth.set_password("alice", "Correct-horse-42", by=OPERATOR)
    directory.auth.login("alice", "Correct-horse-42")
    assert contain.apply("require_mfa_reenrolment", "alice", ordered_by="rule:x", reason="new device")
    assert not contain.apply("require_mfa_reenrolment", "alice", ordered_by="rule:x", reason="new device")
    with pytest.raises(MfaError):
        directory.auth.login("alice", "Correct-horse-42")
    assert [(c.action, c.target) for c in contain.active()] == [("require_mfa_reenrolment", "alice")]
    assert contain.undo("require_mfa_reenrolment", "alice", officer="olga")
    assert contain.active() == []
    enrolment = directory.auth.enroll_totp("alice", by="olga")  # the officer's re-enrolment
    code = pyotp.TOTP(enrolment.secret).at(clock.now())
    assert directory.auth.login("alice", "Correct-horse-42", totp_code=code).session.principal_id == "alice"
    assert types(events).count("containment.mfa_reset") == 1


def test_every_playbook_records_a_documented_event_type() -> None:
    from pacsguard.audit.dicom_codes import EVENT_MAPPINGS
    from pacsguard.audit.event_types import is_known
    from pacsguard.monitor.containment import PLAYBOOKS

    for playbook in PLAYBOOKS.values():
        assert is_known(playbook.event), playbook.name
        assert playbook.event in EVENT_MAPPINGS, playbook.name
    assert is_known("containment.refused")
    assert is_known("containment.undone")
