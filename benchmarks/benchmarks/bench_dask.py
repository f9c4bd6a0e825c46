"""The losses on Dask arrays: what chunking and Dask's scheduling add to the NumPy path.

On the 16384x1000 float32 logits cut into 8 chunks of rows, with the threaded scheduler
on as many workers as the ``threads`` parameter, ``time_dask`` builds the lazy loss and
computes it, and ``time_numpy`` runs the NumPy path on as many threads.
``track_overhead`` is the ratio of the two, best of interleaved runs
(``python benchmarks/dask_overhead.py`` prints the same with its parts).
"""

from __future__ import annotations

import time

import crossentropy as ce

from ._data import PASSES, THREADS, Pinned, categorical_logits

try:
    import dask
    import dask.array as da
except ImportError:  # pragma: no cover - dask is in the bench extra
    dask = None


class DaskOverhead(Pinned):
    """16384x1000 float32 logits with integer labels in 8 chunks; mean loss."""

    params = (PASSES, THREADS)
    param_names = ["pass", "threads"]
    timeout = 300

    def setup(self, pass_, threads):
        if dask is None:
            msg = "dask is not installed"
            raise NotImplementedError(msg)
        self.pin(threads)
        self.logits, self.labels = categorical_logits(16384, 1000, "float32")
        self.lazy_logits = da.from_array(self.logits, chunks=(2048, -1))
        self.lazy_labels = da.from_array(self.labels, chunks=2048)
        self.grad = pass_ == "forward+grad"
        self.workers = threads

    def _dask(self):
        result = ce.categorical_cross_entropy_with_logits(
            self.lazy_logits, self.lazy_labels, return_grad=self.grad
        )
        return dask.compute(result, scheduler="threads", num_workers=self.workers)

    def _numpy(self):
        return ce.categorical_cross_entropy_with_logits(
            self.logits, self.labels, return_grad=self.grad
        )

    def time_dask(self, pass_, threads):
        self._dask()

    def time_numpy(self, pass_, threads):
        self._numpy()

    def track_overhead(self, pass_, threads):
        dask_times, numpy_times = [], []
        for _ in range(15):
            for call, times in ((self._dask, dask_times), (self._numpy, numpy_times)):
                start = time.perf_counter()
                call()
                times.append(time.perf_counter() - start)
        return min(dask_times) / min(numpy_times)

    track_overhead.unit = "Dask time / NumPy time"
