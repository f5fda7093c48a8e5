"""``pacsguard users …`` on a scaffolded site."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from pacsguard.audit.export_files import event_to_json
from pacsguard.audit.reader import LogReader
from pacsguard.cli import main
from pacsguard.storage import make_engine

PASSWORD = "Str0ng-Passw0rd!"


@pytest.fixture
def site(make_site: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A site with olga (security officer, by the operator) and alice (no role yet)."""
    site = make_site()
    for name in ("olga", "alice"):
        monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
        assert main(["users", "add", name, "--zone", "north", "--password-stdin", "--site", str(site)]) == 0
    assert main(["users", "grant", "olga", "security-officer", "--site", str(site)]) == 0
    return site


def events_of(site: Path) -> list[dict[str, object]]:
    """The site's audit log, each event as the JSON an export would write."""
    engine = make_engine(f"sqlite:///{site / 'pacsguard.db'}")
    try:
        return [event_to_json(e) for e in LogReader(engine).iter_events(None, None)]
    finally:
        engine.dispose()


def test_add_grant_list_show(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["users", "grant", "alice", "radiologist", "--by", "olga", "--until", "+30d", "--site", str(site)]) == 0
    capsys.readouterr()
    assert main(["users", "list", "--site", str(site)]) == 0
    listing = capsys.readouterr().out
    assert "north/security-officer" in listing
    assert "north/radiologist" in listing
    assert main(["users", "show", "alice", "--site", str(site)]) == 0
    shown = capsys.readouterr().out
    assert "north/radiologist" in shown
    assert "olga" in shown
    assert "active" in shown
    types = [e["type"] for e in events_of(site)]
    assert types.count("principal.created") == 2
    assert types.count("admin.role.grant") == 2
    grant = next(e for e in events_of(site) if e["type"] == "admin.role.grant")
    assert str(grant["actor"]["principal_id"]).startswith("operator:")  # type: ignore[index]


def test_grant_without_the_right_is_refused_and_recorded(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["users", "grant", "olga", "radiologist", "--by", "alice", "--site", str(site)]) == 1
    assert "may not assign" in capsys.readouterr().err
    denied = [e for e in events_of(site) if e["type"] == "admin.role.grant" and e["outcome"] == "denied"]
    assert len(denied) == 1


def test_delegate_shows_the_chain(
    site: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["users", "add", "bob", "--zone", "south", "--password-stdin", "--site", str(site)]) == 0
    assert main(["users", "grant", "alice", "north/radiologist", "--by", "olga", "--site", str(site)]) == 0
    assert (
        main(
            [
                "users",
                "delegate",
                "alice",
                "bob",
                "north/radiologist",
                "--until",
                "+2d",
                "--action",
                "read",
                "--site",
                str(site),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["users", "show", "bob", "--site", str(site)]) == 0
    shown = capsys.readouterr().out
    assert "alice → bob" in shown
    assert "may not pass on" in shown
    assert "read" in shown
    delegation = next(e for e in events_of(site) if e["type"] == "delegation.created")["detail"]["delegation"]  # type: ignore[index]
    assert main(["users", "revoke", str(delegation), "--site", str(site)]) == 0
    assert "delegation.revoked" in [e["type"] for e in events_of(site)]


def test_lock_unlock_token_and_mfa(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["users", "lock", "alice", "--reason", "phishing", "--site", str(site)]) == 0
    assert main(["users", "lock", "alice", "--reason", "phishing", "--site", str(site)]) == 0
    assert "locked already" in capsys.readouterr().out
    assert main(["users", "unlock", "alice", "--site", str(site)]) == 0
    assert main(["users", "mfa-enroll", "alice", "--site", str(site)]) == 0
    assert "otpauth://totp/" in capsys.readouterr().out
    assert main(["users", "token", "alice", "--scope", "read", "--days", "7", "--site", str(site)]) == 0
    assert "pgt_" in capsys.readouterr().out
    assert main(["users", "disable", "alice", "--reason", "left", "--site", str(site)]) == 0
    assert main(["users", "enable", "alice", "--site", str(site)]) == 0
    types = [e["type"] for e in events_of(site)]
    assert {"account.locked", "account.unlocked", "mfa.enrolled", "token.created"} <= set(types)
    assert {"account.disabled", "account.enabled"} <= set(types)


@pytest.mark.parametrize(
    "argv",
    [
        ["users", "show", "nobody"],
        ["users", "grant", "alice", "janitor"],
        ["users", "grant", "alice", "radiologist", "--until", "someday"],
        ["users", "add", "bob", "--zone", "atlantis", "--no-password"],
        ["users", "add", "Bad Name", "--zone", "north", "--no-password"],
        ["users", "revoke", "a-0000"],
    ],
)
def test_bad_input_exits_2_without_a_traceback(site: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--site", str(site)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_a_weak_password_is_refused_before_anything_is_created(
    site: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("weak\n"))
    assert main(["users", "add", "carol", "--zone", "north", "--password-stdin", "--site", str(site)]) == 2
    assert "at least 12 characters" in capsys.readouterr().err
    assert main(["users", "show", "carol", "--site", str(site)]) == 2


def test_add_a_device(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fingerprint = "ab" * 32
    argv = ["users", "add", "ct1", "--zone", "north", "--kind", "device", "--ae-title", "CT_NORTH_1",
            "--host", "ct1.north.example", "--fingerprint", fingerprint, "--site", str(site)]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["users", "show", "ct1", "--site", str(site)]) == 0
    shown = capsys.readouterr().out
    assert "CT_NORTH_1" in shown
    assert fingerprint in shown
