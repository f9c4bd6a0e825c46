"""The thread runtime under fork, signals, interpreter exit and concurrent calls.

Each test runs its scenario in a fresh interpreter, so that a hang becomes a timeout and
no signal handler, fork or exit handler reaches the test process itself.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import crossentropy as ce
from crossentropy import _threads

ROOT = Path(__file__).resolve().parents[1]

POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and fork")


def run_python(code: str, **environment: str) -> str:
    """Run `code` in a fresh interpreter that imports this checkout; return its output."""
    env = {key: value for key, value in os.environ.items() if key != "CROSSENTROPY_NUM_THREADS"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.update(environment)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr  # also from atexit handlers
    return done.stdout


@POSIX_ONLY
def test_a_forked_child_computes_what_its_parent_computes():
    output = run_python("""
        import multiprocessing, os, signal, threading
        import numpy as np
        import crossentropy as ce

        ce.set_num_threads(4)
        rng = np.random.default_rng(0)
        x = rng.normal(size=1_000_000).astype(np.float32)
        t = rng.random(1_000_000).astype(np.float32)
        expected = ce.binary_cross_entropy_with_logits(x, t)  # starts the workers

        def loss(_=None):
            signal.alarm(20)  # a child that hangs is killed rather than waited for
            return ce.binary_cross_entropy_with_logits(x, t)

        def forked_child_agrees():
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    code = 0 if loss() == expected else 2
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status)

        assert forked_child_agrees() == 0

        # Forked while another thread is inside a call (its locks may be held).
        stop = threading.Event()
        def busy():
            while not stop.is_set():
                ce.binary_cross_entropy_with_logits(x, t)
        thread = threading.Thread(target=busy)
        thread.start()
        codes = [forked_child_agrees() for _ in range(3)]
        stop.set()
        thread.join()
        assert codes == [0, 0, 0], codes

        with multiprocessing.get_context("fork").Pool(2) as pool:
            results = pool.map_async(loss, range(4)).get(timeout=30)
        assert results == [expected] * 4, results
        print("ok")
        """)
    assert output == "ok\n"


@POSIX_ONLY
def test_concurrent_calls_that_grow_the_pool():
    # Thread k needs k + 2 threads; each call that needs more than the pool has used to
    # shut the live pool down under the calls still submitting to it.
    run_python(
        """
        import sys, threading, time
        import numpy as np
        import crossentropy as ce

        sys.setswitchinterval(1e-6)
        rng = np.random.default_rng(1)
        size = 16 * 131072
        x = rng.normal(size=size).astype(np.float32)
        t = rng.random(size).astype(np.float32)
        barrier = threading.Barrier(15)
        results = [None] * 15
        errors = []

        def call(k):
            n = (k + 2) * 131072
            barrier.wait()
            time.sleep(0.001 * k)  # the calls arrive in the order of their thread counts
            try:
                results[k] = ce.binary_cross_entropy_with_logits(x[:n], t[:n])
            except BaseException as error:
                errors.append(repr(error))

        threads = [threading.Thread(target=call, args=(k,)) for k in range(15)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        for k in range(15):
            n = (k + 2) * 131072
            assert results[k] == ce.binary_cross_entropy_with_logits(x[:n], t[:n]), k
        """,
        CROSSENTROPY_NUM_THREADS="16",
    )


@POSIX_ONLY
def test_an_interrupted_call_writes_nothing_after_the_exception():
    output = run_python("""
        import signal, time
        import numpy as np
        import crossentropy as ce

        ce.set_num_threads(8)
        rng = np.random.default_rng(2)
        x = rng.normal(size=(4096, 256))  # 8 threads: the caller mostly waits for workers
        y = rng.integers(0, 256, 4096)
        out = np.empty_like(x)
        expected_loss, expected_grad = ce.categorical_cross_entropy_with_logits(
            x, y, return_grad=True
        )
        start = time.perf_counter()
        for _ in range(10):
            ce.categorical_cross_entropy_with_logits(x, y, return_grad=True, out=out)
        duration = (time.perf_counter() - start) / 10

        armed = False
        def interrupt(signum, frame):
            if armed:
                raise KeyboardInterrupt
        signal.signal(signal.SIGALRM, interrupt)

        interrupted = late_writes = wrong = 0
        for _ in range(50):
            out.fill(np.nan)  # any later write shows
            try:
                armed = True
                signal.setitimer(signal.ITIMER_REAL, rng.uniform(0, duration))
                ce.categorical_cross_entropy_with_logits(x, y, return_grad=True, out=out)
                armed = False
            except KeyboardInterrupt:
                armed = False
                interrupted += 1
                before = out.copy()
                time.sleep(0.005)
                late_writes += not np.array_equal(out, before, equal_nan=True)
                loss, grad = ce.categorical_cross_entropy_with_logits(
                    x, y, return_grad=True, out=out
                )
                wrong += not (loss == expected_loss and np.array_equal(out, expected_grad))
            # A timer still pending at exit would fire after the handler is gone.
            signal.setitimer(signal.ITIMER_REAL, 0)
        print(interrupted, late_writes, wrong)
        """)
    interrupted, late_writes, wrong = map(int, output.split())
    assert interrupted >= 10
    assert late_writes == 0
    assert wrong == 0


@POSIX_ONLY
def test_a_loss_in_a_signal_handler_leaves_the_interrupted_call_alone():
    output = run_python("""
        import signal, time
        import numpy as np
        import crossentropy as ce

        rng = np.random.default_rng(3)
        problems = [(rng.normal(size=(4000, 10)), rng.integers(0, 10, 4000)) for _ in range(3)]
        expected = [ce.categorical_cross_entropy_with_logits(x, y, return_grad=True)
                    for x, y in problems]
        targets = [rng.random(x.size) for x, _ in problems]
        expected_binary = [
            ce.binary_cross_entropy_with_logits(x.reshape(-1), t)
            for (x, _), t in zip(problems, targets)
        ]
        x_inner = 10 * rng.normal(size=(4000, 10))
        t_inner = rng.random(40_000)
        expected_inner = (
            ce.categorical_cross_entropy_with_logits(x_inner, problems[0][1]),
            ce.binary_cross_entropy_with_logits(x_inner.reshape(-1), t_inner),
        )
        inner = []
        def handler(signum, frame):
            inner.append((
                ce.categorical_cross_entropy_with_logits(x_inner, problems[0][1]),
                ce.binary_cross_entropy_with_logits(x_inner.reshape(-1), t_inner),
            ) == expected_inner)
            signal.setitimer(signal.ITIMER_REAL, interval)  # after this one, not during it
        signal.signal(signal.SIGALRM, handler)

        start = time.perf_counter()
        for _ in range(10):
            ce.categorical_cross_entropy_with_logits(*problems[0], return_grad=True)
        interval = (time.perf_counter() - start) / 10
        signal.setitimer(signal.ITIMER_REAL, interval)
        wrong = 0
        for i in range(240):
            x, y = problems[i % 3]
            loss, grad = ce.categorical_cross_entropy_with_logits(x, y, return_grad=True)
            wrong += not (loss == expected[i % 3][0] and np.array_equal(grad, expected[i % 3][1]))
            binary = ce.binary_cross_entropy_with_logits(x.reshape(-1), targets[i % 3])
            wrong += binary != expected_binary[i % 3]
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        print(len(inner), sum(inner), wrong)
        """)
    handled, right, wrong = map(int, output.split())
    assert wrong == 0
    assert handled >= 20
    assert right == handled


@POSIX_ONLY
@pytest.mark.parametrize("warm", [True, False], ids=["pool-started", "pool-not-started"])
def test_a_loss_in_an_atexit_handler(warm):
    output = run_python(f"""
        import atexit
        import numpy as np
        import crossentropy as ce

        ce.set_num_threads(2)
        rng = np.random.default_rng(4)
        x = rng.normal(size=1_000_000)
        t = rng.random(1_000_000)
        with ce.num_threads(1):
            expected = ce.binary_cross_entropy_with_logits(x, t)
        if {warm}:
            ce.binary_cross_entropy_with_logits(x, t)

        @atexit.register
        def at_exit():
            got = ce.binary_cross_entropy_with_logits(x, t)
            print("at exit", abs(got - expected) <= 1e-12 * abs(expected))
        """)
    assert output == "at exit True\n"


@POSIX_ONLY
def test_the_calling_thread_does_the_work_where_no_thread_can_start():
    # As at interpreter exit on Python 3.12 and later.
    output = run_python("""
        import threading
        import numpy as np
        import crossentropy as ce

        def refuse(self):
            raise RuntimeError("can't create new thread at interpreter shutdown")
        threading.Thread.start = refuse

        ce.set_num_threads(4)
        rng = np.random.default_rng(5)
        x = rng.normal(size=(2000, 500))
        y = rng.integers(0, 500, 2000)
        loss, grad = ce.categorical_cross_entropy_with_logits(x, y, return_grad=True)
        with ce.num_threads(1):
            expected_loss, expected_grad = ce.categorical_cross_entropy_with_logits(
                x, y, return_grad=True
            )
        assert loss == expected_loss and np.array_equal(grad, expected_grad)
        print(threading.active_count())
        """)
    assert output == "1\n"


@POSIX_ONLY
def test_many_threads_switching_every_microsecond_get_exact_results():
    # Every piece of shared state is taken under a lock: threads switching after almost
    # every bytecode, with calls that grow the pool while others use it, still get the
    # results of calls made one at a time.
    run_python("""
        import sys, threading, time
        import numpy as np
        import crossentropy as ce

        rng = np.random.default_rng(6)
        problems = [
            (rng.normal(size=(6600 * (k + 2), 20)), rng.integers(0, 20, 6600 * (k + 2)))
            for k in range(12)
        ]
        sys.setswitchinterval(1e-6)
        barrier = threading.Barrier(12)
        results = {}
        errors = []
        def call(k):
            barrier.wait()
            time.sleep(0.003 * k)  # the pool grows while earlier calls use it
            try:
                with ce.num_threads(k + 2):
                    for _ in range(2):
                        out = np.empty_like(problems[k][0])
                        loss, _ = ce.categorical_cross_entropy_with_logits(
                            *problems[k], return_grad=True, out=out
                        )
                        results.setdefault(k, []).append((loss, out))
            except BaseException as error:
                errors.append(repr(error))
        threads = [threading.Thread(target=call, args=(k,)) for k in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sys.setswitchinterval(0.005)
        assert not errors, errors
        for k in range(12):
            with ce.num_threads(1):
                loss, grad = ce.categorical_cross_entropy_with_logits(
                    *problems[k], return_grad=True
                )
            for got_loss, got_grad in results[k]:
                assert got_loss == loss and np.array_equal(got_grad, grad), k
        """)


def test_ranges_cover_the_rows_in_order():
    rows = 7 << 20  # 3 threads: 2 chunks each, of at most 2**21 elements
    with ce.num_threads(3):
        ranges = _threads.run_in_ranges(lambda start, stop: (start, stop), rows, 1)
    assert len(ranges) == 6
    assert ranges[0][0] == 0
    assert ranges[-1][1] == rows
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))


def test_an_error_in_a_chunk_reaches_the_caller_after_the_running_chunks():
    lock = threading.Lock()
    started = []
    ended = []

    def work(start, stop):
        with lock:
            started.append(start)
        time.sleep(0.02)
        with lock:
            ended.append(start)
        if start == 1:
            raise ZeroDivisionError(start)

    with ce.num_threads(4), pytest.raises(ZeroDivisionError):
        _threads.run_in_ranges(work, 4, 1 << 17)
    with lock:
        assert sorted(ended) == sorted(started)


def test_nested_work_on_a_thread_gets_buffers_of_its_own():
    dtype = np.dtype(np.float64)
    seen = {}

    def inner(start, stop):
        seen["inner"] = _threads.scratch("kernel", (4,), dtype)
        return stop

    def outer(start, stop):
        seen["outer"] = _threads.scratch("kernel", (4,), dtype)
        _threads.run_in_ranges(inner, 1, 1)
        seen["outer again"] = _threads.scratch("kernel", (4,), dtype)
        return stop

    assert _threads.run_in_ranges(outer, 1, 1) == [1]
    assert not np.shares_memory(seen["outer"], seen["inner"])
    assert np.shares_memory(seen["outer"], seen["outer again"])
    # The first level is kept from call to call; outside any range, a fresh array.
    first = seen["outer"]
    _threads.run_in_ranges(outer, 1, 1)
    assert np.shares_memory(seen["outer"], first)
    assert not np.shares_memory(_threads.scratch("kernel", (4,), dtype), first)
