"""A gunicorn worker class that serves an ASGI app through uvicorn on PyLoop.

gunicorn starts and supervises the worker processes; each one runs uvicorn on a PyLoop loop
made by ``pyloop.new_event_loop`` (phase ``PYLOOP_PHASE``, else the build's default)::

    gunicorn app:app --workers 2 --worker-class pyloop.uvicorn_worker.UvicornWorker

It is the ``uvicorn-worker`` package's worker (the one uvicorn points to since it deprecated its
own ``uvicorn.workers``) with uvicorn's ``loop`` setting, a ``module:factory`` string since
uvicorn 0.36, set to PyLoop. Needs ``gunicorn`` and ``uvicorn-worker``
(``pip install "pyloop-rs[gunicorn]"``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import uvicorn_worker

__all__ = ["UvicornH11Worker", "UvicornWorker"]

#: uvicorn's ``--loop`` value that makes PyLoop loops.
LOOP = "pyloop:new_event_loop"


class UvicornWorker(uvicorn_worker.UvicornWorker):
    """uvicorn's gunicorn worker on PyLoop (HTTP parser: httptools if installed, else h11)."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        **uvicorn_worker.UvicornWorker.CONFIG_KWARGS,
        "loop": LOOP,
    }


class UvicornH11Worker(UvicornWorker):
    """The same with uvicorn's pure-Python HTTP parser, h11."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {**UvicornWorker.CONFIG_KWARGS, "http": "h11"}
