"""A syslog-over-TLS sender for the ingest benchmark, run as its own process.

    python bench/ingest/sender.py HOST PORT CA CERT KEY FRAMES CONNECTIONS

Opens CONNECTIONS TLS connections (client certificate CERT/KEY, trusting CA), prints
``ready``, waits for a line on stdin, then sends the octet-counted frames of the file
FRAMES spread over the connections (whole frames each), and prints ``sent SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
import time


def _split(data: bytes, parts: int) -> list[bytes]:
    """Cut a stream of octet-counted frames into ``parts`` streams of whole frames."""
    frames: list[bytes] = []
    at = 0
    while at < len(data):
        space = data.index(b" ", at)
        end = space + 1 + int(data[at:space])
        frames.append(data[at:end])
        at = end
    return [b"".join(frames[i::parts]) for i in range(parts)]


async def _main(host: str, port: int, ca: str, cert: str, key: str, path: str, connections: int) -> None:
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(cert, key)
    with open(path, "rb") as f:
        chunks = _split(f.read(), connections)
    streams = [await asyncio.open_connection(host, port, ssl=context, server_hostname="localhost") for _ in chunks]
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    start = time.perf_counter()

    async def send(writer: asyncio.StreamWriter, chunk: bytes) -> None:
        step = 256 * 1024
        for i in range(0, len(chunk), step):
            writer.write(chunk[i : i + step])
            await writer.drain()

    await asyncio.gather(*(send(w, c) for (_, w), c in zip(streams, chunks, strict=True)))
    print(f"sent {time.perf_counter() - start:.3f}", flush=True)
    for _, writer in streams:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 5)


if __name__ == "__main__":
    h, p, ca_file, cert_file, key_file, frames_file, n = sys.argv[1:8]
    asyncio.run(_main(h, int(p), ca_file, cert_file, key_file, frames_file, int(n)))
