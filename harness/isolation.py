"""Run a function in a fresh ``spawn`` process and get plain data back, whatever happens.

The launcher of the runner: the child inherits a chosen environment (thread
settings must be in place before numpy or a framework loads), writes its
output to a log file, ignores Ctrl-C (the parent decides when a run stops), and
sends back ``{"status": "ok", "result": ...}``. A raise, a crash (segfault,
abort), a kill for memory or a hang past the timeout comes back as
``{"status": "failed"|"timeout", "reason": ...}``.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Set in every child: keep framework start-up chatter down.
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "TQDM_DISABLE": "1", "KERAS_BACKEND": "tensorflow"}


def quiet_frameworks() -> None:
    """Keep framework start-up chatter out of this process (unless the user set otherwise)."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)


def in_child(
    fn: Callable[..., Any],
    args: tuple,
    timeout_s: float,
    env: dict[str, str],
    log_path: Path,
) -> dict[str, Any]:
    """Run ``fn(*args)`` in a fresh spawned process; never raises for the child's faults.

    Returns ``{"status": "ok", "result": ...}`` or ``{"status": "failed"|"timeout",
    "reason": ...}``. KeyboardInterrupt ends the child and propagates.
    """
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    with _environment(env):
        process = ctx.Process(target=_child_main, args=(send, fn, args, str(log_path)))
        process.start()
    send.close()
    try:
        if not receive.poll(timeout_s):
            return {"status": "timeout", "reason": f"no result within {timeout_s:g} s"}
        try:
            message = receive.recv()
        except EOFError:
            process.join(10)
            return {"status": "failed", "reason": _death_reason(process.exitcode)}
        process.join(10)
        return message
    finally:
        _end(process)
        receive.close()


def _child_main(send, fn: Callable[..., Any], args: tuple, log_path: str) -> None:
    """Child entry point: quiet the terminal, run, send back plain data."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when a run stops
    _redirect_output(log_path)
    try:
        result = fn(*args)
        message = {"status": "ok", "result": result}
    except MemoryError:
        message = {"status": "failed", "reason": "out of memory (MemoryError)"}
    except BaseException as exc:
        log.exception("cell failed")
        message = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"[:500]}
    send.send(message)
    send.close()


def _redirect_output(log_path: str) -> None:
    """Framework chatter (C++ logs, progress bars) goes to the run's cells.log."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")


def _death_reason(exitcode: int | None) -> str:
    if exitcode is None:
        return "child process did not exit"
    if exitcode < 0:
        sig = signal.Signals(-exitcode)
        if sig == signal.SIGKILL:
            return "child killed by SIGKILL (likely out of memory)"
        return f"child crashed with {sig.name}"
    return f"child exited with code {exitcode} without a result"


def _end(process) -> None:
    if process.is_alive():
        process.terminate()
        process.join(5)
    if process.is_alive():
        process.kill()
        process.join(5)


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """Set ``env`` while a child is spawned (it inherits os.environ at start)."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    added = {k: v for k, v in QUIET_ENV.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for key in added:
            os.environ.pop(key, None)
