"""``pacsguard serve``: run a site for real — the DICOMweb gateway on HTTPS and the live
monitor beside it, on the site's database, audit log and archives.

With ``[audit.receiver]`` the ATNA receiver (syslog over TLS/UDP) runs too, on an event
loop of its own in a thread (``ReceiverThread``), not in uvicorn's: a flood of syslog
traffic then cannot delay HTTP requests' event loop, the receiver starts listening (or
fails, with a clear error) before uvicorn starts, and it is stopped after uvicorn ends
with its queue written to the log. The audit log is thread-safe, so both loops append
to it. While serving, the cycle collector runs rarely (``pacsguard.collector``): what was
built at start-up is frozen, and the youngest generation is collected every 50,000
allocations instead of 700.
"""

from __future__ import annotations

import ssl
import threading
from pathlib import Path

import click
import uvicorn

from pacsguard.app import build_app, load_site_policy, open_archives, open_syslog_forwarder
from pacsguard.audit.reader import LogReader
from pacsguard.cli._common import console, load_settings, site_option
from pacsguard.cli._directory import open_site_for_command
from pacsguard.collector import few_collections
from pacsguard.gateway.shares import ShareStore
from pacsguard.ingest.syslog_server import SyslogServer
from pacsguard.ingest.wiring import open_receiver
from pacsguard.monitor.leader import leadership_for
from pacsguard.monitor.notify_config import load_notifiers
from pacsguard.monitor.wiring import open_monitor
from pacsguard.policy import PolicyStore
from pacsguard.web.tls import PeerCertificateProtocol

__all__ = ["serve"]


@click.command()
@site_option
@click.option("--host", help="Listen address (default: [server] host).")
@click.option("--port", type=click.IntRange(0, 65535), help="Listen port (default: [server] port).")
@click.option("--no-monitor", is_flag=True, help="Run the gateway without the live monitor.")
@click.option("--no-tls", is_flag=True, help="Plain HTTP (only behind a TLS-terminating proxy on this host).")
def serve(site: Path | None, host: str | None, port: int | None, no_monitor: bool, no_tls: bool) -> None:
    """Serve the DICOMweb gateway (/dicomweb, /healthz) with the live monitor."""
    settings = load_settings(site)
    cert, key = settings.path(settings.pki.server_cert), settings.path(settings.pki.server_key)
    if not no_tls and not (cert.exists() and key.exists()):
        raise click.UsageError("no server certificate: run 'pacsguard pki init' first, or pass --no-tls")
    opened = open_site_for_command(settings)
    store = PolicyStore(lambda: load_site_policy(settings.site), opened.clock)
    archives = open_archives(opened)
    receiver = open_receiver(settings, opened.engine, opened.audit, opened.clock)
    if receiver is not None:
        receiver.start()
        _announce(receiver.server)
    monitor = None
    if not no_monitor:
        monitor = open_monitor(
            settings.site / "rules", opened.engine, opened.audit, opened.directory, opened.clock,
            notifiers=load_notifiers(settings.site), shares=ShareStore(opened.engine, opened.clock),
            leader=leadership_for(opened.engine),
        )  # fmt: skip
    stats = receiver.stats if receiver is not None else None
    app = build_app(opened, archives, lambda: store.point, monitor=monitor, ingest_stats=stats)
    if monitor is not None:
        monitor.start()
    stop_forwarding = threading.Event()
    forwarder = open_syslog_forwarder(opened)
    if forwarder is not None:
        reader = LogReader(opened.engine)
        threading.Thread(target=forwarder.run, args=(stop_forwarding, reader), name="atna", daemon=True).start()
    listen_host, listen_port = host or settings.server.host, port if port is not None else settings.server.port
    scheme = "http" if no_tls else "https"
    console.print(f"pacsguard serving {settings.site} at {scheme}://{listen_host}:{listen_port}/dicomweb")
    ca = settings.path(settings.pki.ca_cert)
    client_certs = not no_tls and ca.exists()  # devices may sign in with a certificate from the site CA
    try:
        with few_collections():  # everything built so far is frozen; the collector runs rarely
            uvicorn.run(
                app,
                host=listen_host,
                port=listen_port,
                log_level="warning",
                http=PeerCertificateProtocol,
                ssl_certfile=None if no_tls else str(cert),
                ssl_keyfile=None if no_tls else str(key),
                ssl_cert_reqs=ssl.CERT_OPTIONAL if client_certs else ssl.CERT_NONE,
                ssl_ca_certs=str(ca) if client_certs else None,
            )
    finally:
        stop_forwarding.set()
        if receiver is not None:
            receiver.stop()
        if monitor is not None:
            monitor.stop()


def _announce(server: SyslogServer | None) -> None:
    if server is None:
        return
    if server.tls_address is not None:
        console.print(f"ATNA receiver: syslog over TLS on {server.tls_address[0]}:{server.tls_address[1]}")
    if server.udp_address is not None:
        console.print(f"ATNA receiver: syslog over UDP on {server.udp_address[0]}:{server.udp_address[1]}")
