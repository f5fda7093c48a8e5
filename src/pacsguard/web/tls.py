"""Client certificates under uvicorn: the ASGI TLS extension, which uvicorn does not fill.

``pacsguard serve`` asks every TLS client for a certificate (``CERT_OPTIONAL`` with the
site CA, so browsers without one still connect) and runs this protocol class. For each
request it puts the ASGI ``tls`` extension in the scope
(``scope["extensions"]["tls"]["client_cert_chain"]``, PEM, as the ASGI spec names it)
when the peer presented a certificate the TLS layer verified against the site CA, plus
one dict per connection (``gateway.auth.TLS_CONNECTION_STATE``) in which the gateway keeps the session it
opened for that certificate, so a modality's or viewer's keep-alive connection is one
login, not one per request. The directory still checks the certificate itself
(chain, validity, the principal it is registered to) before it opens that session.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from pacsguard.gateway.auth import TLS_CONNECTION_STATE

__all__ = ["PeerCertificateProtocol"]


class PeerCertificateProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, adding the peer certificate to every request's scope."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._tls: dict[str, Any] | None = None
        ssl_object = transport.get_extra_info("ssl_object")
        if isinstance(ssl_object, ssl.SSLObject):
            der = ssl_object.getpeercert(binary_form=True)
            self._tls = {
                "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
                "tls_version": None,
                "cipher_suite": None,
                TLS_CONNECTION_STATE: {},
            }

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._tls is not None:
            extensions: Any = {"tls": self._tls}  # the ASGI TLS extension (not in uvicorn's scope types)
            self.scope["extensions"] = extensions
