"""Score logits that do not fit a memory budget: a memory-mapped file, Dask, one pass.
===================================================================================

The example writes a few GB of float32 logits to disk as a ``.npy`` file, block by block
(never holding them in memory), opens the file with ``dask.array.from_array`` through a
reader that maps only the rows a chunk needs, and scores it with
``crossentropy.categorical_cross_entropy_with_logits`` under a progress bar. It reports
the peak resident memory, which stays far below the size of the array, and checks the
result against a plain chunk-by-chunk NumPy computation.

Run it with::

    python -m pip install ".[dask]" && python examples/score_out_of_core.py

By default Dask's threaded scheduler scores the chunks in this process. With
``--workers N`` a ``dask.distributed`` ``LocalCluster`` of N worker processes (one
thread each, on loopback) scores them instead, with the same code; the peak memory is
then that of this process plus that of every worker.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
from dask.diagnostics import ProgressBar

import crossentropy as ce


class NpyRows:
    """Read rows of a ``.npy`` file on demand, mapping only the rows that are asked for.

    ``dask.array.from_array`` takes it like an array. Each read maps the file, copies
    the rows out and unmaps it again, so pages of the file never pile up in the
    process's resident memory.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        probe = np.load(path, mmap_mode="r")
        self.shape = probe.shape
        self.dtype = probe.dtype
        self.ndim = probe.ndim
        del probe

    def __getitem__(self, index: Any) -> np.ndarray:
        mapped = np.load(self.path, mmap_mode="r")
        rows = np.array(mapped[index])
        del mapped
        return rows

    def __dask_tokenize__(self) -> tuple[str, tuple[int, ...], str]:
        return (str(self.path), self.shape, str(self.dtype))


def write_logits(path: Path, n_rows: int, n_classes: int, block_rows: int, seed: int) -> Any:
    """Write random logits (true class boosted) block by block; return the labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, size=n_rows)
    header = {"descr": "<f4", "fortran_order": False, "shape": (n_rows, n_classes)}
    with path.open("wb") as file:
        np.lib.format.write_array_header_1_0(file, header)
        for start in range(0, n_rows, block_rows):
            stop = min(start + block_rows, n_rows)
            block = rng.standard_normal((stop - start, n_classes), dtype=np.float32)
            block[np.arange(stop - start), labels[start:stop]] += 3.0
            file.write(block.tobytes())
    return labels


def score_chunk_by_chunk(reader: NpyRows, labels: NpyRows, block_rows: int) -> float:
    """The reference: the mean loss from one NumPy call per block of rows, summed in float64."""
    total = 0.0
    for start in range(0, reader.shape[0], block_rows):
        rows = slice(start, start + block_rows)
        losses = ce.categorical_cross_entropy_with_logits(
            reader[rows], labels[rows], reduction="none"
        )
        total += float(np.sum(losses, dtype=np.float64))
    return total / reader.shape[0]


def peak_resident_mib() -> float:
    """Peak resident memory of the calling process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def score(loss: Any, workers: int) -> tuple[float, float]:
    """Compute `loss` under a progress bar; return it and the peak memory of all processes.

    With ``workers == 0`` on Dask's threaded scheduler in this process, otherwise on a
    local cluster of that many worker processes, started and closed here.
    """
    if workers == 0:
        with ProgressBar():
            value = float(loss.compute(scheduler="threads"))
        return value, peak_resident_mib()
    from distributed import Client, LocalCluster, progress  # only with --workers

    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=":0",  # any free port: several clusters may run at once
        ) as cluster,
        Client(cluster) as client,
    ):
        future = client.compute(loss)
        progress(future)
        print()
        value = float(future.result())
        worker_peaks = client.run(peak_resident_mib)
    return value, peak_resident_mib() + sum(worker_peaks.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=4.0, help="size of the logits")
    parser.add_argument("--classes", type=int, default=250)
    parser.add_argument("--chunk-rows", type=int, default=32768)
    parser.add_argument("--directory", type=Path, default=None, help="where to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workers", type=int, default=0, help="worker processes of a local cluster (0: none)"
    )
    args = parser.parse_args()

    n_rows = int(args.gigabytes * 2**30) // (4 * args.classes)
    with tempfile.TemporaryDirectory(dir=args.directory) as directory:
        path = Path(directory) / "logits.npy"
        start = time.perf_counter()
        labels = write_logits(path, n_rows, args.classes, args.chunk_rows, args.seed)
        # The labels go to disk too, so that no task carries them in the graph.
        np.save(Path(directory) / "labels.npy", labels)
        del labels
        size_mib = path.stat().st_size / 2**20
        print(
            f"wrote {n_rows:,} x {args.classes} float32 logits ({size_mib:,.0f} MiB) "
            f"in {time.perf_counter() - start:.1f} s"
        )

        reader = NpyRows(path)
        logits = da.from_array(reader, chunks=(args.chunk_rows, -1))
        labels = NpyRows(Path(directory) / "labels.npy")
        lazy_labels = da.from_array(labels, chunks=args.chunk_rows)
        loss = ce.categorical_cross_entropy_with_logits(logits, lazy_labels)
        where = f"a local cluster of {args.workers} workers" if args.workers else "threads"
        print(f"{logits.npartitions} chunks of {args.chunk_rows:,} rows; scoring on {where}:")
        before = peak_resident_mib()
        start = time.perf_counter()
        value, peak = score(loss, args.workers)
        elapsed = time.perf_counter() - start
        print(f"mean cross-entropy {value:.10f} in {elapsed:.1f} s")
        print(
            f"peak resident memory {peak:,.0f} MiB = {peak / size_mib:.1%} of the "
            f"array's {size_mib:,.0f} MiB (this process before scoring: {before:,.0f} MiB)"
        )

        reference = score_chunk_by_chunk(reader, labels, args.chunk_rows)
        print(f"chunk-by-chunk NumPy reference {reference:.10f}")
        # The result is float32, like the logits: equal to the reference to float32 rounding.
        if not np.isclose(value, reference, rtol=1e-6):
            msg = f"the Dask result {value} differs from the reference {reference}"
            raise SystemExit(msg)
        if peak > size_mib / 4:
            msg = (
                f"peak resident memory {peak:.0f} MiB is above a quarter of the array; "
                f"{before:.0f} MiB were resident before scoring (Python, NumPy, Dask), so "
                "arrays of a GB or less cannot stay under a quarter: try --gigabytes 4"
            )
            raise SystemExit(msg)
        print("agrees with the reference; peak memory below a quarter of the array")


if __name__ == "__main__":
    main()
