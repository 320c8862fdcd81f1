"""The ASGI app the wheel smoke test serves (tests/wheels/smoke.py).

Each GET answers with the serving process's id and the class of its running loop, so that the
test sees which loop served the request. When ``SMOKE_WORKERS_DIR`` is set, every worker
process writes ``<pid>.json`` there at startup (lifespan) and appends its shutdown, so that a
test of several workers knows that each one started on PyLoop and stopped cleanly.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path


def _loop_name() -> str:
    loop = asyncio.get_running_loop()
    return f"{type(loop).__module__}.{type(loop).__qualname__}"


def _record(event: str) -> None:
    folder = os.environ.get("SMOKE_WORKERS_DIR")
    if folder:
        with open(Path(folder) / f"{os.getpid()}.json", "a") as f:
            f.write(json.dumps({"event": event, "pid": os.getpid(), "loop": _loop_name()}) + "\n")


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _record("startup")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                _record("shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert scope["type"] == "http"
    await asyncio.sleep(0.001)  # a timer on the serving loop
    body = json.dumps({"pid": os.getpid(), "loop": _loop_name(), "path": scope["path"]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
