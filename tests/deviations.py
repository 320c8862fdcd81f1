"""Where PyLoop differs from stock asyncio 3.11 on purpose: the one list.

Each entry names the behaviour, what asyncio does, what PyLoop does, and why. Tests of
these behaviours assert asyncio's behaviour on stock asyncio and PyLoop's on PyLoop, and
cite the entry. The book's chapter "From a queue to an event loop" gives the same list.
"""

from __future__ import annotations

import asyncio

DEVIATIONS = {
    "non-callable callback": (
        "asyncio checks the callback of call_soon/call_soon_threadsafe/call_later/call_at "
        "only in debug mode, and otherwise fails when the callback runs",
        "PyLoop raises asyncio's debug-mode TypeError at once, debug or not",
        "a bad argument should fail where it is passed, and the check costs one type flag",
    ),
    "NaN time": (
        "asyncio 3.11 accepts call_later(nan)/call_at(nan); the timer fires at whatever "
        "point heap comparisons with NaN happen to put it",
        "PyLoop raises ValueError",
        "a NaN deadline has no meaning, and it would corrupt the heap's ordering",
    ),
    "handle classes": (
        "asyncio's handles are asyncio.Handle/TimerHandle",
        "PyLoop's are pyloop.Handle/TimerHandle, with the same methods (as uvloop's, which "
        "are not asyncio's classes either); its TCP transport is an asyncio.Transport",
        "a native class cannot derive from asyncio's Python classes, and a handle wrapped "
        "in a Python subclass would cost every call_soon a Python object",
    ),
}


def validates_eagerly(loop: asyncio.AbstractEventLoop) -> bool:
    """True for loops that follow the 'non-callable callback' and 'NaN time' entries."""
    return type(loop).__module__.startswith("pyloop")
