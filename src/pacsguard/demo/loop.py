"""The demo's second half: the whole loop over HTTP — request, decision, audit, detection,
containment — through the one ASGI app that ``pacsguard serve`` runs, in this process.

A radiologist signs in from her workstation and queries the federated archive (she sees
only what the policies, the agreement and the patients' consents allow); a denied study
answers exactly like a missing one; she signs in again with her second factor and shares a
study by link, which the recipient opens. Then an attacker guesses a radiologist's
password from outside and finally gets in: the live monitor raises a critical alert,
contains the account on its own, and the attacker's next request is refused. The security
officer sees the incident over the API.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import httpx
import pyotp
from rich.console import Console
from rich.table import Table

from pacsguard.app import Site, build_app, load_site_policy, open_archives
from pacsguard.archives import Archive
from pacsguard.archives.synthetic import make_study
from pacsguard.demo.data import DemoStudy
from pacsguard.directory import Operator, PrincipalKind
from pacsguard.domain import RoleRef
from pacsguard.gateway.shares import ShareStore
from pacsguard.monitor.wiring import Monitor, open_monitor
from pacsguard.policy import PolicyStore

__all__ = ["run_loop"]

WORKSTATION = "10.1.4.20"  # alice's reading room, on the north hospital LAN
ATTACKER = "203.0.113.9"  # a documentation address (RFC 5737): "somewhere outside"
OUTSIDE = "198.51.100.7"  # the share link's recipient


def run_loop(site: Site, studies: tuple[DemoStudy, ...], password: str, console: Console) -> None:
    """Store ``studies`` in the site's embedded archives and drive the site over HTTP."""
    asyncio.run(_Loop(site, studies, password, console).run())


class _Loop:
    def __init__(self, site: Site, studies: tuple[DemoStudy, ...], password: str, console: Console) -> None:
        self.site, self.studies, self.password, self.console = site, studies, password, console
        self.archives: dict[str, Archive] = open_archives(site)
        policies = PolicyStore(lambda: load_site_policy(site.settings.site), site.clock)
        self.monitor: Monitor = open_monitor(
            site.settings.site / "rules", site.engine, site.audit, site.directory, site.clock,
            shares=ShareStore(site.engine, site.clock),
        )  # fmt: skip
        self.app = build_app(site, self.archives, lambda: policies.point, monitor=self.monitor)

    async def run(self) -> None:
        self.monitor.start()  # live, woken by every audit commit, as under 'pacsguard serve'
        try:
            await self._store()
            await self._clinician()
            await self._share()
            await self._attack()
        finally:
            self.monitor.stop()
            for archive in self.archives.values():
                await archive.aclose()

    def client(self, ip: str, **cookies: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(ip, 50000))
        return httpx.AsyncClient(transport=transport, base_url="https://pacsguard.demo", cookies=cookies)

    async def _store(self) -> None:
        self.console.rule("archives: the studies, in each zone's embedded store (AES-256-GCM at rest)")
        for s in self.studies:
            study = make_study(
                patient_id=s.patient, patient_name=f"Demo^{s.patient}", study_uid=s.uid, modality=s.modality,
                description=s.description, accession=s.patient, study_date=date(2026, 11, 2),
                series=2, instances_per_series=3, rows=64, columns=64,
            )  # fmt: skip
            archive = next(a for a in self.archives.values() if a.name == s.archive)
            result = await archive.store(study.instances)
            if not result.ok:
                raise RuntimeError(f"the demo could not store {s.uid}: {result}")
        self.console.print(f"{len(self.studies)} studies, 6 instances each, stored in {sorted(self.archives)}")

    async def _sign_in(self, client: httpx.AsyncClient, who: str, password: str, code: str | None = None) -> int:
        body: dict[str, Any] = {"username": who, "password": password, **({"code": code} if code else {})}
        response = await client.post("/api/v1/sessions", json=body)
        return response.status_code

    async def _clinician(self) -> None:
        self.console.rule("the gateway: a radiologist's viewer, over DICOMweb")
        async with self.client(WORKSTATION) as alice:
            await self._sign_in(alice, "alice", self.password)
            found = (await alice.get("/dicomweb/studies", params={"includefield": "StudyDescription"})).json()
            seen = {item["0020000D"]["Value"][0] for item in found}
            table = Table("study", "zone", "alice's QIDO shows it")
            for s in self.studies:
                table.add_row(f"{s.description} ({s.patient})", s.zone, "yes" if s.uid in seen else "[dim]no[/]")
            self.console.print(table)
            self.console.print(f"alice queried all archives at once and got {len(seen)} of {len(self.studies)}: "
                               "the rest were filtered before paging, so counts reveal nothing")  # fmt: skip
            hidden = next(s for s in self.studies if s.uid not in seen)
            missing = await alice.get("/dicomweb/studies/1.2.3.999/metadata")
            denied = await alice.get(f"/dicomweb/studies/{hidden.uid}/metadata")
            same = (missing.status_code, missing.text) == (denied.status_code, denied.text)
            self.console.print(f"WADO of {hidden.description!r} (denied): {denied.status_code}; of a study that "
                               f"does not exist: {missing.status_code}; identical answers: {same}")  # fmt: skip
            shown = next(s for s in self.studies if s.uid in seen)
            async with alice.stream("GET", f"/dicomweb/studies/{shown.uid}") as response:
                size = sum([len(chunk) async for chunk in response.aiter_raw()])
            self.console.print(f"WADO of {shown.description!r}: {response.status_code}, {size:,} bytes streamed")

    async def _share(self) -> None:
        self.console.rule("share links: a study for a colleague outside, with two factors")
        enrolment = self.site.directory.auth.enroll_totp("alice", by="olga")
        code = pyotp.TOTP(enrolment.secret).now()
        n1 = self.studies[0]
        async with self.client(WORKSTATION) as alice:
            status = await self._sign_in(alice, "alice", self.password, code)
            self.console.print(f"alice enrolled TOTP and signed in with password + code: {status}")
            created = await alice.post("/api/v1/shares", json={"studies": [n1.uid], "days": 2, "max_opens": 3})
            if created.status_code != 201:
                self.console.print(f"share refused: {created.status_code} {created.json()['error']}")
                return
            url = httpx.URL(created.json()["url"])
        self.console.print(f"link for {n1.description!r}: 2 days, 3 opens; token shown once, stored as SHA-256")
        async with self.client(OUTSIDE) as recipient:
            page = await recipient.get(url.path)
            preview = await recipient.get(f"{url.path}/preview/{n1.uid}.png")
        self.console.print(f"the recipient opens it: page {page.status_code}, preview PNG {preview.status_code} "
                           f"({len(preview.content):,} bytes); each open is a share.opened event")  # fmt: skip

    async def _attack(self) -> None:
        self.console.rule("the loop: an attacker guesses dan's password, the live monitor contains him")
        directory, operator = self.site.directory, Operator("demo")
        directory.principals.create("dan", kind=PrincipalKind.PERSON, display_name="Dan", zone="south", by=operator)
        directory.auth.set_password("dan", self.password, by=operator)
        directory.assignments.grant("dan", RoleRef("south", "radiologist"), by=operator)
        async with self.client(ATTACKER) as attacker:
            for guess in range(6):
                await self._sign_in(attacker, "dan", f"Autumn2026-{guess}")
            status = await self._sign_in(attacker, "dan", self.password)
            self.console.print(f"6 wrong passwords from {ATTACKER}, then the right one: {status} (the attacker is in)")
            waited, answer = await self._until_refused(attacker)
            self.console.print(f"his requests are refused {waited:.2f} s after he got in: {answer}")
        async with self.client(WORKSTATION) as olga:
            await self._sign_in(olga, "olga", self.password)
            incidents = (await olga.get("/api/v1/incidents")).json()
            table = Table("incident", "subject", "severity", "state", "first evidence → alert", "alert → contained")
            for i in incidents:
                if i["severity"] != "critical":
                    continue
                contain = f"{i['time_to_contain_s']:.2f} s" if i["time_to_contain_s"] is not None else "—"
                table.add_row(
                    i["id"], i["subject"], i["severity"], i["state"], f"{i['time_to_alert_s']:.2f} s", contain
                )
            others = sum(1 for i in incidents if i["severity"] != "critical")
            self.console.print(f"olga, the security officer, over /api/v1/incidents ({others} other open incidents: "
                               "the admin changes above, bob's lockout, carl's break-glass):")  # fmt: skip
            self.console.print(table)
            for c in (await olga.get("/api/v1/containment")).json():
                self.console.print(f"  in force: {c['action']} on {c['target']}, ordered by {c['ordered_by']}")

    async def _until_refused(self, attacker: httpx.AsyncClient) -> tuple[float, str]:
        """Poll as the attacker until the monitor's containment refuses him (at most 30 s)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:
            response = await attacker.get("/dicomweb/studies", params={"limit": "1"})
            if response.status_code == 401 or loop.time() - start > 30:
                return loop.time() - start, f"{response.status_code} ({response.json().get('error', 'ok')})"
            await asyncio.sleep(0.05)
