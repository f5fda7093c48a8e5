"""DICOMweb and DIMSE front ends, exports and share links.

The DICOMweb gateway: ``Gateway`` (what the routes share), ``gateway_app`` (the ASGI app
with ``/dicomweb`` and ``/healthz``), ``DicomWebApp`` (the ``/dicomweb`` app alone).
Exports: ``exports_router`` (``/api/v1/exports``) and ``zip_studies``, the streamed ZIP of
already-authorised studies that share links reuse.
"""

from pacsguard.gateway.asgi import gateway_app
from pacsguard.gateway.auth import SCOPE, SESSION_COOKIE, Caller, authenticate
from pacsguard.gateway.core import AuditSink, Gateway, GatewayOptions, Intent
from pacsguard.gateway.dicomweb import DicomWebApp
from pacsguard.gateway.errors import error_response, not_found
from pacsguard.gateway.exports import ExportProgress, exports_router, zip_studies

__all__ = [
    "SCOPE",
    "SESSION_COOKIE",
    "AuditSink",
    "Caller",
    "DicomWebApp",
    "ExportProgress",
    "Gateway",
    "GatewayOptions",
    "Intent",
    "authenticate",
    "error_response",
    "exports_router",
    "gateway_app",
    "not_found",
    "zip_studies",
]
