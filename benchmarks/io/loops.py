"""The event loops the I/O benchmarks compare, by id, and what each one lacks.

Every server process of this folder makes its loop through :func:`new_loop` and nothing else,
so the same server code runs on each. ``pyloop`` is PyLoop's I/O phase (3.2.1, the default)
with its native TCP transport; ``pyloop-asyncio-transport`` is the same loop with
``PYLOOP_NATIVE_TRANSPORT=0``, which serves TCP through asyncio's own selector transport: the
pair shows what the native transport buys.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os

PYLOOP_PHASE = "3.2.1"

#: id -> (label, environment the server process needs)
LOOPS: dict[str, tuple[str, dict[str, str]]] = {
    "asyncio": ("asyncio", {}),
    "uvloop": ("uvloop", {}),
    "rloop": ("rloop", {}),
    "pyloop": (f"PyLoop {PYLOOP_PHASE}", {"PYLOOP_NATIVE_TRANSPORT": "1"}),
    "pyloop-asyncio-transport": (
        f"PyLoop {PYLOOP_PHASE}, asyncio's transport",
        {"PYLOOP_NATIVE_TRANSPORT": "0"},
    ),
}

#: What a loop cannot do, by benchmark kind: such a cell is skipped, and the reason recorded.
LACKS: dict[str, dict[str, str]] = {
    "rloop": {
        "tls": "rloop 0.5 has no TLS",
        "unix": "rloop 0.5 has no Unix sockets",
    },
}


def new_loop(loop_id: str) -> asyncio.AbstractEventLoop:
    if loop_id == "asyncio":
        return asyncio.SelectorEventLoop()
    if loop_id == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    if loop_id == "rloop":
        import rloop

        return rloop.new_event_loop()
    if loop_id.startswith("pyloop"):
        import pyloop

        return pyloop.new_event_loop(PYLOOP_PHASE)
    raise SystemExit(f"unknown loop {loop_id!r}: known {sorted(LOOPS)}")


def uvicorn_loop_arg(loop_id: str) -> str:
    """uvicorn's ``--loop`` value for ``loop_id`` (a "module:factory" string for custom loops)."""
    return {
        "asyncio": "asyncio",
        "uvloop": "uvloop",
        "rloop": "rloop:new_event_loop",
        "pyloop": "pyloop:new_event_loop",
        "pyloop-asyncio-transport": "pyloop:new_event_loop",
    }[loop_id]


def server_env(loop_id: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(LOOPS[loop_id][1])
    if loop_id.startswith("pyloop"):
        env["PYLOOP_PHASE"] = PYLOOP_PHASE
    return env


#: Import name -> distribution name, where they differ (PyLoop's is ``pyloop-rs`` on PyPI).
DISTRIBUTIONS = {"pyloop": "pyloop-rs"}


def version(name: str) -> str:
    """The installed version of the package imported as ``name``."""
    try:
        return importlib.metadata.version(DISTRIBUTIONS.get(name, name))
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
