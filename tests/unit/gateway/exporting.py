"""What the export tests share: a policy that lets radiologists export with an API token,
API tokens, calls of the app without httpx buffering, and archives and audit logs that fail."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from pacsguard.app import load_site_policy
from pacsguard.archives import DICOM_ACCEPT, EmbeddedArchive, Retrieved, load_site_key
from pacsguard.audit import Health
from pacsguard.domain import AuditEvent
from pacsguard.errors import ArchiveUnavailable, AuditUnavailable
from pacsguard.gateway import Gateway
from pacsguard.gateway.exports import exports_router
from pacsguard.policy import DecisionPoint
from pacsguard.web import site_app
from tests.world import CLIENT_IP, OPERATOR, World

EXPORT_RULE = """
  - id: {zone}-radiologists-export-by-token
    effect: permit
    roles: [radiologist]
    actions: [export]
    when: {{max_sensitivity: confidential}}
"""


def allow_exports(world: World) -> None:
    """Radiologists may export their zone's studies up to confidential with any sign-in
    (the site template asks for two factors, which an API token never has)."""
    directory = world.site.settings.site
    for zone in ("north", "south"):
        path = directory / "policies" / f"{zone}.yaml"
        path.write_text(path.read_text() + EXPORT_RULE.format(zone=zone))
    world.point = DecisionPoint(load_site_policy(directory), world.site.clock)


def api_headers(world: World, who: str) -> dict[str, str]:
    secret = world.site.directory.tokens.issue(who, name="api", scopes=["api"], by=OPERATOR).secret
    return {"Authorization": f"Bearer {secret}"}


def post_export(world: World, who: str, studies: list[str], app: Any = None, **body: Any) -> httpx.Response:
    return world.request(None, "POST", "/api/v1/exports", app=app, headers=api_headers(world, who),
                         json={"studies": studies, **body})  # fmt: skip


def unzip(response: httpx.Response) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The ``.dcm`` entries by name, and the parsed manifest."""
    assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.testzip() is None
        files = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(files.pop("manifest.json"))
    return files, manifest


class BrokenArchive(EmbeddedArchive):
    """An embedded archive that cannot be reached for the ``broken`` studies, and whose
    connection breaks after the first part of the ``cut`` ones."""

    broken: set[str]
    cut: set[str]

    async def retrieve_study(self, study_uid: str, accept: str = DICOM_ACCEPT) -> Retrieved:
        if study_uid in self.broken:
            raise ArchiveUnavailable(f"archive {self.name!r} cannot be reached")
        retrieved = await super().retrieve_study(study_uid, accept)
        if study_uid not in self.cut:
            return retrieved

        async def cut_short() -> AsyncIterator[bytes]:
            async for n, chunk in _numbered(retrieved):
                if n == 3:  # the first part's head, payload and CRLF went through
                    raise httpx.ReadError("connection reset by peer")
                yield chunk

        return Retrieved(retrieved.content_type, cut_short(), retrieved.aclose)


async def _numbered(retrieved: Retrieved) -> AsyncIterator[tuple[int, bytes]]:
    n = 0
    async for chunk in retrieved:
        yield n, chunk
        n += 1


def broken_copy(world: World, zone: str, broken: set[str], cut: set[str] | None = None) -> BrokenArchive:
    archive: Any = world.archives[zone]
    key = load_site_key(archive.root.parent / "archive.key")  # the world's archives share one key
    copy = BrokenArchive(archive.name, world.site.engine, archive.root, key)
    copy.broken, copy.cut = broken, cut or set()
    return copy


@dataclass
class FailingAudit:
    """The site's audit log, except that events ``fails`` picks are refused."""

    inner: Any
    fails: Callable[[AuditEvent], bool]
    refused: list[AuditEvent] = field(default_factory=list)

    async def append(self, event: AuditEvent) -> Any:
        if self.fails(event):
            self.refused.append(event)
            raise AuditUnavailable("the audit store is down")
        return await self.inner.append(event)

    @property
    def health(self) -> Health:
        return self.inner.health  # type: ignore[no-any-return]


def gateway_of(world: World, audit: Any = None) -> Gateway:
    return Gateway(
        directory=world.site.directory, catalogue=world.site.catalogue, audit=audit or world.site.audit,
        archives=world.archives, point_source=lambda: world.point, clock=world.site.clock, options=world.options,
    )  # fmt: skip


def app_with_audit(world: World, audit: FailingAudit) -> Any:
    gateway = gateway_of(world, audit)
    return site_app(gateway, [exports_router(gateway)])


@dataclass
class Streamed:
    """What a client received from the app, chunk by chunk (never held whole)."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    size: int = 0
    complete: bool = False
    error: BaseException | None = None
    received: bytes = b""


def stream_to(app: Any, path: str, body: dict[str, Any], headers: dict[str, str],
              sink: Callable[[bytes], object]) -> Streamed:  # fmt: skip
    """POST ``body`` to ``app`` as a server would, handing each body chunk to ``sink``
    (httpx's ASGITransport keeps the whole body; this does not)."""
    payload = json.dumps(body).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": raw_headers,
        "client": (CLIENT_IP, 40000), "server": ("gw.test", 80),
    }  # fmt: skip
    got = Streamed()
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # a client that stays connected
        sent = True
        return {"type": "http.request", "body": payload, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            got.status = message["status"]
            got.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            got.size += len(chunk)
            got.complete = not message.get("more_body", False)
            sink(chunk)

    async def main() -> None:
        try:
            await app(scope, receive, send)
        except Exception as exc:
            got.error = exc

    asyncio.run(main())
    return got
