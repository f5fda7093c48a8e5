"""Servers the integration tests run: the site's ASGI app under uvicorn in a thread
(``in_thread``), and ``pacsguard serve`` as a process of its own (``serve_process``);
both on 127.0.0.1, both stopped when the block ends. Plus ``store_study``, which puts a
synthetic study into a DICOMweb archive (an Orthanc) directly."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from pacsguard.archives import DicomWebArchive
from pacsguard.archives.synthetic import SyntheticStudy
from tests.postgres import free_port

SRC = Path(__file__).parents[1] / "src"


@contextlib.contextmanager
def in_thread(app: Any, port: int) -> Iterator[str]:
    """``app`` served by uvicorn (lifespan on) in a thread on ``port``; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def serve_process(site: Path, *options: str, verify: ssl.SSLContext | None = None) -> Iterator[str]:
    """``pacsguard serve --site site *options`` in its own process until ``/healthz`` answers
    (over HTTPS trusting ``verify``, or plain HTTP with ``--no-tls`` and ``verify=None``);
    yields the base URL. Its output goes to ``site/serve.log``; SIGINT stops it."""
    port = free_port()
    log = (site / "serve.log").open("wb")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    command = ["serve", "--site", str(site), "--host", "127.0.0.1", "--port", str(port), *options]
    process = subprocess.Popen([sys.executable, "-m", "pacsguard", *command], env=env, stdout=log,
                               stderr=subprocess.STDOUT)  # fmt: skip
    base = f"{'https' if verify is not None else 'http'}://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, (site / "serve.log").read_text()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/healthz", verify=verify or True).status_code == 200:
                    break
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def store_study(url: str, study: SyntheticStudy) -> None:
    """Store ``study`` in the DICOMweb archive at ``url`` (STOW-RS), asserting it all landed."""

    async def go() -> None:
        archive = DicomWebArchive(url, name="seed")
        try:
            assert (await archive.store(study.instances)).ok
        finally:
            await archive.aclose()

    asyncio.run(go())
