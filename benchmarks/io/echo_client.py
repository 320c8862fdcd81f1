#!/usr/bin/env python3
"""The load of the echo benchmark: a separate process, the same for every server.

    python benchmarks/io/echo_client.py --port 12345 --sizes 1024,10240 --round-trips 20000 \
        --conns 8

For each message size it opens ``--conns`` connections to 127.0.0.1 and has each do its share
of ``--round-trips`` round trips, one message in flight per connection: send ``size`` bytes,
wait until ``size`` bytes have come back, send again. A short warm-up (a tenth as many round
trips, at least one per connection) runs first and is not timed. It prints one JSON line per
size: round trips per second over the timed part, MB/s each way, and the median and 99th
percentile of the round-trip latency.

The client itself runs on uvloop (stock asyncio if uvloop is missing) with an
``asyncio.Protocol``: the cheapest client we have, so that the server is what saturates, and
the same client against every server, so that what differs between rows is the server's loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import time


class Pinger(asyncio.Protocol):
    def __init__(self, message: bytes, count: int, done: asyncio.Future) -> None:
        self.message = message
        self.size = len(message)
        self.left = count
        self.done = done
        self.got = 0
        self.sent_at = 0
        self.latencies: list[int] = []

    def connection_made(self, transport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self) -> None:
        self.sent_at = time.perf_counter_ns()
        self.transport.write(self.message)

    def data_received(self, data) -> None:
        self.got += len(data)
        if self.got < self.size:
            return
        if self.got > self.size:
            self.done.set_exception(RuntimeError(f"got {self.got} bytes back, sent {self.size}"))
            return
        self.latencies.append(time.perf_counter_ns() - self.sent_at)
        self.got = 0
        self.left -= 1
        if self.left > 0:
            self.send()
        elif not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc) -> None:
        if not self.done.done():
            self.done.set_exception(exc or ConnectionError("server closed the connection"))


async def run_size(port: int, size: int, round_trips: int, conns: int) -> dict:
    loop = asyncio.get_running_loop()
    message = b"x" * size

    async def phase(total: int) -> tuple[float, list[int]]:
        per_conn = max(1, total // conns)
        pingers = []
        for _ in range(conns):
            done = loop.create_future()
            _, p = await loop.create_connection(
                lambda done=done: Pinger(message, per_conn, done), "127.0.0.1", port
            )
            pingers.append(p)
        start = time.perf_counter()
        for p in pingers:
            p.send()
        await asyncio.gather(*(p.done for p in pingers))
        elapsed = time.perf_counter() - start
        for p in pingers:
            p.transport.close()
        await asyncio.sleep(0)
        return elapsed, [lat for p in pingers for lat in p.latencies], per_conn * conns

    _, _, warmed = await phase(max(conns, round_trips // 10))  # untimed warm-up
    elapsed, latencies, done = await phase(round_trips)
    latencies.sort()
    return {
        "size": size,
        "conns": conns,
        "round_trips": done,
        "warmup_round_trips": warmed,
        "seconds": elapsed,
        "round_trips_per_s": done / elapsed,
        "mb_per_s": done * size / elapsed / 1e6,
        "p50_us": statistics.median(latencies) / 1e3,
        "p99_us": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] / 1e3,
    }


async def main_async(args) -> None:
    for size in args.sizes:
        result = await asyncio.wait_for(
            run_size(args.port, size, args.round_trips_for(size), args.conns), args.timeout
        )
        print(json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sizes", required=True, help="comma-separated message sizes (bytes)")
    parser.add_argument(
        "--round-trips",
        required=True,
        help="total round trips per size: one number, or one per size (comma-separated)",
    )
    parser.add_argument("--conns", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per size, at most")
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    counts = [int(n) for n in args.round_trips.split(",")]
    if len(counts) == 1:
        counts *= len(args.sizes)
    table = dict(zip(args.sizes, counts, strict=True))
    args.round_trips_for = table.__getitem__
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        factory = asyncio.SelectorEventLoop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main_async(args))


if __name__ == "__main__":
    main()
