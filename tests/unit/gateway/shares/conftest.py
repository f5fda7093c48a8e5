"""Share-link tests: the seeded ``world`` plus a policy rule that lets radiologists share
internal studies of their zone, an officer, API tokens, a browser that keeps cookies,
and a real local SMTP server (aiosmtpd, STARTTLS) for the one-time codes."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from pacsguard import config
from pacsguard.app import build_app, load_site_policy
from pacsguard.clock import FakeClock
from pacsguard.directory import PrincipalKind
from pacsguard.domain import RoleRef
from pacsguard.policy import DecisionPoint
from tests import smtp as smtp_module
from tests.world import OPERATOR, World, world

__all__ = ["world"]

SHARE_RULE = """
  - id: north-radiologists-share
    effect: permit
    roles: [radiologist]
    actions: [share]
    when:
      max_sensitivity: internal
"""


@dataclass
class Shares:
    """The world with share rights, API tokens by person and a cookie-keeping browser."""

    world: World
    api: dict[str, str]
    app: Any = None
    cookies: dict[str, str] = field(default_factory=dict)

    @property
    def clock(self) -> FakeClock:
        clock = self.world.site.clock
        assert isinstance(clock, FakeClock)
        return clock

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.api[who]}", **kwargs.pop("headers", {})}
        return self.world.request(None, method, path, app=self.app, headers=headers, **kwargs)

    def create(self, who: str = "alice", studies: tuple[str, ...] = ("N1",), **body: Any) -> dict[str, Any]:
        uids = [self.world.studies[s].study_uid if s in self.world.studies else s for s in studies]
        response = self.call(who, "POST", "/api/v1/shares", json={"studies": uids, **body})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def visit(self, path: str, method: str = "GET", *, fresh: bool = False, **kwargs: Any) -> httpx.Response:
        """A recipient's request; the browser keeps (and sends) cookies unless ``fresh``."""
        if fresh:
            self.cookies.clear()
        headers = dict(kwargs.pop("headers", {}))
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = self.world.request(None, method, path, app=self.app, headers=headers, **kwargs)
        for name, value in response.cookies.items():
            self.cookies[name] = value
        return response

    def form(self, path: str, **fields: str) -> httpx.Response:
        """Post a form of the page at ``path`` (its form token taken from the page)."""
        page = self.visit(path)
        match = re.search(r'name="form" value="([^"]+)"', page.text)
        assert match is not None, page.text
        return self.visit(path, "POST", data={"form": match.group(1), **fields})

    def with_settings(self, smtp: str) -> None:
        """Put ``smtp`` in place of the site's ``[shares.smtp]`` table and serve the app
        built from those settings."""
        site_dir = self.world.site.settings.site
        path = site_dir / "pacsguard.toml"
        path.write_text(with_smtp(path.read_text(), smtp))
        site = dataclasses.replace(self.world.site, settings=config.load(site_dir))
        w = self.world
        self.app = build_app(site, w.archives, lambda: w.point, w.options)


def with_smtp(text: str, smtp: str) -> str:
    """The settings ``text`` with its ``[shares.smtp]`` table replaced by ``smtp``."""
    kept = re.sub(r"^\[shares\.smtp\]\n(?:(?!\[|# The archives).*\n)*", "", text, flags=re.M)
    return kept + "\n" + smtp


def path_of(created: dict[str, Any]) -> str:
    return str(httpx.URL(created["url"]).path)


@pytest.fixture
def shares(world: World) -> Shares:
    site_dir = world.site.settings.site
    north = site_dir / "policies" / "north.yaml"
    north.write_text(north.read_text() + SHARE_RULE)
    world.point = DecisionPoint(load_site_policy(site_dir), world.site.clock)
    d = world.site.directory
    d.principals.create("olga", kind=PrincipalKind.PERSON, display_name="Olga", zone="north", by=OPERATOR)
    d.assignments.grant("olga", RoleRef("north", "security-officer"), by=OPERATOR)
    api = {who: d.tokens.issue(who, name="api", scopes=["api"], by=OPERATOR).secret for who in ("alice", "bob", "olga")}
    return Shares(world, api, app=world.app)  # one app for the whole test, as a server would


# --- a real SMTP server with STARTTLS (tests.smtp) -------------------------------------------
class Mailbox(smtp_module.Mailbox):
    """The mail relay the share links' one-time codes go through."""

    def settings(self) -> str:
        return (
            f'[shares.smtp]\nhost = "127.0.0.1"\nport = {self.port}\nstarttls = true\n'
            f'sender = "images@north.example"\nca_file = "{self.ca_file}"\n'
        )


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[Mailbox]:
    with smtp_module.smtp_server(tmp_path, Mailbox()) as box:
        yield box
