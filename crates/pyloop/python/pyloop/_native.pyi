"""Type stub of PyLoop's native module (checked by mypy.stubtest)."""

import contextvars
from collections.abc import Callable
from typing import Any, final

from typing_extensions import disjoint_base

__all__ = [
    "AdaptiveSleepLoop",
    "BUILD_DEFAULT_PHASE",
    "BatchLimitLoop",
    "CondvarWakeLoop",
    "Handle",
    "SwapBufferLoop",
    "TimerHandle",
    "TwoPhaseLoop",
    "phase_titles",
    "phases",
]

BUILD_DEFAULT_PHASE: str

def phases() -> list[str]: ...
def phase_titles() -> list[tuple[str, str]]: ...

@disjoint_base
class Handle:
    def cancel(self) -> None: ...
    def cancelled(self) -> bool: ...
    def get_context(self) -> contextvars.Context: ...

@final
class TimerHandle(Handle):
    def when(self) -> float: ...

class _NativeLoop:
    phase: str
    def __new__(cls, *_args: Any, **_kwargs: Any) -> _NativeLoop: ...
    def call_soon(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> Handle: ...
    def call_soon_threadsafe(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> Handle: ...
    def call_later(
        self,
        delay: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> TimerHandle: ...
    def call_at(
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> TimerHandle: ...
    def time(self) -> float: ...
    def stop(self) -> None: ...
    def is_running(self) -> bool: ...
    def is_closed(self) -> bool: ...
    def get_debug(self) -> bool: ...
    def _set_debug_native(self, enabled: bool) -> None: ...
    def _run_forever_native(self) -> None: ...
    def _close_native(self) -> None: ...
    def _queue_stats(self) -> dict[str, Any]: ...

@disjoint_base
class BatchLimitLoop(_NativeLoop): ...

@disjoint_base
class AdaptiveSleepLoop(_NativeLoop): ...

@disjoint_base
class CondvarWakeLoop(_NativeLoop): ...

@disjoint_base
class TwoPhaseLoop(_NativeLoop): ...

@disjoint_base
class SwapBufferLoop(_NativeLoop): ...
