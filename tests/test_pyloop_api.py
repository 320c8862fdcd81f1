"""pyloop's own API (pyloop params only): phases(), DEFAULT_PHASE, new_event_loop(phase=),
PYLOOP_PHASE, EventLoopPolicy, install(), run(), __version__.

A loop's phase is identified through the public API only: each phase has its own loop class,
so ``type(loop) is type(pyloop.new_event_loop(phase=tag))``."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.loops import PYLOOP_ERROR, pyloop

# Deselected by --loops when no pyloop phase is selected (see conftest.py).
pytestmark = pytest.mark.pyloop_only


@pytest.fixture
def api():
    if pyloop is None:
        pytest.fail(PYLOOP_ERROR, pytrace=False)
    return pyloop


def _type_of(phase):
    lp = pyloop.new_event_loop(phase=phase)
    lp.close()
    return type(lp)


@pytest.fixture
def restore_policy():
    yield
    asyncio.set_event_loop_policy(None)


def test_phases_oldest_first(api):
    tags = api.phases()
    assert isinstance(tags, list) and tags
    assert all(isinstance(t, str) for t in tags)
    assert len(set(tags)) == len(tags)
    assert tags == sorted(tags, key=lambda t: tuple(int(p) for p in t.split(".")))
    assert api.phases() == tags  # stable across calls


def test_default_phase_is_a_phase(api):
    assert api.DEFAULT_PHASE in api.phases()


def test_each_phase_has_its_own_loop_class(api):
    types = [_type_of(t) for t in api.phases()]
    assert len(set(types)) == len(types)
    for t in types:
        assert issubclass(t, asyncio.AbstractEventLoop)


def test_new_event_loop(pyloop_spec):
    lp = pyloop.new_event_loop(phase=pyloop_spec.phase)
    try:
        assert isinstance(lp, asyncio.AbstractEventLoop)
        assert not lp.is_running() and not lp.is_closed()
        assert type(lp) is _type_of(pyloop_spec.phase)
        other = pyloop.new_event_loop(pyloop_spec.phase)  # positional works too
        assert other is not lp and type(other) is type(lp)
        other.close()
    finally:
        lp.close()


def test_new_event_loop_default_phase(api, monkeypatch):
    monkeypatch.delenv("PYLOOP_PHASE", raising=False)
    lp = api.new_event_loop()
    lp.close()
    assert type(lp) is _type_of(api.DEFAULT_PHASE)


@pytest.mark.parametrize("bad", ["9.9.9", "", "3.1", "latest"])
def test_unknown_phase_raises_valueerror_listing_tags(api, bad):
    with pytest.raises(ValueError) as info:
        api.new_event_loop(phase=bad)
    for tag in api.phases():
        assert tag in str(info.value)


def _in_subprocess(code: str, phase_env: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("PYLOOP_PHASE", None)
    if phase_env is not None:
        env["PYLOOP_PHASE"] = phase_env
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


def test_pyloop_phase_env_overrides_the_default(pyloop_spec):
    code = (
        "import pyloop\n"
        "lp = pyloop.new_event_loop(); lp.close()\n"
        f"ref = pyloop.new_event_loop(phase={pyloop_spec.phase!r}); ref.close()\n"
        "print(pyloop.DEFAULT_PHASE, type(lp) is type(ref))\n"
    )
    proc = _in_subprocess(code, pyloop_spec.phase)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [pyloop_spec.phase, "True"]


def test_pyloop_phase_env_read_when_the_loop_is_made(pyloop_spec, monkeypatch):
    monkeypatch.setenv("PYLOOP_PHASE", pyloop_spec.phase)
    lp = pyloop.new_event_loop()
    lp.close()
    assert type(lp) is _type_of(pyloop_spec.phase)


def test_unknown_pyloop_phase_env_is_an_error(api):
    """A bad PYLOOP_PHASE is reported (ValueError naming the valid tags) no later than the
    first loop made without an explicit phase; never silently replaced by the default."""
    code = "import pyloop\nlp = pyloop.new_event_loop()\nlp.close()\nprint('made a loop')\n"
    proc = _in_subprocess(code, "no-such-phase")
    assert proc.returncode != 0
    assert "made a loop" not in proc.stdout
    assert "ValueError" in proc.stderr
    assert "PYLOOP_PHASE='no-such-phase'" in proc.stderr  # the variable is named
    assert all(tag in proc.stderr for tag in api.phases())


def test_version_is_the_cargo_version(api):
    """One version source: the workspace's Cargo.toml, copied by maturin into the
    distribution's metadata, which ``pyloop.__version__`` reports."""
    cargo = Path(__file__).resolve().parents[1] / "Cargo.toml"
    want = tomllib.loads(cargo.read_text())["workspace"]["package"]["version"]
    assert api.__version__ == want
    assert importlib.metadata.version("pyloop-rs") == want


def test_event_loop_policy(api, restore_policy):
    policy = api.EventLoopPolicy()
    assert isinstance(policy, asyncio.AbstractEventLoopPolicy)
    lp = policy.new_event_loop()
    try:
        assert type(lp) is _type_of(api.DEFAULT_PHASE)
    finally:
        lp.close()


def test_install(api, restore_policy):
    api.install()
    assert isinstance(asyncio.get_event_loop_policy(), api.EventLoopPolicy)
    lp = asyncio.new_event_loop()
    lp.close()
    assert type(lp) is _type_of(api.DEFAULT_PHASE)

    async def main():
        return type(asyncio.get_running_loop())

    assert asyncio.run(main()) is _type_of(api.DEFAULT_PHASE)


def test_run(pyloop_spec):
    seen = []

    async def main(x):
        lp = asyncio.get_running_loop()
        seen.append(lp)
        await asyncio.sleep(0.001)
        return x, type(lp), lp.get_debug()

    result = pyloop.run(main(1), phase=pyloop_spec.phase, debug=True)
    assert result == (1, _type_of(pyloop_spec.phase), True)
    assert seen[0].is_closed()
    assert pyloop.run(main(2), phase=pyloop_spec.phase, debug=False)[2] is False


def test_run_default_phase_and_exception(api):
    async def main():
        raise LookupError("from main")

    with pytest.raises(LookupError, match="from main"):
        api.run(main())

    async def which():
        return type(asyncio.get_running_loop())

    assert api.run(which()) is _type_of(api.DEFAULT_PHASE)


def test_run_rejects_unknown_phase(api):
    async def main():
        pass

    coro = main()
    try:
        with pytest.raises(ValueError):
            api.run(coro, phase="0.0.0")
    finally:
        coro.close()


NATIVE_METHODS = ["call_soon", "call_soon_threadsafe", "call_later", "call_at", "create_future"]


@pytest.mark.parametrize("method", NATIVE_METHODS)
def test_native_methods_refuse_an_object_of_another_class(pyloop_spec, method):
    """The scheduling methods and the transport's ``write`` are C functions that read the
    object they are called on as their own loop (or transport) state. Called through the
    class on anything else (another phase's loop, asyncio's loop, a plain object) they must
    raise ``TypeError``, never read another layout."""
    lp = pyloop_spec.new_loop()
    other_phase = next(p for p in pyloop.phases() if p != pyloop_spec.phase)
    others = [pyloop.new_event_loop(other_phase), asyncio.new_event_loop()]
    try:
        # The native class's descriptor, and the loop class's own copy of it (made by
        # own_native_methods so that CPython's call specialisation applies).
        owners = [k for k in type(lp).__mro__ if method in vars(k)][:2]
        assert [k.__module__ for k in owners] == ["pyloop", "pyloop._native"], owners
        args = {"call_later": (0, print), "call_at": (0, print), "create_future": ()}
        for owner in owners:
            for stranger in [*others, object()]:
                with pytest.raises(TypeError):
                    getattr(owner, method)(stranger, *args.get(method, (print,)))
        with pytest.raises(TypeError):
            pyloop._native.TcpTransportCore.write(lp, b"data")
    finally:
        for loop in [lp, *others]:
            loop.close()


def test_own_native_methods_refuses_a_class_not_derived_from_the_native_one(api):
    native = next(k for k in type(api.new_event_loop()).__mro__ if k.__module__ == "pyloop._native")

    class Unrelated:
        pass

    with pytest.raises(TypeError):
        api._native.own_native_methods(Unrelated, native)
    assert "call_soon" not in vars(Unrelated)


def test_own_native_methods_refuses_every_native_class_but_a_loop_class(api):
    """``own_native_methods`` copies C method descriptors onto a subclass. A C method of
    another type may read its defining class (``METH_METHOD``), which the copy changes: on
    ``array.array`` (3.11) and ``asyncio.Future`` (3.12+) the copies crashed the interpreter
    when called (review of stop 21). Only pyloop's loop classes are accepted; anything else
    is a ``TypeError`` before any descriptor is made. Run in a child process, so that a
    regression shows as a failed test, not a crashed test run."""
    script = r"""
import array, asyncio, pyloop

class Array(array.array):
    pass

class Future(asyncio.Future):
    pass

for cls, native in ((Array, array.array), (Future, asyncio.Future), (Future, object)):
    try:
        pyloop._native.own_native_methods(cls, native)
    except TypeError:
        pass
    else:
        raise SystemExit(f"accepted {native.__name__}")
for args in ((1, 2), (Array, "array")):
    try:
        pyloop._native.own_native_methods(*args)
    except TypeError:
        pass
    else:
        raise SystemExit(f"accepted {args!r}")
assert Array("b", b"ab").__reduce_ex__(2)
loop = asyncio.new_event_loop()
Future(loop=loop).add_done_callback(print)
loop.close()
print("refused")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout.strip()) == (0, "refused"), done.stderr[-2000:]
