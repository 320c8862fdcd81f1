"""Every CPython test that tests/cpython skips, and why: the one list (no skip elsewhere).

Keys are ``<CPython module>.<class that defines the test>.<method>``, CPython's own names.
An entry's scope is ``"pyloop-no-io"`` (the pyloop phases that cannot do I/O: add_reader
raises NotImplementedError, see ``tests.loops.LoopSpec.has_io``), ``"pyloop-io"`` (the ones
that can), ``"pyloop"`` (every pyloop phase) or ``"all"`` (every loop, stock asyncio
included). ``tests/cpython/test_skips.py`` checks that every key names a test that exists and
is run by some module here, so the list cannot rot.

Today:
- everything that needs sockets, subprocesses, pipes, signals, readers or writers is skipped
  on the pyloop phases without I/O: 'needs I/O (issue 4)'. These tests run on stock asyncio
  and on every phase that does I/O.
- tests that read stock asyncio's private attributes (``_run_once``, ``_clock_resolution``,
  ``_selector``): skipped on pyloop, which has no such attributes by design.
- nothing fails on stock asyncio on this machine with CPython 3.11.7 (Linux, 2 cores). On
  3.12 one test does, for a reason of the harness (its entry says which); entries whose
  ``since`` names a version apply from that version on only (their tests do not exist
  before).
"""

from __future__ import annotations

import dataclasses
import sys

NEEDS_IO = "needs I/O (issue 4)"
PRIVATE = "reads stock asyncio's private attributes; pyloop has no such internals"


@dataclasses.dataclass(frozen=True)
class Skip:
    scope: str  # "pyloop-no-io", "pyloop-io", "pyloop" or "all"
    reason: str
    #: The CPython versions whose test.test_asyncio has this test and needs the skip
    #: (``(3, 12)``: 3.12 and later); None for every version.
    since: tuple[int, int] | None = None

    def active(self) -> bool:
        return self.since is None or sys.version_info[:2] >= self.since


def _io(what: str, prefix: str, names: list[str]) -> dict[str, Skip]:
    return {prefix + name: Skip("pyloop-no-io", f"{NEEDS_IO}: {what}") for name in names}


_EVENTS = "test_events.EventLoopTestsMixin."
_SUBPROCESS = "test_events.SubprocessTestsMixin."

SKIPS: dict[str, Skip] = {
    **_io(
        "readers/writers",
        _EVENTS,
        [
            "test_add_fds_after_closing",
            "test_reader_callback",
            "test_remove_fds_after_closing",
            "test_writer_callback",
        ],
    ),
    **_io(
        "signals",
        _EVENTS,
        [
            "test_add_signal_handler",
            # test_close: asserts add_signal_handler() on a closed loop raises RuntimeError
            "test_close",
            "test_signal_handling_args",
            "test_signal_handling_while_selecting",
        ],
    ),
    **_io(
        "pipes",
        _EVENTS,
        [
            "test_bidirectional_pty",
            "test_read_pipe",
            "test_read_pty_output",
            "test_unclosed_pipe_transport",
            "test_write_pipe",
            "test_write_pipe_disconnect_on_close",
            "test_write_pty",
        ],
    ),
    **_io(
        "sockets",
        _EVENTS,
        [
            "test_connect_accepted_socket",
            "test_connect_accepted_socket_ssl_timeout_for_plain_socket",
            "test_create_connection",
            "test_create_connection_local_addr",
            "test_create_connection_local_addr_in_use",
            "test_create_connection_local_addr_nomatch_family",
            "test_create_connection_local_addr_skip_different_family",
            "test_create_datagram_endpoint",
            "test_create_datagram_endpoint_ipv6",
            "test_create_datagram_endpoint_sock",
            "test_create_server",
            "test_create_server_addr_in_use",
            "test_create_server_dual_stack",
            "test_create_server_multiple_hosts_ipv4",
            "test_create_server_multiple_hosts_ipv6",
            "test_create_server_reuse_port",
            "test_create_server_sock",
            "test_create_server_ssl",
            "test_create_server_ssl_match_failed",
            "test_create_server_ssl_verified",
            "test_create_server_ssl_verify_failed",
            "test_create_ssl_connection",
            "test_create_ssl_unix_connection",
            "test_create_unix_connection",
            "test_create_unix_server",
            "test_create_unix_server_path_socket_error",
            "test_create_unix_server_ssl",
            "test_create_unix_server_ssl_verified",
            "test_create_unix_server_ssl_verify_failed",
            "test_prompt_cancellation",
            "test_server_close",
            "test_ssl_connect_accepted_socket",
        ],
    ),
    **_io(
        "subprocesses",
        _SUBPROCESS,
        [
            "test_subprocess_close_after_finish",
            "test_subprocess_close_client_stream",
            "test_subprocess_exec",
            "test_subprocess_exec_invalid_args",
            "test_subprocess_exitcode",
            "test_subprocess_interactive",
            "test_subprocess_kill",
            "test_subprocess_send_signal",
            "test_subprocess_shell",
            "test_subprocess_shell_invalid_args",
            "test_subprocess_stderr",
            "test_subprocess_stderr_redirect_to_stdout",
            "test_subprocess_terminate",
            "test_subprocess_wait_no_same_group",
        ],
    ),
    _EVENTS + "test_timeout_rounding": Skip(
        "pyloop", PRIVATE + " (_run_once, _clock_resolution, _selector)"
    ),
    # --- CPython 3.12+ only ---------------------------------------------------------------
    _EVENTS + "test_create_server_trsock": Skip(
        "pyloop-no-io", f"{NEEDS_IO}: sockets (a test added in CPython 3.12)", since=(3, 12)
    ),
    _EVENTS + "test_datagram_send_to_non_listening_address": Skip(
        "pyloop-no-io", f"{NEEDS_IO}: sockets (a test added in CPython 3.13)", since=(3, 13)
    ),
    # It asserts that policy.get_event_loop() raises in the main thread, which holds only once
    # some earlier test's tearDown has called set_event_loop(None) on that same policy (the
    # state CPython's own runner happens to leave). The harness gives each test a fresh
    # policy (harness.PolicyDuringTest), so stock asyncio fails it too.
    "test_subprocess.GenericWatcherTests.test_create_subprocess_with_pidfd": Skip(
        "all",
        "depends on the event-loop policy state left by an earlier CPython test; "
        "the harness gives each test a fresh policy (fails on stock asyncio too)",
        since=(3, 12),
    ),
}

#: The entries that apply to the running interpreter.
ACTIVE: dict[str, Skip] = {key: entry for key, entry in SKIPS.items() if entry.active()}


def applies(entry: Skip, spec) -> bool:
    """Whether ``entry`` skips the test on the loop ``spec`` (a tests.loops.LoopSpec)."""
    if not entry.active():
        return False
    if entry.scope == "pyloop-no-io":
        return spec.is_pyloop and not spec.has_io
    if entry.scope == "pyloop-io":
        return spec.is_pyloop and spec.has_io
    return entry.scope == "all" or (entry.scope == "pyloop" and spec.is_pyloop)
