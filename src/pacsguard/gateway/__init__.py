"""DICOMweb and DIMSE front ends, exports and share links.

The DICOMweb gateway: ``Gateway`` (what the routes share), ``gateway_app`` (the ASGI app
with ``/dicomweb`` and ``/healthz``), ``DicomWebApp`` (the ``/dicomweb`` app alone).
"""

from pacsguard.gateway.asgi import gateway_app
from pacsguard.gateway.auth import SCOPE, SESSION_COOKIE, Caller, authenticate
from pacsguard.gateway.core import AuditSink, Gateway, GatewayOptions, Intent
from pacsguard.gateway.dicomweb import DicomWebApp
from pacsguard.gateway.errors import error_response, not_found

__all__ = [
    "SCOPE",
    "SESSION_COOKIE",
    "AuditSink",
    "Caller",
    "DicomWebApp",
    "Gateway",
    "GatewayOptions",
    "Intent",
    "authenticate",
    "error_response",
    "gateway_app",
    "not_found",
]
