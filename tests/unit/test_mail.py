"""Sending mail through a real local relay (aiosmtpd with STARTTLS, ``tests/smtp.py``)."""

from __future__ import annotations

import asyncio
import gc
import warnings
from email.message import EmailMessage
from pathlib import Path

from pacsguard.mail import send_message
from tests.smtp import Mailbox, smtp_server


def test_a_message_goes_over_starttls_and_leaves_no_socket_behind_on_a_slow_relay(tmp_path: Path) -> None:
    with smtp_server(tmp_path, Mailbox(), slow_to_close=True) as box:
        for n in range(5):  # one event loop per message, as the alert notifier runs them
            message = EmailMessage()
            message["From"], message["To"], message["Subject"] = "pg@site.test", "officer@site.test", f"#{n}"
            message.set_content("hello")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                asyncio.run(send_message(message, host="127.0.0.1", port=box.port, tls=box.client_context()))
                gc.collect()
            assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert [(to, over_tls) for to, _body, over_tls in box.messages] == [(["officer@site.test"], True)] * 5
