"""E-mailing one-time codes to share recipients: SMTP with STARTTLS (aiosmtplib).

``open_mailer(settings, site, environ)`` builds the site's ``SmtpMailer`` from
``[shares.smtp]``, or returns ``None`` when no relay is configured (then links cannot
name a recipient e-mail).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from pacsguard.config import ShareSettings
from pacsguard.errors import ConfigError, Problem
from pacsguard.mail import send_message

__all__ = ["CodeMailer", "SmtpMailer", "open_mailer"]


class CodeMailer(Protocol):
    """Sends a one-time code; raises ``OSError`` or ``aiosmtplib.SMTPException``."""

    async def send_code(self, recipient: str, code: str, *, until: datetime, site_name: str) -> None: ...


class SmtpMailer:
    """Mails codes through one relay, upgrading with STARTTLS when ``starttls``."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool = True,
        tls: ssl.SSLContext | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.starttls = starttls
        self.tls = tls or ssl.create_default_context()
        self.username, self.password = username, password
        self.timeout = timeout

    async def send_code(self, recipient: str, code: str, *, until: datetime, site_name: str) -> None:
        """Send ``code`` to ``recipient``; raises ``OSError`` or ``aiosmtplib.SMTPException``."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = recipient
        message["Subject"] = f"Your access code for images shared by {site_name}"
        message.set_content(
            f"Your one-time access code is {code}\n\n"
            f"It is valid until {until.strftime('%Y-%m-%d %H:%M')} UTC and works once.\n"
            "If you did not ask for it, ignore this message.\n"
        )
        await send_message(
            message, host=self.host, port=self.port, tls=self.tls, starttls=self.starttls,
            username=self.username, password=self.password, timeout=self.timeout,
        )  # fmt: skip


def open_mailer(settings: ShareSettings, site: Path, environ: Mapping[str, str] | None = None) -> SmtpMailer | None:
    """The site's code mailer, or ``None`` without ``[shares.smtp] host``. Raises
    ``ConfigError`` (naming the key) for an unreadable CA file or a missing password."""
    smtp = settings.smtp
    if not smtp.host:
        return None
    env = os.environ if environ is None else environ
    where = site / "pacsguard.toml"
    password = None
    if smtp.password_env:
        password = env.get(smtp.password_env)
        if password is None:
            message = f"the environment variable {smtp.password_env!r} (the relay password) is not set"
            raise ConfigError(Problem(where, message, key="shares.smtp.password_env"))
    tls = ssl.create_default_context()
    if smtp.ca_file:
        ca = Path(smtp.ca_file) if Path(smtp.ca_file).is_absolute() else site / smtp.ca_file
        try:
            tls = ssl.create_default_context(cafile=str(ca))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(Problem(where, f"cannot read {ca}: {exc}", key="shares.smtp.ca_file")) from None
    return SmtpMailer(
        smtp.host, smtp.port, smtp.sender, starttls=smtp.starttls, tls=tls,
        username=smtp.username or None, password=password, timeout=smtp.timeout_seconds,
    )  # fmt: skip
