"""Async generators: the loop installs sys asyncgen hooks while it runs, finalises abandoned
generators with aclose(), and shutdown_asyncgens() closes the ones still alive."""

from __future__ import annotations

import asyncio
import gc
import sys
import warnings

import pytest

from tests.support import run_bounded


def test_hooks_installed_while_running_and_restored(loop):
    before = sys.get_asyncgen_hooks()
    seen = []

    async def main():
        seen.append(sys.get_asyncgen_hooks())

    run_bounded(loop, main())
    assert seen[0].firstiter is not None and seen[0].finalizer is not None
    assert sys.get_asyncgen_hooks() == before


def test_abandoned_generator_is_finalised_on_the_loop(loop):
    closed = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            closed.append(asyncio.get_running_loop())

    async def main():
        gen = agen()
        assert await gen.__anext__() == 1
        del gen
        gc.collect()
        for _ in range(10):
            await asyncio.sleep(0)
            if closed:
                break

    run_bounded(loop, main())
    assert closed == [loop]


def test_shutdown_asyncgens_closes_live_generators(loop):
    closed = []

    async def agen(name):
        try:
            yield name
            await asyncio.sleep(100)
        finally:
            closed.append(name)

    gens = []

    async def start():
        for name in "abc":
            gen = agen(name)
            assert await gen.__anext__() == name
            gens.append(gen)

    run_bounded(loop, start())
    assert closed == []
    run_bounded(loop, loop.shutdown_asyncgens())
    assert sorted(closed) == ["a", "b", "c"]


def test_shutdown_asyncgens_reports_errors(loop, exc_handler):
    async def agen():
        try:
            yield 1
        finally:
            raise ValueError("in aclose")

    gens = []

    async def start():
        gen = agen()
        await gen.__anext__()
        gens.append(gen)

    run_bounded(loop, start())
    run_bounded(loop, loop.shutdown_asyncgens())
    (ctx,) = exc_handler.take()
    assert isinstance(ctx["exception"], ValueError)
    assert ctx["asyncgen"] is gens[0]
    assert "shutdown_asyncgens" in ctx["message"]


def test_generator_first_iterated_after_shutdown_warns(loop):
    async def agen():
        yield 1

    run_bounded(loop, loop.shutdown_asyncgens())

    async def late():
        gen = agen()
        with pytest.warns(ResourceWarning, match="after loop.shutdown_asyncgens"):
            await gen.__anext__()
        await gen.aclose()

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        run_bounded(loop, late())
