"""``/metrics``: Prometheus text exposition (format 0.0.4) of the audit log and the ATNA
receiver: events in the log, its health, and the receiver's counters (messages received,
made durable, quarantined, UDP datagrams dropped, queue depth).

Like ``/healthz`` it needs no credentials and shows counts only, never event content.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from pacsguard.audit import AuditLog

__all__ = ["CONTENT_TYPE", "GAUGES", "metrics_route", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
GAUGES = frozenset({"queue_depth"})  # every other receiver counter only grows
_HELP = {
    "received": "syslog messages taken from the network (rejected ones included)",
    "durable": "received messages committed to the audit log",
    "quarantined": "messages rejected into the quarantine",
    "udp_dropped": "UDP datagrams dropped because the queue was full",
    "connections": "TLS connections accepted",
    "tls_failures": "TLS handshakes refused",
    "closed_lying": "connections closed because a frame length lied",
    "log_retries": "batches the audit log refused and the receiver retried",
    "parser_restarts": "times the receiver's parsing process died or hung and was started again",
    "queue_depth": "messages waiting between the network and the audit log",
}


def render(audit: AuditLog, ingest: Mapping[str, int] | None) -> str:
    """The metrics as Prometheus text."""
    lines = [
        "# HELP pacsguard_audit_events Events committed to the audit log.",
        "# TYPE pacsguard_audit_events gauge",
        f"pacsguard_audit_events {audit.size}",
        "# HELP pacsguard_audit_healthy 1 when the audit log accepts events, else 0.",
        "# TYPE pacsguard_audit_healthy gauge",
        f"pacsguard_audit_healthy {1 if audit.health.state == 'healthy' else 0}",
    ]
    for key, value in sorted((ingest or {}).items()):
        gauge = key in GAUGES
        name = f"pacsguard_ingest_{key}" + ("" if gauge else "_total")
        lines.append(f"# HELP {name} {_HELP.get(key, key.replace('_', ' '))}.")
        lines.append(f"# TYPE {name} {'gauge' if gauge else 'counter'}")
        lines.append(f"{name} {int(value)}")
    return "\n".join(lines) + "\n"


def metrics_route(audit: AuditLog, ingest: Callable[[], Mapping[str, int]] | None = None) -> Route:
    """``GET /metrics`` for ``audit`` and, when given, the receiver's counters."""

    async def metrics(request: Request) -> PlainTextResponse:
        return PlainTextResponse(render(audit, ingest() if ingest is not None else None), media_type=CONTENT_TYPE)

    return Route("/metrics", metrics, methods=["GET"])
