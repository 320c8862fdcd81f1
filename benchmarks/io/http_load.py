#!/usr/bin/env python3
"""A small HTTP/1.1 keep-alive load generator, used only when wrk is not installed.

    python benchmarks/io/http_load.py --port 8000 --conns 64 --duration 10

``--conns`` connections each send ``GET /`` and wait for the whole response before sending the
next, for ``--duration`` seconds. Prints one JSON line: requests/s, latency p50/p99 (ms),
errors. It runs on uvloop (asyncio if missing) and is much slower than wrk: figures from it
compare loops with each other, not with wrk's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def worker(port: int, until: float, latencies: list[float], errors: list[str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            start = time.perf_counter()
            writer.write(REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(head.split(b"\r\n", 1)[0].decode())
            latencies.append(time.perf_counter() - start)
    finally:
        writer.close()


async def main_async(args) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    start = time.perf_counter()
    until = start + args.duration
    await asyncio.gather(*(worker(args.port, until, latencies, errors) for _ in range(args.conns)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
        "errors": len(errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--conns", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        factory = asyncio.SelectorEventLoop
    with asyncio.Runner(loop_factory=factory) as runner:
        print(json.dumps(runner.run(main_async(args))))


if __name__ == "__main__":
    main()
