"""The site's ATNA receiver from ``[audit.receiver]``: built here, started by ``pacsguard serve``."""

from __future__ import annotations

from sqlalchemy import Engine

from pacsguard.audit.settings import options as audit_options
from pacsguard.clock import Clock
from pacsguard.config import Settings
from pacsguard.ingest.receiver import AuditAppender, Receiver, ReceiverOptions
from pacsguard.ingest.store import IngestStore
from pacsguard.ingest.syslog_server import ReceiverThread, SyslogServer, server_tls_context
from pacsguard.ingest.worker import ParserPool

__all__ = ["open_receiver"]


def open_receiver(settings: Settings, engine: Engine, log: AuditAppender, clock: Clock) -> ReceiverThread | None:
    """The receiver thread of ``[audit.receiver]`` (not started), or ``None`` when off.

    With ``parse_processes`` (two by default) messages are parsed and encoded in processes
    of their own, with the limits of the site's audit log; ``log`` must then take
    prepared events (``PreparedAppender``: the ``AuditLog``).

    Raises ``IngestError`` when the TLS files (``[pki]`` server certificate and key, the
    site CA) are unusable.
    """
    config = settings.audit.receiver
    if config is None:
        return None
    context = None
    if config.tls_port is not None:
        context = server_tls_context(
            settings.path(settings.pki.server_cert),
            settings.path(settings.pki.server_key),
            settings.path(settings.pki.ca_cert),
            require_client_cert=config.require_client_cert,
        )
    options = ReceiverOptions(max_message_bytes=config.max_message_bytes, queue_size=config.queue_size)
    store = IngestStore(engine, keep_rows=config.quarantine_rows)

    limits = audit_options(settings.audit).limits

    def make() -> SyslogServer:
        parser = (
            ParserPool(limits, config.parse_processes, timeout=config.parse_timeout_seconds)
            if config.parse_processes
            else None
        )
        receiver = Receiver(log, store, clock, options, parser)
        return SyslogServer(
            receiver, host=config.host, tls_port=config.tls_port, udp_port=config.udp_port, tls_context=context
        )

    return ReceiverThread(make)
