"""Share links: time-limited, audited links that show a few studies to an external
recipient (``/share/{token}``), created and revoked through ``/api/v1/shares``.

``ShareStore`` keeps the links (and is containment's ``ShareLinks``), ``ShareService``
creates and revokes them, ``RecipientDesk`` serves the recipient, ``share_pages`` and
``shares_router`` are the routes ``build_app`` adds.
"""

from collections.abc import Mapping

from fastapi import APIRouter
from sqlalchemy import Engine
from starlette.routing import BaseRoute

from pacsguard.config import Settings
from pacsguard.gateway.core import Gateway
from pacsguard.gateway.shares.api import shares_router
from pacsguard.gateway.shares.mail import CodeMailer, SmtpMailer, open_mailer
from pacsguard.gateway.shares.pages import PASS_COOKIE, share_pages
from pacsguard.gateway.shares.preview import render_png, study_preview
from pacsguard.gateway.shares.recipient import RecipientDesk, Step
from pacsguard.gateway.shares.service import CreatedShare, ShareRequest, ShareService
from pacsguard.gateway.shares.store import LOCKED_BY, NewShare, ShareLink, ShareState, ShareStore

__all__ = [
    "LOCKED_BY",
    "PASS_COOKIE",
    "CodeMailer",
    "CreatedShare",
    "NewShare",
    "RecipientDesk",
    "ShareLink",
    "ShareRequest",
    "ShareService",
    "ShareState",
    "ShareStore",
    "SmtpMailer",
    "Step",
    "open_mailer",
    "open_shares",
    "render_png",
    "share_pages",
    "shares_router",
    "study_preview",
]


def open_shares(
    gateway: Gateway, engine: Engine, settings: Settings, environ: Mapping[str, str] | None = None
) -> tuple[APIRouter, list[BaseRoute]]:
    """The share-link API router and recipient pages of a site, from its ``[shares]``
    settings. Raises ``ConfigError`` for unusable ``[shares.smtp]`` settings."""
    service = ShareService(
        gateway, ShareStore(engine, gateway.clock), settings.shares,
        mailer=open_mailer(settings.shares, settings.site, environ), site_name=settings.name,
    )  # fmt: skip
    return shares_router(service), share_pages(RecipientDesk(service))
