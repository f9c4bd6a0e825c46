"""Thread-count settings and the row-range scheduler shared by the kernels."""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

__all__ = ["get_num_threads", "num_threads", "run_in_ranges", "scratch", "set_num_threads"]

_ENV_VAR = "CROSSENTROPY_NUM_THREADS"
_Result = TypeVar("_Result")

# Work below this many elements runs on the calling thread: the ufunc calls that start it
# cost more than a second core gains.
_MIN_ELEMENTS_PER_THREAD = 1 << 17

_global_setting: int | None = None
_context_setting: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "crossentropy_num_threads", default=None
)
_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_worker = threading.local()
_scratch = threading.local()


def _available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _check_count(n: object, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        msg = f"{name} must be a positive int, got {n!r} of type {type(n).__name__}"
        raise TypeError(msg)
    if n < 1:
        msg = f"{name} must be a positive int, got {n}"
        raise ValueError(msg)
    return n


def _from_environment() -> int | None:
    value = os.environ.get(_ENV_VAR)
    if value is None or not value.strip():
        return None
    try:
        n = int(value)
    except ValueError:
        msg = f"{_ENV_VAR} must be a positive integer, got {value!r}"
        raise ValueError(msg) from None
    return _check_count(n, _ENV_VAR)


def get_num_threads() -> int:
    """Return the number of threads that large inputs are spread over.

    The first of these that is set wins: the innermost :func:`num_threads` context,
    :func:`set_num_threads`, the environment variable ``CROSSENTROPY_NUM_THREADS``, and
    the number of cores available to the process.

    Returns
    -------
    int
        The thread count, at least 1.

    Examples
    --------
    >>> import crossentropy as ce
    >>> with ce.num_threads(1):
    ...     ce.get_num_threads()
    1
    """
    for setting in (_context_setting.get(), _global_setting, _from_environment()):
        if setting is not None:
            return setting
    return _available_cores()


def set_num_threads(n: int | None) -> None:
    """Set the default number of threads for this process.

    Parameters
    ----------
    n : int or None
        A positive thread count, or ``None`` to go back to ``CROSSENTROPY_NUM_THREADS``
        or, when that is unset, the number of available cores.

    Raises
    ------
    TypeError
        If `n` is neither an int nor None.
    ValueError
        If `n` is smaller than 1.

    Examples
    --------
    >>> import crossentropy as ce
    >>> ce.set_num_threads(1)
    >>> ce.get_num_threads()
    1
    >>> ce.set_num_threads(None)
    """
    global _global_setting  # noqa: PLW0603
    _global_setting = None if n is None else _check_count(n, "n")


@contextlib.contextmanager
def num_threads(n: int) -> Iterator[int]:
    """Use `n` threads inside a ``with`` block, in this thread and context only.

    Parameters
    ----------
    n : int
        A positive thread count.

    Yields
    ------
    int
        The thread count in force inside the block.

    Examples
    --------
    >>> import numpy as np
    >>> import crossentropy as ce
    >>> with ce.num_threads(1):
    ...     float(ce.binary_cross_entropy_with_logits(np.zeros(3), np.ones(3)))
    0.6931...
    """
    token = _context_setting.set(_check_count(n, "n"))
    try:
        yield n
    finally:
        _context_setting.reset(token)


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_size  # noqa: PLW0603
    with _pool_lock:
        if _pool is None or _pool_size < workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(
                max_workers=workers,
                thread_name_prefix="crossentropy",
                initializer=_mark_worker,
            )
            _pool_size = workers
        return _pool


def _mark_worker() -> None:
    _worker.active = True


def run_in_ranges(
    work: Callable[[int, int], _Result], n_rows: int, elements_per_row: int
) -> list[_Result]:
    """Call ``work(start, stop)`` over contiguous row ranges that cover ``range(n_rows)``.

    The rows are split into as many equal ranges as there are threads to use; the
    calling thread takes the first range. Ranges never overlap, so `work` may write
    its rows of a shared output without locks. Returns the results of the ranges in
    the order of the rows.
    """
    threads = get_num_threads()
    if getattr(_worker, "active", False):
        threads = 1  # already inside a pool thread: never wait on the pool from it
    threads = min(threads, max(1, (n_rows * elements_per_row) // _MIN_ELEMENTS_PER_THREAD))
    threads = min(threads, max(n_rows, 1))
    if threads <= 1:
        return [work(0, n_rows)]
    bounds = [n_rows * i // threads for i in range(threads + 1)]
    pool = _executor(threads - 1)
    futures = [pool.submit(work, bounds[i], bounds[i + 1]) for i in range(1, threads)]
    try:
        first = work(bounds[0], bounds[1])
    finally:
        rest = [future.result() for future in futures]
    return [first, *rest]


def scratch(name: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Any:
    """Return this thread's work buffer `name` of `shape`, kept from call to call.

    A kernel's block buffers are the same from one call to the next: keeping them per
    thread spares the allocation and the page faults of fresh memory on every call.
    The contents are undefined; a thread uses each named buffer for one thing at a time.
    """
    buffers: dict[str, Any] = _scratch.__dict__.setdefault("buffers", {})
    size = int(np.prod(shape))
    buffer = buffers.get(name)
    if buffer is None or buffer.dtype != dtype or buffer.size < size:
        buffer = np.empty(size, dtype=dtype)
        buffers[name] = buffer
    return buffer[:size].reshape(shape)
