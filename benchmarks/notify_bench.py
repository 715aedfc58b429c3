"""Measure the notification path: notify() commit latency, webhook delivery rate, SSE end-to-end latency.

    .venv/bin/python benchmarks/notify_bench.py [--n 300] [--data-dir DIR]

The data dir should be on the disk the daemon uses (fsync cost differs between disks and tmpfs).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def start_receiver() -> tuple[ThreadingHTTPServer, list[int]]:
    got: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            got.append(json.loads(body)["id"])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, got


def bench_outbox_and_webhook(data_dir: Path, n: int) -> None:
    from assistant.config import load_settings
    from assistant.core.clock import SystemClock
    from assistant.notify import build_notifier

    server, got = start_receiver()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    settings = load_settings(None, data_dir=data_dir / "a", notify={"desktop": False, "webhook_url": url})
    notifier = build_notifier(settings, SystemClock())
    try:
        lat = []
        for i in range(n):
            t = time.perf_counter()
            notifier.notify(f"title {i}", "body " * 20, source="bench", data={"i": i})
            lat.append((time.perf_counter() - t) * 1000)
        print(
            f"notify() commit (WAL, synchronous=FULL), n={n}: p50 {statistics.median(lat):.2f} ms, "
            f"p95 {pct(lat, 0.95):.2f} ms, max {max(lat):.2f} ms"
        )
        t = time.perf_counter()
        report = notifier.deliver_due()
        dt = time.perf_counter() - t
        assert report.delivered == {"webhook": n} and len(got) == n, report
        print(f"webhook delivery to a 127.0.0.1 receiver: {n} in {dt:.2f} s = {n / dt:.0f}/s")
    finally:
        notifier.close()
        server.shutdown()


def bench_sse(data_dir: Path, n: int) -> None:
    import httpx
    import uvicorn

    from assistant.app import create_app
    from assistant.config import load_settings
    from assistant.core.clock import SystemClock
    from assistant.services import build_services

    class NoLLM:
        name = "none"

        def stream_chat(self, *a: object, **k: object):  # type: ignore[no-untyped-def]
            raise RuntimeError("not used")

        def close(self) -> None:
            pass

    settings = load_settings(
        None,
        data_dir=data_dir / "b",
        memory={"enabled": False},
        scheduler={"enabled": False},
        notify={"desktop": False},
    )
    services = build_services(settings, clock=SystemClock(), llm=NoLLM())  # type: ignore[arg-type]
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    base = f"http://127.0.0.1:{port}"
    lat = []
    try:
        with (
            httpx.Client(timeout=10) as client,
            client.stream("GET", base + "/api/notifications/stream") as r,
        ):
            lines = r.iter_lines()
            for i in range(n):
                t = time.perf_counter()
                client.post(base + "/api/notifications", json={"title": f"t{i}"})
                for line in lines:
                    if line.startswith("data:"):
                        break
                lat.append((time.perf_counter() - t) * 1000)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    print(
        f"POST /api/notifications -> event on an open SSE stream, n={n}: p50 {statistics.median(lat):.2f} ms, "
        f"p95 {pct(lat, 0.95):.2f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--data-dir", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.data_dir or Path.cwd()) as tmp:
        bench_outbox_and_webhook(Path(tmp), args.n)
        bench_sse(Path(tmp), min(args.n, 200))


if __name__ == "__main__":
    main()
