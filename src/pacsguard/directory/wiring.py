"""Composition: a site's directory from its settings (the caller chooses where its
events go: ``pacsguard.app`` hands it the audit log)."""

from __future__ import annotations

from sqlalchemy import Engine

from pacsguard.clock import Clock
from pacsguard.config import Settings
from pacsguard.directory.certificates import ClientCertificateVerifier
from pacsguard.directory.oidc import OidcVerifier
from pacsguard.directory.service import Directory
from pacsguard.domain import EventSink
from pacsguard.site import load_zones

__all__ = ["certificate_verifier", "open_directory"]


def open_directory(settings: Settings, engine: Engine, events: EventSink, clock: Clock | None = None) -> Directory:
    """The site's directory on a migrated ``engine``, reporting to ``events`` (the audit
    log, in ``pacsguard.app``), with the site CA and OIDC issuer when configured.

    Raises ``ConfigError`` (zones.yaml, CA or JWKS file).
    """
    zones = load_zones(settings.site / "zones.yaml")
    return Directory(
        engine,
        zones,
        settings.auth,
        events,
        clock,
        certificates=certificate_verifier(settings),
        oidc=OidcVerifier.from_file(settings.auth.oidc, settings.site) if settings.auth.oidc.issuer else None,
    )


def certificate_verifier(settings: Settings) -> ClientCertificateVerifier | None:
    """The site CA's client-certificate verifier, or ``None`` before ``pacsguard pki init``."""
    ca = settings.path(settings.pki.ca_cert)
    return ClientCertificateVerifier(ca.read_bytes()) if ca.is_file() else None
