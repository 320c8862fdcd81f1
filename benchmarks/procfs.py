"""The one reader of Linux's ``/proc`` for the Python benchmarks (``benchmarks/pyloop`` and
``benchmarks/io``): the CPU model, the machine's busy and total CPU time, and a process's CPU
time. The Rust benchmarks have theirs in ``crates/pyloop-measure/src/procfs.rs``, which counts
the same fields.

Each function returns ``None`` where the file cannot be read, so that a record says "unknown"
rather than fail a run.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Clock ticks per second of ``/proc/stat`` and ``/proc/<pid>/stat``.
TICK = os.sysconf("SC_CLK_TCK")


def cpu_model() -> str | None:
    """The first ``model name`` of ``/proc/cpuinfo``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine_cpu_seconds() -> tuple[float, float] | None:
    """CPU seconds the whole machine has spent since boot, all cores together: ``(busy,
    total)``. Busy is user, nice, system, irq, softirq and steal (the first line of
    ``/proc/stat``); total adds idle and iowait. Guest time is already inside user and nice."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    except OSError:
        return None
    ticks = [int(x) for x in fields]
    idle = ticks[3] + ticks[4]  # idle + iowait
    total = sum(ticks)
    return (total - idle) / TICK, total / TICK


def process_cpu_seconds(pid: int | str = "self") -> float | None:
    """User + system CPU seconds of a live process (``/proc/<pid>/stat``)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The fields after the command name, which is in parentheses and may hold spaces.
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def thread_context_switches() -> int | None:
    """Context switches of the calling thread so far, voluntary (it blocked: a futex, a
    sleep, a wait for I/O) and involuntary (it was preempted) together
    (``/proc/thread-self/status``)."""
    try:
        text = Path("/proc/thread-self/status").read_text()
    except OSError:
        return None
    count = 0
    for line in text.splitlines():
        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
            count += int(line.split(":", 1)[1])
    return count
