"""Independent pieces of work on a large graph, run on several cores at once.

A forked child starts with the parent's memory: the loaded graph and its index
travel for free, and only the results come back (pickled, through a pipe).
Forking is only safe in a process without other threads, so anywhere else
(TensorFlow loaded, a platform without fork) the work runs here, one piece
after the other, with the same results. How many pieces to make (cores())
is the caller's choice.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def run_all(tasks: list[Callable[[], T]]) -> list[T]:
    """[task() for task in tasks], the first here and the others in forked children when possible."""
    if len(tasks) < 2 or not _can_fork():
        return [task() for task in tasks]
    children = [_start(task) for task in tasks[1:]]
    first = tasks[0]()
    return [first, *(_finish(child) for child in children)]


def _can_fork() -> bool:
    # TensorFlow starts thread pools of its own; a fork would copy their locks mid-use.
    return hasattr(os, "fork") and threading.active_count() == 1 and "tensorflow" not in sys.modules


def _start(task: Callable[[], T]) -> tuple[int, int]:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, send the result (or the error), and leave without cleanup
        os.close(read_end)
        try:
            payload = pickle.dumps((True, task()), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as error:  # noqa: BLE001 - every failure goes back to the parent
            payload = pickle.dumps((False, _picklable(error)))
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(payload)
        os._exit(0)
    os.close(write_end)
    return pid, read_end


def _finish(child: tuple[int, int]) -> T:
    pid, read_end = child
    with os.fdopen(read_end, "rb") as pipe:
        payload = pipe.read()  # read to the end before waiting: a full pipe would block the child
    _, status = os.waitpid(pid, 0)
    if not payload:
        raise RuntimeError(f"a worker process ended without a result (wait status {status})")
    succeeded, value = pickle.loads(payload)
    if not succeeded:
        raise value
    return value


def _picklable(error: BaseException) -> BaseException:
    try:
        pickle.dumps(error)
        return error
    except Exception:  # noqa: BLE001 - any error that cannot travel is described instead
        return RuntimeError(f"{type(error).__name__}: {error}")
