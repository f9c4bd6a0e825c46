"""Measure the extra memory of one call of each loss: the first call and a later one.

For every case and thread count, a fresh interpreter makes the arrays and calls the
loss twice under tracemalloc (NumPy reports its data buffers to it): the peak memory
each call allocates beyond what was allocated before it, over the size of the input.
The first call also makes what is kept from call to call (the block buffers of each
thread, and a few one-time allocations): the difference between the two calls, in MiB.
Usage::

    python benchmarks/memory.py [--threads 1,2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np

# Run in a fresh interpreter: argv = case, threads. Prints the peak extra memory of the
# first call and of the second, in bytes, and the input's size.
PROBE = """
import sys, tracemalloc
import numpy as np
import crossentropy as ce

case, threads = sys.argv[1], int(sys.argv[2])
ce.set_num_threads(threads)
rng = np.random.default_rng(0)
grad = case.endswith("+grad")
if case.startswith("categorical logits"):
    first = rng.standard_normal((16384, 1000), dtype=np.float32)
    target = rng.integers(0, 1000, size=16384)
    loss = ce.categorical_cross_entropy_with_logits
elif case.startswith("binary logits"):
    first = rng.standard_normal(10_000_000, dtype=np.float32)
    target = (rng.random(10_000_000) < 0.5).astype(np.float32)
    loss = ce.binary_cross_entropy_with_logits
elif case.startswith("binary probabilities"):
    first = rng.random(2_000_000)
    target = (rng.random(2_000_000) < 0.5).astype(np.float64)
    loss = ce.binary_cross_entropy
else:
    first = rng.dirichlet(np.ones(10), size=200_000)
    target = rng.integers(0, 10, size=200_000)
    loss = ce.categorical_cross_entropy
tracemalloc.start()
peaks = []
for _ in range(2):
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    result = loss(first, target, return_grad=grad)
    peaks.append(tracemalloc.get_traced_memory()[1] - before)
    del result
print(*peaks, first.nbytes)
"""

CASES = [
    f"{kind}, {pass_}"
    for kind in (
        "categorical logits 16384x1000 f32",
        "binary logits 10M f32",
        "binary probabilities 2M f64",
        "categorical probabilities 200000x10 f64",
    )
    for pass_ in ("forward", "forward+grad")
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    args = parser.parse_args()
    print(f"numpy {np.__version__}; extra memory over the input's size (tracemalloc)\n")
    print("| case | threads | first call | later call | first - later (MiB) |")
    print("| --- | --: | --: | --: | --: |")
    for case in CASES:
        for threads in (int(n) for n in args.threads.split(",")):
            command = [sys.executable, "-c", PROBE, case, str(threads)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            first, later, nbytes = (int(n) for n in output.split())
            print(
                f"| {case} | {threads} | {first / nbytes:.4f} | {later / nbytes:.4f} | "
                f"{(first - later) / 2**20:.2f} |"
            )


if __name__ == "__main__":
    main()
