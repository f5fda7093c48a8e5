"""``pacsguard demo`` runs end to end on a fresh directory, and what it shows is true."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacsguard import config
from pacsguard.app import open_site
from pacsguard.audit.reader import LogReader
from pacsguard.cli import main


def test_demo_walks_through_and_leaves_a_verifiable_site(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "demo"
    assert main(["demo", "--dir", str(site)]) == 0
    out = capsys.readouterr().out
    assert "eve tried to make herself radiologist: refused" in out
    assert "agreement north-south-imaging: action export is outside" in out
    assert "lacks sensitivity 4 is above 3" in out
    assert "after 9 wrong passwords bob's account is locked" in out
    assert "auth.failed-logins-account" in out
    assert "breakglass.used" in out
    assert "whole-log verification: intact" in out
    # the loop over HTTP: filtered QIDO, a denied study answered like a missing one, a
    # share link opened, an attacker contained by the live monitor
    assert "alice queried all archives at once and got 3 of 5" in out
    assert "identical answers: True" in out
    assert "the recipient opens it: page 200, preview PNG 200" in out
    assert "his requests are refused" in out
    assert "401 (the credentials are not valid)" in out
    assert "lock_account on dan, ordered by rule:auth.success-after-failures" in out
    with open_site(config.load(site)) as opened:
        types = [e.type for e in LogReader(opened.engine).iter_events(None, None)]
    # bob: nine wrong guesses, a tenth refused because of the lock, then the right password,
    # refused too; dan: six wrong guesses over HTTP
    assert types.count("login.failure") == 17
    for expected in ("study.query", "study.read", "access.denied", "share.created", "share.opened",
                     "containment.account_locked", "containment.sessions_revoked"):  # fmt: skip
        assert expected in types, expected
    assert "account.locked" in types
    assert "break_glass.granted" in types
    assert "admin.role.grant" in types
    # Every command the demo suggests works on the site it leaves.
    for command in (["users", "show", "carl"], ["policy", "test"], ["audit", "verify"], ["monitor", "check"]):
        assert main([*command, "--site", str(site)]) == 0


def test_demo_runs_again_but_never_over_a_directory_of_something_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "demo"
    assert main(["demo", "--dir", str(site)]) == 0
    assert main(["demo", "--dir", str(site)]) == 0
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    capsys.readouterr()
    assert main(["demo", "--dir", str(tmp_path / "mine")]) == 2
    assert "not a demo site" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
