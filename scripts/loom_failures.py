#!/usr/bin/env python3
"""Run the deliberately broken loom models and put loom's own report in the book.

    python scripts/loom_failures.py            # writes book/src/generated/loom_*.txt
    python scripts/loom_failures.py --check    # fails if loom no longer fails, or if a
                                               # committed report differs from today's

The models are the `#[ignore]`d tests of crates/pyloop-core/tests/broken.rs, built with
`--cfg loom` into target/loom (the loom group's directory, so a build is shared). Each must
fail: the script runs it alone, as a reader would, and keeps what cargo and loom print, with
changes that make the report the same on every machine and run and fit the book's column:
the OS thread id in "thread 'name' (12345) panicked" and the harness's timing are dropped,
absolute paths (this clone, cargo's registry, the test binary's hash) are shortened, loom's
one-line list of thread states is printed one thread per line, and the panic that loom's
clean-up raises after the deadlock (a second panic, then an abort, with a backtrace of
addresses) is replaced by one line that says so. Standard library only.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "book" / "src" / "generated"

# output file -> the ignored test that must fail, and what loom's report must say
REPORTS = {
    "loom_lost_wake_up.txt": ("lost_wake_up_model", "deadlock"),
    "loom_gil_deadlock.txt": ("p3_1_3::gil_held_model", "deadlock"),
    "loom_plain_tail_load.txt": ("lock_free::plain_tail_load_model", "deadlock"),
    "loom_close_io_without_waiting.txt": (
        "lock_free::close_io_without_waiting_model",
        "a wake wrote to an eventfd closed after it read its number",
    ),
}

ENV = {
    "RUSTFLAGS": "--cfg loom",
    "CARGO_TARGET_DIR": "target/loom",
    # where each blocked thread waits, in loom's report
    "LOOM_LOCATION": "1",
    "RUST_BACKTRACE": "0",
}


def command(test: str) -> list[str]:
    return [
        "cargo", "test", "-q", "-p", "pyloop-core", "--release", "--test", "broken", "--",
        "--ignored", "--exact", test, "--test-threads=1",
    ]  # fmt: skip


def shown_command(test: str) -> str:
    env = " ".join(f'{k}="{v}"' if " " in v else f"{k}={v}" for k, v in ENV.items())
    cargo, _, args = " ".join(command(test)).partition(" -- ")
    return f"$ {env} \\\n    {cargo} \\\n    -- {args}"


def unfold_threads(line: str) -> list[str]:
    """loom's one-line list of thread states, one thread per line and its location on the
    next, so that the report fits the book's column (only whitespace changes)."""
    head, _, rest = line.partition("[")
    threads = re.split(r", (?=\(Id\()", rest.removesuffix("]"))
    out = [head + "["]
    for i, thread in enumerate(threads):
        sep = "," if i < len(threads) - 1 else ""
        m = re.match(r"(\(Id\(\d+\), \w+\(Location\(Some\(Location \{) (.*)$", thread)
        if m:
            out += [f"    {m.group(1)}", f"        {m.group(2)}{sep}"]
        else:
            out.append(f"    {thread}{sep}")
    return out + ["]"]


def normalise(text: str) -> str:
    lines = text.splitlines()
    out: list[str] = []
    skipping = False
    panics = 0
    for line in lines:
        line = re.sub(r"^(thread '[^']*') \(\d+\) panicked", r"\1 panicked", line)
        line = line.replace(str(REPO) + "/", "")
        line = re.sub(r"/\S*/\.cargo/registry/src/[^/]+/", "~/.cargo/registry/src/…/", line)
        line = re.sub(r"(deps/broken-)[0-9a-f]+", r"\1…", line)
        # the test harness's timing varies from run to run (0.00s, 0.01s, …)
        line = re.sub(r"; finished in \d+\.\d+s$", "; finished in …s", line)
        if line.startswith("thread '") and " panicked at " in line:
            panics += 1
            if panics > 1:
                if not skipping:
                    out.append("[… loom's clean-up after the deadlock panics again and the")
                    out.append("   process aborts (SIGABRT); those panics and their backtraces")
                    out.append("   are left out …]")
                skipping = True
                continue
        if skipping:
            # the cleanup panic ends where cargo reports the failed test
            if line.startswith("error: test failed"):
                skipping = False
            else:
                continue
        if line.startswith("deadlock; threads = ["):
            out += unfold_threads(line.rstrip())
            continue
        out.append(line.rstrip())
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n"


def report(test: str) -> tuple[int, str]:
    env = {**os.environ, **ENV}
    proc = subprocess.run(
        command(test), cwd=REPO, env=env, capture_output=True, text=True, timeout=1800
    )
    return proc.returncode, normalise(proc.stdout + proc.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--check", action="store_true", help="compare with the files in --out")
    args = ap.parse_args()
    env = {**os.environ, **ENV}
    # Build once (and run the tests that expect the failures: they must pass).
    subprocess.run(
        ["cargo", "test", "-q", "-p", "pyloop-core", "--release", "--test", "broken"],
        cwd=REPO,
        env=env,
        check=True,
        timeout=1800,
    )
    stale = []
    for name, (test, expected) in REPORTS.items():
        code, text = report(test)
        if code == 0 or expected not in text:
            print(f"loom_failures: {test} did not fail with {expected!r}:\n{text}", file=sys.stderr)
            return 1
        body = shown_command(test) + "\n" + text
        path = args.out / name
        if args.check:
            committed = path.read_text(encoding="utf-8") if path.is_file() else ""
            if committed != body:
                stale.append(str(path.relative_to(REPO)))
                sys.stderr.writelines(
                    difflib.unified_diff(
                        committed.splitlines(keepends=True),
                        body.splitlines(keepends=True),
                        f"{name} (committed)",
                        f"{name} (this run)",
                    )
                )
        else:
            path.write_text(body, encoding="utf-8")
    if stale:
        print("loom_failures: out of date (run python scripts/loom_failures.py):", file=sys.stderr)
        print("\n".join(f"  {p}" for p in stale), file=sys.stderr)
        return 1
    print(f"loom_failures: {len(REPORTS)} broken models fail as expected; reports "
          f"{'match the book' if args.check else 'written'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
