"""Sending one message through an SMTP relay (aiosmtplib, STARTTLS), for share-link codes
and alert e-mails alike."""

from __future__ import annotations

import asyncio
import ssl
from email.message import EmailMessage

import aiosmtplib

__all__ = ["send_message"]


async def send_message(
    message: EmailMessage,
    *,
    host: str,
    port: int,
    tls: ssl.SSLContext,
    starttls: bool = True,
    username: str | None = None,
    password: str | None = None,
    timeout: float = 10.0,
) -> None:
    """Send ``message`` and close the connection; raises ``OSError`` or
    ``aiosmtplib.SMTPException``. Logs in when both ``username`` and ``password`` are set."""
    client = aiosmtplib.SMTP(hostname=host, port=port, start_tls=starttls, tls_context=tls, timeout=timeout)
    async with client:
        if username and password is not None:
            await client.login(username, password)
        await client.send_message(message)
        transport = client.transport
    # The relay has answered QUIT. A graceful TLS close would now wait for its
    # close_notify, possibly after the caller's event loop has ended (the alert
    # notifier runs one loop per message), leaving the socket half-closed; drop it now.
    if isinstance(transport, asyncio.Transport):
        transport.abort()
