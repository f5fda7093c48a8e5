"""A whole site behind the gateway (the ``world`` fixture): two zones, each with an
embedded archive, people with API tokens, studies of three sensitivities, and an httpx
client through ASGITransport."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from pacsguard import config
from pacsguard.app import Site, build_app, load_site_policy, open_site
from pacsguard.archives import Archive, EmbeddedArchive
from pacsguard.archives.sealing import load_site_key
from pacsguard.archives.synthetic import SyntheticStudy, make_study
from pacsguard.audit.reader import LogReader
from pacsguard.clock import FakeClock
from pacsguard.directory import Operator, PrincipalKind
from pacsguard.domain import AuditEvent, RoleRef, Sensitivity
from pacsguard.gateway import GatewayOptions
from pacsguard.policy import DecisionPoint

T = TypeVar("T")
OPERATOR = Operator("test")
ISSUER, AUDIENCE = "https://idp.example/realm", "pacsguard"
JWT_KEY = ec.generate_private_key(ec.SECP256R1())
CLIENT_IP = "192.0.2.10"
EXTRA_RULES = {
    "north": """
  - id: north-radiologists-store
    effect: permit
    roles: [radiologist]
    actions: [store, delete]
""",
    "south": """
  - id: south-radiologists-store
    effect: permit
    roles: [radiologist]
    actions: [store]
""",
}


def run(awaitable: Awaitable[T]) -> T:
    async def main() -> T:
        return await awaitable

    return asyncio.run(main())


@dataclass
class World:
    """The site, its gateway app, archives, tokens by person and the seeded studies."""

    site: Site
    archives: dict[str, Archive]
    tokens: dict[str, str]
    studies: dict[str, SyntheticStudy]
    options: GatewayOptions
    point: DecisionPoint

    @property
    def app(self) -> Any:
        return self.app_with(self.archives)

    def app_with(self, archives: dict[str, Archive], options: GatewayOptions | None = None) -> Any:
        return build_app(self.site, archives, lambda: self.point, options or self.options)

    def request(
        self, who: str | None, method: str, path: str, *, app: Any = None, ip: str = CLIENT_IP, **kwargs: Any
    ) -> httpx.Response:
        """One request through the whole app from ``ip``; ``who`` names the API token used."""
        headers = dict(kwargs.pop("headers", {}) or {})
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=app or self.app, client=(ip, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
                response = await client.request(method, path, headers=headers, **kwargs)
                await response.aread()
                return response

        return asyncio.run(go())

    def get(self, who: str | None, path: str, **kwargs: Any) -> httpx.Response:
        return self.request(who, "GET", path, **kwargs)

    def events(self, type_: str | None = None) -> list[AuditEvent]:
        found = list(LogReader(self.site.engine).iter_events(None, None))
        return [e for e in found if type_ is None or e.type == type_]


def _seed_people(site: Site) -> dict[str, str]:
    d = site.directory
    people = {"alice": ("north", "radiologist"), "bob": ("south", "radiologist"), "eve": ("north", "referrer")}
    tokens = {}
    for pid, (zone, role) in people.items():
        d.principals.create(pid, kind=PrincipalKind.PERSON, display_name=pid.title(), zone=zone, by=OPERATOR)
        d.assignments.grant(pid, RoleRef(zone, role), by=OPERATOR)
        tokens[pid] = d.tokens.issue(pid, name="viewer", scopes=["dicomweb"], by=OPERATOR).secret
    tokens["alice-noscope"] = d.tokens.issue("alice", name="other", scopes=["query"], by=OPERATOR).secret
    return tokens


def _seed_studies(site: Site, archives: dict[str, Archive]) -> dict[str, SyntheticStudy]:
    plan = {
        "N1": ("north", "N-100", "Nord^Anna", Sensitivity.INTERNAL, date(2024, 3, 1)),
        "N2": ("north", "N-101", "Nord^Vip", Sensitivity.SECRET, date(2024, 3, 2)),
        "S1": ("south", "S-200", "Sud^Bruno", Sensitivity.INTERNAL, date(2024, 3, 3)),
    }
    studies = {}
    for name, (zone, patient, patient_name, sensitivity, day) in plan.items():
        study = make_study(patient_id=patient, patient_name=patient_name, study_date=day, accession=name,
                           series=2, instances_per_series=2)  # fmt: skip
        assert run(archives[zone].store(study.instances)).ok
        site.catalogue.record(study.study_uid, zone=zone, archive=archives[zone].name, patient_id=patient,
                              modality="CT", study_date=day)  # fmt: skip
        site.catalogue.set_sensitivity(study.study_uid, sensitivity, by="olga")
        studies[name] = study
    return studies


def jwt_for(subject: str, now: datetime, **claims: object) -> str:
    """A JWT from the test issuer, valid for five minutes from ``now``."""
    at = int(now.timestamp())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "iat": at, "exp": at + 300, **claims}
    return jwt.encode(payload, JWT_KEY, algorithm="ES256", headers={"kid": "k1"})


def _with_oidc(directory: Path) -> None:
    jwk = {**ECAlgorithm.to_jwk(JWT_KEY.public_key(), as_dict=True), "kid": "k1", "alg": "ES256"}
    (directory / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    settings = directory / "pacsguard.toml"
    text = settings.read_text()
    for key, value in (("issuer", ISSUER), ("audience", AUDIENCE), ("jwks_file", "jwks.json")):
        text = text.replace(f'{key} = ""', f'{key} = "{value}"', 1)
    settings.write_text(text)


@pytest.fixture
def world(make_site: Callable[..., Path], tmp_path: Path) -> Iterator[World]:
    directory = make_site()
    _with_oidc(directory)
    for zone, rules in EXTRA_RULES.items():
        path = directory / "policies" / f"{zone}.yaml"
        path.write_text(path.read_text() + rules)
    clock = FakeClock(datetime.fromisoformat("2026-11-23T10:00:00+00:00"))
    site = open_site(config.load(directory), clock)
    try:
        key = load_site_key(tmp_path / "archive.key")
        archives: dict[str, Archive] = {
            zone: EmbeddedArchive(f"{zone}-pacs", site.engine, tmp_path / zone, key) for zone in ("north", "south")
        }
        tokens = _seed_people(site)
        studies = _seed_studies(site, archives)
        point = DecisionPoint(load_site_policy(directory), clock)
        yield World(site, archives, tokens, studies, GatewayOptions(max_body_bytes=2 << 20), point)
    finally:
        site.close()


def study_uids(response: httpx.Response, tag: str = "0020000D") -> list[str]:
    """The study (or other) UIDs of a QIDO answer, in order."""
    assert response.status_code == 200, response.text
    return [item[tag]["Value"][0] for item in response.json()]
