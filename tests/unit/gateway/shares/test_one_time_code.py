"""The e-mailed one-time code, through a real local SMTP server (aiosmtpd, STARTTLS)."""

from __future__ import annotations

import pytest

from pacsguard import config
from pacsguard.errors import ConfigError
from pacsguard.gateway.shares import open_mailer
from tests.unit.gateway.shares.conftest import Mailbox, Shares, path_of, with_smtp


def test_the_code_is_mailed_over_starttls_and_opens_the_link_once(shares: Shares, smtp: Mailbox) -> None:
    shares.with_settings(smtp.settings())
    created = shares.create(recipient="GP@Example.org")
    assert created["recipient"] == "gp@example.org"
    gate = shares.visit(path_of(created), fresh=True)
    assert "g***@example.org" in gate.text
    assert shares.world.studies["N1"].study_uid not in gate.text
    assert shares.form(path_of(created), action="send").status_code == 200
    ((to, _message, over_tls),) = smtp.messages
    assert to == ["gp@example.org"]
    assert over_tls
    code = smtp.last_code()
    assert shares.form(path_of(created), action="code", code=f"{(int(code) + 1) % 10**6:06d}").status_code == 403
    assert shares.form(path_of(created), action="code", code=code).status_code == 303
    assert shares.world.studies["N1"].study_uid in shares.visit(path_of(created)).text
    shares.cookies.clear()  # another browser: the code worked once
    assert shares.form(path_of(created), action="code", code=code).status_code == 403
    sent = [e for e in shares.world.events("share.opened") if e.detail.get("what") == "code"]
    assert sent[0].outcome == "success"
    assert sent[0].detail["recipient"] == "gp@example.org"


def test_a_code_expires(shares: Shares, smtp: Mailbox) -> None:
    shares.with_settings(smtp.settings())
    created = shares.create(recipient="gp@example.org")
    shares.visit(path_of(created), fresh=True)
    shares.form(path_of(created), action="send")
    shares.clock.advance(seconds=600)
    assert shares.form(path_of(created), action="code", code=smtp.last_code()).status_code == 403


def test_codes_are_not_resent_within_a_minute(shares: Shares, smtp: Mailbox) -> None:
    shares.with_settings(smtp.settings())
    created = shares.create(recipient="gp@example.org")
    shares.visit(path_of(created), fresh=True)
    assert shares.form(path_of(created), action="send").status_code == 200
    assert shares.form(path_of(created), action="send").status_code == 429
    shares.clock.advance(seconds=61)
    assert shares.form(path_of(created), action="send").status_code == 200
    assert len(smtp.messages) == 2


def test_wrong_codes_lock_the_link(shares: Shares, smtp: Mailbox) -> None:
    shares.with_settings(smtp.settings())
    created = shares.create(recipient="gp@example.org")
    shares.visit(path_of(created), fresh=True)
    shares.form(path_of(created), action="send")
    code = smtp.last_code()
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(4):
        assert shares.form(path_of(created), action="code", code=wrong).status_code == 403
    assert shares.form(path_of(created), action="code", code=wrong).status_code == 404
    assert shares.visit(path_of(created), fresh=True).status_code == 404
    assert shares.world.events("share.revoked")[-1].detail["by"] == "share:attempts"


def test_a_passcode_comes_before_the_code(shares: Shares, smtp: Mailbox) -> None:
    shares.with_settings(smtp.settings())
    created = shares.create(recipient="gp@example.org", passcode="correct horse")
    assert 'name="passcode"' in shares.visit(path_of(created), fresh=True).text
    assert shares.form(path_of(created), action="send").status_code == 303  # not at that gate yet
    assert smtp.messages == []
    assert shares.form(path_of(created), action="passcode", passcode="correct horse").status_code == 303
    assert "Send me a code" in shares.visit(path_of(created)).text
    shares.form(path_of(created), action="send")
    assert shares.form(path_of(created), action="code", code=smtp.last_code()).status_code == 303
    assert shares.world.studies["N1"].study_uid in shares.visit(path_of(created)).text


def test_a_relay_that_is_down_is_a_clear_retry_later(shares: Shares, smtp: Mailbox) -> None:
    shares.with_settings(smtp.settings().replace(f"port = {smtp.port}", "port = 1"))
    created = shares.create(recipient="gp@example.org")
    shares.visit(path_of(created), fresh=True)
    response = shares.form(path_of(created), action="send")
    assert response.status_code == 503
    assert "try again later" in response.text
    assert [e.outcome for e in shares.world.events("share.opened") if e.detail.get("what") == "code"][-1] == "error"


def test_smtp_settings_errors_name_the_key(shares: Shares) -> None:
    site = shares.world.site.settings.site
    text = (site / "pacsguard.toml").read_text()
    (site / "pacsguard.toml").write_text(
        with_smtp(text, '[shares.smtp]\nhost = "mail"\npassword_env = "NO_SUCH_VAR"\n')
    )
    settings = config.load(site)
    with pytest.raises(ConfigError) as caught:
        open_mailer(settings.shares, site, environ={})
    assert caught.value.problems[0].key == "shares.smtp.password_env"
