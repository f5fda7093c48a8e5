"""The gateway of a bench site in front of one Orthanc, on uvicorn (run by ``run.py``).

.venv/bin/python bench/gateway/serve.py SITE_DIR ORTHANC_URL PORT
"""

from __future__ import annotations

import cProfile
import os
import signal
import sys
from pathlib import Path

import uvicorn

from pacsguard import config
from pacsguard.app import build_app, load_site_policy, open_site
from pacsguard.archives import Archive, DicomWebArchive
from pacsguard.clock import SystemClock
from pacsguard.policy import DecisionPoint


def main(site_dir: str, orthanc: str, port: int) -> None:
    clock = SystemClock()
    public = f"http://127.0.0.1:{port}"
    with open_site(config.load(Path(site_dir)), clock) as site:
        archives: dict[str, Archive] = {
            "north": DicomWebArchive(f"{orthanc}/dicom-web", name="north-pacs", public_url=public, admin_url=orthanc)
        }
        point = DecisionPoint(load_site_policy(Path(site_dir)), clock)
        app = build_app(site, archives, lambda: point)
        profile = os.environ.get("PACSGUARD_BENCH_PROFILE")  # a file for cProfile stats of the gateway
        profiler = cProfile.Profile() if profile else None
        if profiler:
            signal.signal(signal.SIGTERM, lambda *_: None)  # uvicorn re-raises it after its shutdown
            profiler.enable()
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
        if profiler and profile:
            profiler.disable()
            profiler.dump_stats(profile)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
