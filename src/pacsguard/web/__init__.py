"""The security dashboard and the JSON API: ``api_app`` (FastAPI at ``/api``) and
``site_app`` (the one ASGI app a site serves)."""

from pacsguard.web.api import api_app
from pacsguard.web.app import site_app

__all__ = ["api_app", "site_app"]
