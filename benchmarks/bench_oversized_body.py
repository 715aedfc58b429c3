"""The daemon's memory while a client without the token streams an oversized body at it.

Starts the real daemon (bundled model, memory off so the figure is the request path's alone) with an API
token, then sends chunked bodies of growing size (no Content-Length, so the request guard must count bytes
as they arrive) to ``POST /v1/chat/completions``, without the token and with it, and reads the daemon's RSS from /proc
after each. RSS must not grow with the body: the guard stops reading at ``server.max_body_bytes``.

    python -m benchmarks.bench_oversized_body [--sizes-mb 16,128,512]
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

from tests.daemon import start_daemon

CHUNK = b"1," * (512 * 1024)  # 1 MiB of a JSON array's items


def body(megabytes: int) -> Iterator[bytes]:
    yield b"["
    for _ in range(megabytes):
        yield CHUNK
    yield b"1]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes-mb", default="16,128,512")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes_mb.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        config = '[server]\napi_token = "bench-token"\n[memory]\nenabled = false\n[scheduler]\nenabled = false\n'
        with start_daemon(Path(tmp) / "data", config_toml=config) as daemon:
            proc = psutil.Process(daemon.proc.pid)
            before = proc.memory_info().rss
            print(f"daemon RSS before: {before / 2**20:.1f} MiB")
            print("| body sent | token | answer | daemon RSS after | peak RSS (VmHWM) |")
            print("|---|---|---|---|---|")
            for mb, token in [(mb, token) for token in (False, True) for mb in sizes]:
                headers = {"Content-Type": "application/json"}
                if token:  # past the token check: the guard counts the streamed body up to max_body_bytes
                    headers["Authorization"] = "Bearer bench-token"
                try:
                    r = httpx.post(daemon.url + "/v1/chat/completions", content=body(mb), headers=headers,
                                   timeout=120)  # fmt: skip
                    answer = str(r.status_code)
                except httpx.HTTPError as exc:
                    answer = f"closed ({type(exc).__name__})"
                rss = proc.memory_info().rss
                hwm = _vm_hwm(daemon.proc.pid)
                print(f"| {mb} MiB | {'yes' if token else 'no'} | {answer} | {rss / 2**20:.1f} MiB | {hwm / 2**20:.1f} MiB |")
    return 0


def _vm_hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
