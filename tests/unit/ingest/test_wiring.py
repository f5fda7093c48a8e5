"""``[audit.receiver]``: off by default; on, it serves with the site's certificates."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pacsguard import config
from pacsguard.app import open_site
from pacsguard.cli import main
from pacsguard.errors import IngestError
from pacsguard.ingest.syslog_server import ReceiverThread
from pacsguard.ingest.wiring import open_receiver


def test_the_receiver_is_off_by_default(make_site: Callable[..., Path]) -> None:
    settings = config.load(make_site())
    assert settings.audit.receiver is None
    with open_site(settings) as opened:
        assert open_receiver(settings, opened.engine, opened.audit, opened.clock) is None


def test_without_certificates_the_receiver_names_what_is_missing(make_site: Callable[..., Path]) -> None:
    site = make_site()
    with (site / "pacsguard.toml").open("a") as f:
        f.write("\n[audit.receiver]\ntls_port = 0\n")
    settings = config.load(site)
    with open_site(settings) as opened, pytest.raises(IngestError, match="server_cert"):
        open_receiver(settings, opened.engine, opened.audit, opened.clock)


@contextmanager
def _receiving(make_site: Callable[..., Path], receiver_settings: str) -> Iterator[ReceiverThread]:
    """A site with a PKI and ``[audit.receiver]`` set to ``receiver_settings``, its receiver running."""
    site = make_site()
    assert main(["pki", "init", "--site", str(site)]) == 0
    with (site / "pacsguard.toml").open("a") as f:
        f.write(f"\n[audit.receiver]\n{receiver_settings}")
    settings = config.load(site)
    with open_site(settings) as opened:
        thread = open_receiver(settings, opened.engine, opened.audit, opened.clock)
        assert thread is not None
        thread.start()
        try:
            assert thread.server is not None
            yield thread
        finally:
            thread.stop()


def test_configured_it_listens_on_tls_and_udp(make_site: Callable[..., Path]) -> None:
    with _receiving(make_site, "tls_port = 0\nudp_port = 0\nmax_message_bytes = 4096\n") as thread:
        assert thread.server is not None
        assert thread.server.tls_address is not None
        assert thread.server.udp_address is not None
        assert thread.server.receiver.options.max_message_bytes == 4096
        assert thread.stats()["received"] == 0


@pytest.mark.parametrize(
    ("setting", "processes", "timeout"),
    [
        ("", 2, 60.0),
        ("parse_processes = 1\nparse_timeout_seconds = 5\n", 1, 5.0),
        ("parse_processes = 0\n", 0, None),
    ],
)
def test_it_parses_in_two_processes_unless_told_otherwise(
    make_site: Callable[..., Path], setting: str, processes: int, timeout: float | None
) -> None:
    with _receiving(make_site, f"tls_port = 0\n{setting}") as thread:
        assert thread.server is not None
        parser = thread.server.receiver.parser
        assert len(parser.pids if parser is not None else []) == processes
        assert (parser.timeout if parser is not None else None) == timeout
