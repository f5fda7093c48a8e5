"""A real Orthanc (Debian's 1.10 + DICOMweb plugin) for the tests, one process per zone.

Started from a JSON configuration of our own in a temporary folder (never /etc/orthanc),
on free loopback ports, with the DICOMweb plugin named by file; stopped with SIGTERM.
See shared/ORTHANC_NOTES.md for why each setting is there.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.postgres import free_port

ORTHANC = "/usr/sbin/Orthanc"


def dicomweb_plugin() -> Path:
    """The DICOMweb plugin's shared library, as the Debian package installed it."""
    try:
        listing = subprocess.run(
            ["dpkg", "-L", "orthanc-dicomweb"], capture_output=True, text=True, check=True
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise RuntimeError("orthanc-dicomweb is not installed: run 'make test' (scripts/system-deps)") from exc
    found = [line for line in listing if line.endswith("/libOrthancDicomWeb.so")]
    if not found:
        raise RuntimeError("orthanc-dicomweb installed no libOrthancDicomWeb.so")
    return Path(found[0])


class OrthancServer:
    """One Orthanc process. ``dicomweb_url`` is the DICOMweb root (ending in ``/dicom-web``)."""

    def __init__(self, root: Path, name: str) -> None:
        if not Path(ORTHANC).exists():
            raise RuntimeError("Orthanc is not installed: run 'make test' (scripts/system-deps)")
        self.root = root
        self.name = name
        self.http_port = free_port()
        self.dicom_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def config(self) -> dict[str, object]:
        return {
            "Name": self.name,
            "StorageDirectory": str(self.root / "storage"),
            "IndexDirectory": str(self.root / "storage"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.name.upper()[:16],
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomCheckCalledAet": True,
            "DicomCheckModalityHost": True,
            "DicomModalities": {},
            "HttpCompressionEnabled": False,
            "StorageCompression": False,
            "Plugins": [str(dicomweb_plugin())],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False, "StudiesMetadata": "Full"},
        }

    def start(self) -> None:
        config = self.root / "orthanc.json"
        config.write_text(json.dumps(self.config(), indent=2))
        env = {**os.environ, "TCP_NODELAY": "1"}
        with (self.root / "orthanc.log").open("wb") as log:
            self._process = subprocess.Popen([ORTHANC, str(config)], stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/system", timeout=1).status_code == 200:
                    return
            if self._process.poll() is not None:
                raise RuntimeError(f"Orthanc exited at start (code {self._process.returncode}); see {self.root}")
            time.sleep(0.05)
        raise RuntimeError("Orthanc did not answer /system within 30 s")

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)

    def clear(self) -> None:
        """Delete every patient (through Orthanc's REST API: test set-up only, never a data path)."""
        for patient in httpx.get(f"{self.url}/patients", timeout=10).json():
            httpx.delete(f"{self.url}/patients/{patient}", timeout=10).raise_for_status()


@contextlib.contextmanager
def running_orthanc(name: str = "orthanc") -> Iterator[OrthancServer]:
    """An Orthanc in a fresh temporary folder, stopped and removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix=f"pacsguard-{name}-"))
    server = OrthancServer(root, name)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


class OrthancFactory:
    """Starts Orthancs on demand, one per name for the session; stops them all at the end."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self._stack = stack
        self._servers: dict[str, OrthancServer] = {}

    def __call__(self, name: str = "orthanc") -> OrthancServer:
        if name not in self._servers:
            self._servers[name] = self._stack.enter_context(running_orthanc(name))
        return self._servers[name]
