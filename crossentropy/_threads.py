"""Thread-count settings and the runtime that spreads row ranges over threads.

The runtime
-----------
One process-wide :class:`_Runtime` holds a lock, a queue of jobs and the daemon worker
threads that serve the queue. Workers are started, under the lock, when a call first
needs them, and never stopped: the pool only grows, so no call finds it shut down under
it. They are threads of this module rather than a ``concurrent.futures`` pool, whose
threads are shut down at interpreter exit, so that ``atexit`` handlers can still use
them. Where no thread can be started (at exit on Python 3.12 and later), the calling
thread does all the work. After ``fork`` the child gets a fresh runtime (a new lock,
a new queue, no workers), since the parent's workers do not exist in it.

A call (:func:`run_in_ranges`) splits its rows into chunks, fixed before it starts, and
makes them a :class:`_Job`. It puts the job on the queue once for each worker that
should help, then claims chunks itself until none is left: a call always makes
progress, even when every worker is busy, so a call nested in a signal handler or made
from a worker cannot deadlock. A call on a worker runs on that worker only. The state of
a job (the next chunk to claim, the chunks running on workers, one result slot per
chunk, the first error) is only read and written under the job's lock: correctness does
not lean on the GIL.

When it has no chunk left to claim, the caller waits until no worker runs a chunk of
its job, then returns the results in row order. An exception in a chunk on a worker
stops the claiming and is raised in the caller once the started chunks have finished.
Anything raised in the caller itself (Ctrl-C in its own chunk or while it waits) also
cancels the chunks not yet claimed; the caller then waits, uninterruptibly, for the
running ones before the exception goes on, so nothing writes into the caller's arrays
after the exception reaches it.

Scratch buffers
---------------
Each thread counts how deeply its units of work are nested. A chunk runs at its
thread's next level, and :func:`scratch` returns the buffers of the current level: a call
nested on the same thread (in a signal handler, ``__del__`` or a gc callback) gets
buffers of its own and leaves those of the call it interrupted alone. The buffers of the
first level are kept from call to call; deeper ones are dropped when their chunk ends.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np

__all__ = [
    "can_pin_blas",
    "get_num_threads",
    "num_threads",
    "one_blas_thread",
    "run_in_ranges",
    "scratch",
    "set_num_threads",
]

_ENV_VAR = "CROSSENTROPY_NUM_THREADS"
_Result = TypeVar("_Result")

# Work below this many elements runs on the calling thread: the ufunc calls that start it
# cost more than a second core gains.
_MIN_ELEMENTS_PER_THREAD = 1 << 17
# Chunks hold at most about this many elements: one takes a few milliseconds, so a
# thread that is busy elsewhere holds a call up no longer than that.
_MAX_CHUNK_ELEMENTS = 1 << 21

_global_setting: int | None = None
_context_setting: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "crossentropy_num_threads", default=None
)


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


class _ThreadState(threading.local):
    """Per thread: the nesting level of its work, the buffers of each level, its role."""

    def __init__(self) -> None:
        self.depth = 0
        self.levels: list[dict[str, Any]] = []  # levels[d - 1]: the buffers of level d
        self.is_worker = False


_thread_state = _ThreadState()


def _run_at_next_level(work: Callable[[int, int], _Result], start: int, stop: int) -> _Result:
    """Call ``work(start, stop)`` one level deeper on this thread (see :func:`scratch`)."""
    state = _thread_state
    depth = state.depth
    state.depth = depth + 1
    try:
        return work(start, stop)
    finally:
        state.depth = depth
        del state.levels[max(depth, 1) :]  # keep the first level only


class _Job:
    """The chunks of one call, claimed one at a time by the caller and its helpers.

    The caller, whom a signal handler may interrupt anywhere, waits on `done`, a plain
    lock held until the last chunk running on a worker ends: acquiring it is one call,
    which an exception cannot leave half done (an exception inside
    ``threading.Event.wait`` can leave its lock released, or released twice).
    """

    def __init__(self, work: Callable[[int, int], Any], bounds: list[int]) -> None:
        self.work = work
        self.bounds = bounds
        self.n_chunks = len(bounds) - 1
        self.lock = threading.Lock()
        self.next_chunk = 0
        self.running = 0  # chunks running on workers; the caller's own are not counted
        self.results: list[Any] = [None] * self.n_chunks
        self.error: BaseException | None = None
        self.caller_waits = False
        self.done = threading.Lock()
        self.done.acquire()

    def run_chunk(self, chunk: int) -> Any:
        """Run `chunk` one level deeper on this thread and return its result."""
        return _run_at_next_level(self.work, self.bounds[chunk], self.bounds[chunk + 1])

    def claim(self, *, on_worker: bool) -> int | None:
        """Return the next chunk to run (None: none is left), counted as running on a worker."""
        with self.lock:
            chunk = self.next_chunk
            if chunk == self.n_chunks:
                return None
            self.next_chunk = chunk + 1
            if on_worker:
                self.running += 1
            return chunk

    def help(self) -> None:
        """Run chunks on a worker until none is left; keep the first error for the caller."""
        while (chunk := self.claim(on_worker=True)) is not None:
            result = error = None
            try:
                result = self.run_chunk(chunk)
            except BaseException as raised:  # raised in the caller instead
                error = raised
            with self.lock:
                self.running -= 1
                self.results[chunk] = result
                if error is not None and self.error is None:
                    self.error = error
                    self.next_chunk = self.n_chunks  # start no other chunk
                if self.caller_waits and self.running == 0:
                    self.caller_waits = False
                    self.done.release()

    def run(self, jobs: queue.SimpleQueue[_Job], helpers: int) -> list[Any]:
        """Run the job on the calling thread with up to `helpers` workers; return the results."""
        try:
            for _ in range(helpers):
                jobs.put(self)
            while (chunk := self.claim(on_worker=False)) is not None:
                result = self.run_chunk(chunk)
                with self.lock:
                    self.results[chunk] = result
            self.close()
        except BaseException:
            self.settle()
            raise
        with self.lock:
            error, results = self.error, self.results
        if error is not None:
            raise error
        return results

    def close(self) -> None:
        """Start no other chunk, and return once no worker runs one."""
        with self.lock:
            self.next_chunk = self.n_chunks
            if self.running == 0:
                return
            self.caller_waits = True
        self.done.acquire()

    def settle(self) -> None:
        """Close the job, uninterruptibly: a second Ctrl-C does not stop the wait."""
        while True:
            try:
                self.close()
            except BaseException:  # wait all the same
                continue
            return


def _serve(jobs: queue.SimpleQueue[_Job]) -> None:
    """Help with the jobs of `jobs`, one after the other, for the life of the process."""
    _thread_state.is_worker = True
    while True:
        job = jobs.get()
        job.help()
        del job  # hold no finished call's arrays while waiting for the next


class _Runtime:
    """The worker threads of the process and the queue of jobs they serve."""

    def __init__(self) -> None:
        # Reentrant: a call nested in a signal handler may need it while its thread holds it.
        self.lock = threading.RLock()
        self.jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self.workers: list[threading.Thread] = []

    def start_workers(self, wanted: int) -> int:
        """Start workers until there are `wanted`, as far as possible; return how many serve."""
        with self.lock:
            while len(self.workers) < wanted:
                worker = threading.Thread(
                    target=_serve,
                    args=(self.jobs,),
                    name=f"crossentropy-{len(self.workers)}",
                    daemon=True,
                )
                try:
                    worker.start()
                except RuntimeError:  # no thread can be started, e.g. at interpreter exit
                    break
                self.workers.append(worker)
            return min(wanted, len(self.workers))


_runtime = _Runtime()


class _BlasPin:
    """BLAS held to one thread while at least one call asks for it (see :func:`one_blas_thread`).

    The first call in sets the limit and the last one out restores what was there, so
    that calls overlapping in time from several threads never restore a limit another
    still relies on, nor leave one behind.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()  # a call nested in a signal handler may need it
        self.users = 0
        self.limits: Any = None


_blas_pin = _BlasPin()


def _replace_runtime() -> None:
    """Give a forked child a runtime of its own: the parent's workers are not in it."""
    global _runtime, _blas_pin  # noqa: PLW0603
    _runtime = _Runtime()
    _blas_pin = _BlasPin()


@functools.cache
def can_pin_blas() -> bool:
    """Return whether :func:`one_blas_thread` can limit BLAS (threadpoolctl is installed)."""
    try:
        import threadpoolctl  # noqa: F401, PLC0415  (optional)
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Hold the BLAS library behind NumPy's matrix products to one thread inside the block.

    For work that runs matrix products on several threads of its own, where BLAS threads
    on top would oversubscribe the cores. It uses threadpoolctl, which is optional:
    without it (see :func:`can_pin_blas`) nothing changes. The limit is the process's:
    matrix products on other threads of the process run on one thread too meanwhile.
    """
    if not can_pin_blas():
        yield
        return
    from threadpoolctl import threadpool_limits  # noqa: PLC0415  (optional)

    pin = _blas_pin
    with pin.lock:
        if pin.users == 0:
            pin.limits = threadpool_limits(limits=1, user_api="blas")
        pin.users += 1
    try:
        yield
    finally:
        with pin.lock:
            pin.users -= 1
            if pin.users == 0:
                pin.limits.restore_original_limits()
                pin.limits = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_replace_runtime)


def run_in_ranges(
    work: Callable[[int, int], _Result],
    n_rows: int,
    elements_per_row: int,
    *,
    granule: int = 1,
) -> list[_Result]:
    """Call ``work(start, stop)`` over contiguous row ranges that cover ``range(n_rows)``.

    Small inputs run in one range on the calling thread. Larger ones are split into at
    least as many ranges as there are threads to use, and into ranges of at most about
    ``_MAX_CHUNK_ELEMENTS`` elements; the calling thread and the pool's workers claim
    them one by one. Every range starts at a multiple of `granule` rows: blocks of
    `granule` rows from the start of each range are then the same blocks whatever the
    thread count. Ranges never overlap, so `work` may write its rows of a shared
    output without locks. Returns the results of the ranges in the order of the rows.
    If `work` raises, or the caller is interrupted, no range runs after the exception
    reaches the caller.
    """
    n_elements = n_rows * elements_per_row
    if n_elements < 2 * _MIN_ELEMENTS_PER_THREAD or _thread_state.is_worker:
        # Decided before reading any setting: small calls pay for no runtime. Inside a
        # pool worker, never wait on the pool.
        return [_run_at_next_level(work, 0, n_rows)]
    threads = min(get_num_threads(), n_elements // _MIN_ELEMENTS_PER_THREAD, n_rows)
    if threads <= 1:
        return [_run_at_next_level(work, 0, n_rows)]
    per_thread = math.ceil(n_elements / (threads * _MAX_CHUNK_ELEMENTS))
    n_units = -(-n_rows // granule)
    n_chunks = min(threads * per_thread, n_units)
    bounds = [min(n_rows, n_units * i // n_chunks * granule) for i in range(n_chunks + 1)]
    runtime = _runtime
    helpers = runtime.start_workers(threads - 1)
    return _Job(work, bounds).run(runtime.jobs, helpers)


def scratch(name: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Any:
    """Return this thread's work buffer `name` of `shape` at the current level.

    A kernel's block buffers are the same from one call to the next: keeping them per
    thread spares the allocation and the page faults of fresh memory on every call.
    Inside ``work`` of :func:`run_in_ranges`, a buffer belongs to the thread and the
    level of nesting: a call nested on the same thread (a signal handler, a gc
    callback) gets others. The buffers of the first level are kept; outside any range,
    a fresh array is returned. The contents are undefined; a thread uses each named
    buffer for one thing at a time, and not after its range returns.
    """
    state = _thread_state
    depth = state.depth
    if depth == 0:
        return np.empty(shape, dtype=dtype)
    levels = state.levels
    while len(levels) < depth:
        levels.append({})
    buffers = levels[depth - 1]
    size = math.prod(shape)
    buffer = buffers.get(name)
    if buffer is None or buffer.dtype != dtype or buffer.size < size:
        buffer = np.empty(size, dtype=dtype)
        buffers[name] = buffer
    return buffer[:size].reshape(shape)
