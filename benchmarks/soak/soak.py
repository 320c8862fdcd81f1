"""Soak: long runs that must stay correct and flat (issue 9). Not a benchmark of speed.

Three workloads, each on one loop, each sampling the process's RSS and open descriptors at
16 evenly spaced points of its progress:

- ``threadsafe``: 16 threads each push N ``call_soon_threadsafe`` callbacks while the loop
  runs, each at most ``WINDOW`` ahead of the loop; every callback must run exactly once, in
  push order per thread.
- ``call_soon``: N ``call_soon`` callbacks, run in chunks of 10 000.
- ``connections``: C TCP connections opened to a server on the same loop, one round trip
  each, and closed.

Flat means: the median RSS of the last quarter of samples is within ``RSS_TOLERANCE`` of the
second quarter's (the first quarter is warm-up: allocator pools, queues grown to size), plus
``RSS_SLACK`` bytes for small runs; and the descriptor count at the end equals the count at
the first sample. Any violated invariant makes the exit status 1.

    python benchmarks/soak/soak.py                      # full size on pyloop's default phase
    python benchmarks/soak/soak.py --loop asyncio       # the same on stock asyncio
    python benchmarks/soak/soak.py --quick --loop pyloop-3.1.3 --json out.json

Sizes: full N = 1 000 000 (threadsafe: per thread, so 16 000 000 callbacks), C = 10 000;
``--quick`` N = 10 000 and C = 200 (what tests/test_soak_quick.py runs in the test command).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

from tests.loops import ALL_LOOPS  # noqa: E402 (after the path is set)

PAGE = os.sysconf("SC_PAGE_SIZE")
RSS_TOLERANCE = 0.10
RSS_SLACK = 8 << 20
SAMPLES = 16
THREADS = 16


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


class Samples:
    """RSS and descriptors at points of a workload's progress."""

    def __init__(self) -> None:
        self.points: list[dict] = []
        self.started = time.perf_counter()

    def take(self, done: int) -> None:
        self.points.append(
            {
                "done": done,
                "rss": rss(),
                "fds": fd_count(),
                "seconds": round(time.perf_counter() - self.started, 3),
            }
        )

    def verdict(self) -> list[str]:
        """What is not flat (empty: flat)."""
        problems = []
        n = len(self.points)
        if n < 4:
            return [f"only {n} samples"]
        q = n // 4
        second = statistics.median(p["rss"] for p in self.points[q : 2 * q])
        last = statistics.median(p["rss"] for p in self.points[n - q :])
        if last > second * (1 + RSS_TOLERANCE) + RSS_SLACK:
            problems.append(
                f"RSS grew: last quarter median {last / 2**20:.1f} MiB > second quarter "
                f"{second / 2**20:.1f} MiB + {RSS_TOLERANCE:.0%} + {RSS_SLACK >> 20} MiB"
            )
        if self.points[-1]["fds"] != self.points[0]["fds"]:
            problems.append(
                f"descriptors: {self.points[0]['fds']} at the first sample, "
                f"{self.points[-1]['fds']} at the end"
            )
        return problems


#: How far a producer may run ahead of the loop (callbacks pushed and not yet run). Without
#: a bound, 16 threads outrun any loop and the RSS measures the backlog (gigabytes of queued
#: handles), not a leak.
WINDOW = 20_000


def soak_threadsafe(loop, per_thread: int) -> dict:
    expected = [0] * THREADS  # the next sequence number each thread's callbacks must carry
    wrong: list[tuple[int, int, int]] = []
    total = THREADS * per_thread
    count = [0]
    samples = Samples()
    every = max(1, total // SAMPLES)

    def cb(tid, seq):
        if seq != expected[tid]:
            wrong.append((tid, expected[tid], seq))
        expected[tid] = seq + 1
        count[0] += 1
        if count[0] % every == 0:
            samples.take(count[0])
        if count[0] == total:
            loop.stop()

    def producer(tid):
        push = loop.call_soon_threadsafe
        for seq in range(per_thread):
            if seq - expected[tid] > WINDOW:
                while seq - expected[tid] > WINDOW // 2:
                    time.sleep(0.0005)
            push(cb, tid, seq)

    threads = [threading.Thread(target=producer, args=(t,)) for t in range(THREADS)]
    loop.call_soon(lambda: [t.start() for t in threads])
    loop.run_forever()
    for t in threads:
        t.join()
    in_order = not wrong and expected == [per_thread] * THREADS
    problems = samples.verdict()
    if not in_order:
        problems.append(f"not exactly once and in order per thread: {wrong[:5]}")
    return {"callbacks": count[0], "threads": THREADS, "in_order": in_order} | _summary(
        samples, problems
    )


def soak_call_soon(loop, n: int) -> dict:
    chunk = min(10_000, max(1, n // (2 * SAMPLES)))
    samples = Samples()
    ran = [0]

    def cb():
        ran[0] += 1

    every = max(1, (n // chunk) // SAMPLES)
    for i in range(n // chunk):
        for _ in range(chunk):
            loop.call_soon(cb)
        loop.call_soon(loop.stop)
        loop.run_forever()
        if i % every == 0:
            samples.take(ran[0])
    samples.take(ran[0])
    problems = samples.verdict()
    if ran[0] != n // chunk * chunk:
        problems.append(f"ran {ran[0]} of {n // chunk * chunk}")
    return {"callbacks": ran[0]} | _summary(samples, problems)


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def _connections(loop, n: int, samples: Samples) -> int:
    server = await loop.create_server(Echo, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    every = max(1, n // SAMPLES)
    done = 0
    try:
        for i in range(n):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"ping")
            assert await reader.readexactly(4) == b"ping"
            writer.close()
            await writer.wait_closed()
            done += 1
            if (i + 1) % every == 0:
                await asyncio.sleep(0.01)  # the server side finishes closing
                samples.take(done)
    finally:
        server.close()
        await server.wait_closed()
    return done


def soak_connections(loop, n: int) -> dict:
    samples = Samples()
    done = loop.run_until_complete(_connections(loop, n, samples))
    problems = samples.verdict()
    if done != n:
        problems.append(f"{done} of {n} connections")
    return {"connections": done} | _summary(samples, problems)


def _summary(samples: Samples, problems: list[str]) -> dict:
    first, last = samples.points[0], samples.points[-1]
    return {
        "seconds": last["seconds"],
        "rss_first_mib": round(first["rss"] / 2**20, 1),
        "rss_last_mib": round(last["rss"] / 2**20, 1),
        "rss_max_mib": round(max(p["rss"] for p in samples.points) / 2**20, 1),
        "fds_first": first["fds"],
        "fds_last": last["fds"],
        "fds_max": max(p["fds"] for p in samples.points),
        "samples": samples.points,
        "problems": problems,
        "flat_and_correct": not problems,
    }


def _record() -> dict:
    """The machine, versions and commit the run comes from (the Python benchmarks' record)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "benchmarks", "pyloop"))
    try:
        import harness

        return harness.machine_record()
    except Exception as exc:  # noqa: BLE001 - a missing record must not fail the soak
        return {"error": repr(exc)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--loop", default="pyloop", help="asyncio, pyloop (default phase), pyloop-<phase>"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    parser.add_argument(
        "--only", default="threadsafe,call_soon,connections", help="comma-separated workloads"
    )
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)

    import pyloop

    loop_id = f"pyloop-{pyloop.DEFAULT_PHASE}" if args.loop == "pyloop" else args.loop
    spec = {s.id: s for s in ALL_LOOPS}[loop_id]
    n = 10_000 if args.quick else 1_000_000
    conns = 200 if args.quick else 10_000
    results = {
        "loop": loop_id,
        "quick": args.quick,
        "python": sys.version.split()[0],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "record": _record(),
        "workloads": {},
    }
    for name in args.only.split(","):
        gc.collect()
        loop = spec.new_loop()
        try:
            if name == "threadsafe":
                out = soak_threadsafe(loop, n)
            elif name == "call_soon":
                out = soak_call_soon(loop, n)
            elif name == "connections":
                if not spec.has_io:
                    out = {"skipped": f"{loop_id} does no I/O", "flat_and_correct": True}
                else:
                    out = soak_connections(loop, conns)
            else:
                parser.error(f"unknown workload {name!r}")
        finally:
            loop.close()
        results["workloads"][name] = out
        brief = {k: v for k, v in out.items() if k != "samples"}
        print(f"{loop_id} {name}: {json.dumps(brief)}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    ok = all(w["flat_and_correct"] for w in results["workloads"].values())
    print("soak:", "flat and correct" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
