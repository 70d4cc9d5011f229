"""AUTO's background work and the end of the process: a process that is done exits promptly.

AUTO compiles and times candidates on background threads while CPU serves. When the interpreter
begins to shut down (a hook registered with ``threading``'s own exit hooks, which run before
Python waits for the non-daemon threads), :func:`ending` turns true: no candidate compile or
first inference starts after that, running measurement rounds stop, and the work ends with
:class:`Cancelled`, quietly (nothing printed, nothing remembered: a later start measures again).

A compile or first inference already running in a plugin's C code cannot be interrupted, so the
exit waits for that one step (not for the candidates after it). The threads are not daemon
threads, because a daemon thread still inside a driver at exit can abort the process: OpenVINO's
compile in a daemon thread at exit ends the process with ``terminate called without an active
exception`` (SIGABRT), found on this project's machine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_ending = threading.Event()
_hooked = False
_hook_lock = threading.Lock()


class Cancelled(Exception):
    """The process began to end while AUTO measured: the work stops without a result."""


def ending() -> bool:
    """True once the interpreter has begun to shut down (AUTO's hook has run)."""
    return _ending.is_set()


def check() -> None:
    """Raise :class:`Cancelled` if the process has begun to end."""
    if _ending.is_set():
        raise Cancelled


def start(work: Callable[..., None], *args: Any, name: str) -> threading.Thread:
    """Start ``work(*args)`` on a background (non-daemon) thread that stops at shutdown;
    :class:`Cancelled` if shutdown has already begun."""
    _hook()
    check()
    thread = threading.Thread(target=work, args=args, name=name)
    thread.start()
    return thread


def _hook() -> None:
    global _hooked
    with _hook_lock:
        if _hooked:
            return
        # threading's hooks run before the non-daemon threads are joined; atexit's only after
        register = getattr(threading, "_register_atexit", None)
        try:
            if register is not None:
                register(_ending.set)
            else:  # another Python: at least the work not yet started is skipped
                import atexit

                atexit.register(_ending.set)
        except RuntimeError:  # "can't register atexit after shutdown": it has begun
            _ending.set()
        _hooked = True
