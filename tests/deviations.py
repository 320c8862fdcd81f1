"""Where PyLoop differs from stock asyncio 3.11 on purpose: the one list.

Each entry names the behaviour, what asyncio does, what PyLoop does, and why. Tests of
these behaviours assert asyncio's behaviour on stock asyncio and PyLoop's on PyLoop, and
cite the entry. The book's chapter "From a queue to an event loop" gives the same list.
"""

from __future__ import annotations

import asyncio
import sys

DEVIATIONS = {
    "non-callable callback": (
        "asyncio checks the callback of call_soon/call_soon_threadsafe/call_later/call_at "
        "only in debug mode, and otherwise fails when the callback runs",
        "PyLoop raises asyncio's debug-mode TypeError at once, debug or not",
        "a bad argument should fail where it is passed, and the check costs one type flag",
    ),
    "context that is not a Context": (
        "asyncio stores any object given as context= and calls its .run(callback, *args) "
        "when the callback runs: one without .run fails then (AttributeError, through the "
        "exception handler), one with a .run of its own works",
        "PyLoop raises TypeError at once: context must be a contextvars.Context",
        "a bad argument should fail where it is passed; the handle runs its callback in the "
        "context through the C API, which needs a real Context",
    ),
    "the loop's own descriptors": (
        "asyncio lets add_reader/add_writer take its own descriptors: on its self-pipe the "
        "reader replaces the loop's own, which then never drains the pipe, and the loop "
        "spins; on its epoll descriptor epoll refuses with OSError (EINVAL)",
        "PyLoop raises RuntimeError for its epoll set and eventfd, as asyncio does for a "
        "transport's descriptor",
        "the number can only be a caller's mistake (a descriptor closed meanwhile), and "
        "taking the eventfd would leave the loop spinning or deaf to other threads",
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
    "accept retry after the server closed": (
        "after accept fails with EMFILE, asyncio schedules _start_serving again a second "
        "later; if the server is closed in that second, the retry reports ValueError "
        "(descriptor -1) to the exception handler",
        "PyLoop drops the retry of a closed listening socket",
        "a closed server has nothing to serve; the report is asyncio's bookkeeping error",
    ),
    "writelines with multi-byte items (3.12+)": (
        "asyncio 3.12+ sends writelines' items with sendmsg, then counts what was sent with "
        "len() of each memoryview, which counts items, not bytes: with items of a 'i' cast, "
        "a 2-D view or an array('i') it pops more than it has and fails the connection with "
        "IndexError (its own bookkeeping error), after sending the bytes",
        "PyLoop sends the bytes and keeps the connection, as write() of the joined items does",
        "an error in the loop's own bookkeeping is not a behaviour to reproduce",
    ),
    "writelines on a closed transport (3.12+)": (
        "asyncio 3.12+ raises TypeError ('NoneType' object is not callable: close() set its "
        "write callback to None) or AttributeError (the socket is gone) from writelines after "
        "close(), abort() or connection_lost, and RuntimeError on a closed loop with data "
        "still buffered (its writelines tries to send and watch again, where write() only "
        "appends)",
        "PyLoop drops the data and counts the write, as write() does in that state (asyncio "
        "3.11 too, whose writelines is a write of the joined items)",
        "the errors are asyncio's internal state leaking out, not a contract",
    ),
    "write keeps a copy (3.12+)": (
        "asyncio 3.12+ keeps a view of the caller's buffer for what the kernel did not take, "
        "so resizing a bytearray right after write() raises BufferError, and changing its "
        "bytes changes what is sent",
        "PyLoop copies what it keeps (as asyncio 3.11 does): the caller's buffer is free at "
        "once, and what is sent is what was written",
        "the copy is what makes write() safe against later changes to the caller's buffer",
    ),
    "a socket with a timeout in sock_*": (
        "outside debug mode, asyncio's sock_recv/sock_recv_into on a socket with a timeout "
        "(settimeout(t)) make the socket's own blocking call: the whole loop stops for up to "
        "t seconds, and the call raises TimeoutError('timed out') if nothing came",
        "PyLoop treats it as it treats a blocking socket: it asks the kernel not to block "
        "(MSG_DONTWAIT) and waits for the descriptor, so other tasks run and the socket's "
        "timeout is not applied (asyncio.timeout or wait_for bound the call)",
        "asyncio requires non-blocking sockets here (debug mode raises ValueError on both); "
        "a loop that sleeps inside a system call with the GIL held stalls every task",
    ),
    "a socket closed under a pending sock_* call": (
        "asyncio keeps the selector key of the closed descriptor: a new socket given the same "
        "number and waited on with sock_recv or add_reader only updates the key's dictionary "
        "entry, with no epoll_ctl, so it is never reported; a connection made on that number "
        "fails (its sock_connect modifies a registration epoll dropped: ENOENT); the old call "
        "stays pending",
        "PyLoop reads the descriptor from the socket before any use: the new socket's waits "
        "work, and the old call fails with OSError(EBADF) when the number is next ready or a "
        "reader takes it over; a sock_* call on the new socket that finds a reader or writer "
        "left registered for the old one takes asyncio's path and meets what asyncio meets "
        "there (FileNotFoundError), and the stale key is dropped",
        "a descriptor number belongs to whoever holds it now; a call on a closed socket has "
        "nothing left to wait for",
    ),
    "callbacks from other threads run as a batch": (
        "asyncio has one ready queue: a callback runs in the order it was registered, "
        "whichever thread registered it, and a turn runs what was ready when it began",
        "PyLoop keeps the loop thread's callbacks in its own lane and other threads' in the "
        "phase's queue; a turn runs the lane, then a batch of at most 128 from the queue, "
        "including what other threads sent during the turn. So a call_soon_threadsafe made "
        "after a call_soon of the same turn can run first, callbacks sent during a turn that "
        "calls stop() run before run_forever returns, and a call_soon made by the first of "
        "200 sent callbacks runs after 128 of them",
        "the lane is what lets the loop thread schedule without an atomic operation, and the "
        "batch limit is phase 3.1.1's bound on a turn; a single queue would put the phases' "
        "cross-thread cost on every call_soon",
    ),
    "native transports read in the I/O step": (
        "asyncio queues a ready descriptor's reader or writer callback behind the callbacks "
        "already ready, and warns in debug mode about a slow one",
        "PyLoop's native TCP transport reads (data_received) and flushes when the wait "
        "reports the descriptor, before the callbacks already ready in that turn; a slow "
        "data_received is not reported in debug mode. A sock_* call's recv or send is made "
        "there too only when nothing asyncio would run first is waiting (no callback queued, "
        "no reader or writer of asyncio's selector reported before it or with it); otherwise "
        "its coroutine makes the call when it resumes, so a call cancelled meanwhile makes none",
        "a queued handle per readiness is what the native transport saves; a callback that "
        "must act before data arrives can pause reading itself",
    ),
    "a reader or writer in the direction of a pending sock_* call": (
        "asyncio lets add_reader take a descriptor that a pending sock_recv, sock_recv_into "
        "or sock_accept waits on, and add_writer one that a pending sock_sendall or "
        "sock_connect waits on: the new reader or writer silently replaces the call's, which "
        "then waits for ever",
        "PyLoop raises RuntimeError naming the direction; a reader or writer in the other "
        "direction shares the descriptor with the call, as on asyncio",
        "the loop makes a pending call's system call itself; a reader that silently took "
        "its place would leave the call pending for ever",
    ),
    "the transport's own descriptor": (
        "asyncio's transport uses the socket's descriptor: closing the socket object "
        "closes the connection (and a number reused meanwhile gets the transport's writes)",
        "PyLoop's native transport works on its own duplicate: closing the socket object "
        "leaves the connection open until the transport is closed, and each connection "
        "takes two descriptors (one with no descriptor left for the duplicate gets "
        "asyncio's transport instead)",
        "no descriptor number is ever used after its socket is closed (the book's open "
        "items: owning the socket's own descriptor would keep that without the second one)",
    ),
    "a pending call_soon handle held elsewhere": (
        "asyncio's handles are tracked by the collector: a loop dropped without close(), "
        "whose pending call_soon handle is also held by an object its callback leads to, "
        "is collected",
        "PyLoop's pending Handle is off the collector's list (its TimerHandle is on it, "
        "and so is a Handle that ran or was cancelled while someone holds it): that cycle "
        "is collected only once the loop is closed or the handle runs or is cancelled",
        "tracking every pending call_soon handle would have the collector walk every one; "
        "the cycle needs an unclosed loop abandoned with a stored handle that never ran "
        "(tests/test_memory.py marks it)",
    ),
    "a handle lets go of its call once it has run": (
        "asyncio's Handle keeps its callback and arguments after they ran (until the handle "
        "is freed or cancelled): _callback and _args still answer, repr() still names the "
        "callback, and two TimerHandles that ran with equal deadlines, callbacks and "
        "arguments compare equal",
        "PyLoop's handle drops them as the callback runs: _callback and _args are None, "
        "repr() says 'done', and a TimerHandle that ran equals only itself",
        "a handle kept after its run (by a task, a timeout, a user) would otherwise keep its "
        "callback and arguments alive, and with them whatever they refer to",
    ),
    "no handle_traceback in debug mode": (
        "in debug mode, asyncio's default exception handler adds 'Handle created at' (the "
        "creation stack of the handle running at the time) to an error reported while a "
        "callback runs",
        "PyLoop's handles record their creation stack in debug mode (source_traceback) but "
        "the loop keeps no current handle, so the handler has no handle_traceback to add",
        "keeping the running handle would cost every callback a store and a reference; the "
        "handle's own source_traceback still reaches the handler for its own errors",
    ),
    "transport details kept from construction": (
        "asyncio's resume_reading() re-adds the reader with a new handle, so data_received "
        "then runs in a copy of the context of whoever resumed, and a transport whose "
        "eof_received returned True calls it again after pause_reading/resume_reading; "
        "the writer a write() that could not finish registers runs resume_writing, and the "
        "connection_lost that ends a close()'s flush, in a copy of the writing code's context; "
        "set_write_buffer_limits accepts floats and ints beyond 64 bits (a default high mark "
        "of 4 * low included)",
        "PyLoop's data_received, resume_writing and the connection_lost after a flush run in "
        "the context the transport was made in, eof_received is called once, and the limits "
        "are integers that fit 64 bits (TypeError, OverflowError otherwise)",
        "these follow from asyncio's implementation (a handle per registration, Python "
        "numbers), not from a documented contract",
    ),
    "an eof_received answer that is not a bool": (
        "when the object eof_received returns raises in __bool__, asyncio reports the "
        "error and leaves its reader registered: the error is reported again on every turn "
        "and the transport stays open",
        "PyLoop reports a fatal protocol error once and closes the transport "
        "(connection_lost gets the exception), as it does when eof_received raises",
        "asyncio's behaviour is a busy loop, not a contract",
    ),
    "a loop in another thread at interpreter exit": (
        "asyncio's loop in a daemon thread runs on during the atexit handlers until the "
        "interpreter finalizes and ends the thread",
        "once pyloop's atexit hook has run, such a loop stops at its next turn and waits; "
        "work sent from the exiting thread (a later atexit handler) wakes it and it runs on",
        "the interpreter ends a thread with pthread_exit, which under the loop's Rust frames "
        "aborted or crashed the process (exit_park.rs)",
    ),
    "shutdown_default_executor(timeout=) on 3.11": (
        "asyncio 3.11's shutdown_default_executor takes no argument (TypeError)",
        "PyLoop takes 3.12's timeout= on every version",
        "one signature on every supported version; a 3.11 program cannot tell, as it does "
        "not pass the argument",
    ),
}

#: CPython 3.12 replaced the socket transport's writelines and write buffer (the three
#: entries above marked 3.12+).
TRANSPORT_312 = sys.version_info >= (3, 12)


def is_pyloop(loop: asyncio.AbstractEventLoop) -> bool:
    """True for PyLoop's loops (whose I/O loop class derives from asyncio's selector loop, so
    ``isinstance`` cannot tell them apart)."""
    return type(loop).__module__.startswith("pyloop")


def validates_eagerly(loop: asyncio.AbstractEventLoop) -> bool:
    """True for loops that follow the 'non-callable callback' and 'NaN time' entries."""
    return type(loop).__module__.startswith("pyloop")
