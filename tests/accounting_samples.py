"""Tests that leave things behind on purpose, for tests/test_accounting.py, which runs this
file in a child pytest and checks that the accounting fixture fails each of them (and only
them). Not collected by the suite itself: the name does not start with ``test_``."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import pytest

KEPT: list = []


def test_clean():
    loop = asyncio.SelectorEventLoop()
    loop.close()


def test_leaks_an_fd():
    KEPT.append(os.open(os.devnull, os.O_RDONLY))


def test_leaks_a_thread():
    stop = threading.Event()
    KEPT.append(stop)
    threading.Thread(target=stop.wait, args=(8,), name="leaked-thread", daemon=True).start()


def test_leaks_a_closed_loop():
    loop = asyncio.SelectorEventLoop()
    loop.close()
    KEPT.append(loop)


def test_leaks_an_open_loop_in_a_cycle_that_gc_frees():
    loop = asyncio.SelectorEventLoop()
    loop.call_later(3600, loop.stop)  # a cycle; asyncio's __del__ closes it: nothing left


class PanicException(BaseException):
    """Stands for pyo3's: same module and name, which is what the accounting looks for."""


PanicException.__module__ = "pyo3_runtime"


def test_a_panic_passed_to_an_exception_handler(loop, exc_handler):
    def raises():
        raise PanicException("simulated")

    try:
        raises()
    except PanicException as exc:
        exc_handler(loop, {"message": "simulated", "exception": exc})
    exc_handler.take()


def test_a_rust_panic_message_on_stderr():
    print("\nthread '<unnamed>' panicked at src/lib.rs:1:1:\nsimulated", file=sys.stderr)


@pytest.mark.keeps("fds", reason="checks that the allow-list works")
def test_allowed_to_keep_an_fd():
    KEPT.append(os.open(os.devnull, os.O_RDONLY))
