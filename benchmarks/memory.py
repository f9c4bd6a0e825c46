"""Measure the extra memory of one call of each loss: the first call and a later one.

For every case and thread count, a fresh interpreter makes the arrays and calls the
loss twice under tracemalloc (NumPy reports its data buffers to it): the peak memory
each call allocates beyond what was allocated before it, over the size of the input.
The first call also makes what is kept from call to call (the block buffers of each
thread, and a few one-time allocations): the difference between the two calls, in MiB.
A pool thread that the first call left idle makes its block buffers in the second and
keeps them: what stays allocated after the later call, beyond its result, is such
buffers, and is left out of that call's peak (as the tests measure it).
The option cases (forward only) weigh or leave out elements with arrays that
broadcast against the input; none of them may cost an array of the input's size.
Usage::

    python benchmarks/memory.py [--threads 1,2] [--only SUBSTRING]
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
option = case.split(", ")[1] if case.count(", ") == 2 else ""
options = {}
if case.startswith(("categorical logits 262144", "categorical logits 8x21")):
    # The general path of the log-sum-exp kernel: rows of few classes, and (N, C, H, W).
    nchw = "8x21" in case
    shape = (8, 21, 128, 128) if nchw else (262144, 10)
    axis = 1 if nchw else -1
    batch = (8, 128, 128) if nchw else (262144,)
    n_classes = shape[axis]
    first = rng.standard_normal(shape, dtype=np.float32)
    target = rng.integers(0, n_classes, size=batch)
    loss = ce.categorical_cross_entropy_with_logits
    options["axis"] = axis
    if option == "class_weight":
        options["class_weight"] = rng.random(n_classes) + 0.5
    elif option == "class_weight balanced":
        options["class_weight"] = "balanced"
    elif option == "sample_weight":
        options["sample_weight"] = rng.random(batch, dtype=np.float32)
    elif option == "where":
        options["where"] = rng.random(batch) < 0.9
    elif option == "ignore_index":
        target.reshape(-1)[::7] = -100
        options["ignore_index"] = -100
    elif option == "label_smoothing":
        options["label_smoothing"] = 0.1
    elif option == "soft target":
        target = rng.dirichlet(np.ones(n_classes), size=batch).astype(np.float32)
        target = np.moveaxis(target, -1, axis)
    elif option == "z_loss":
        options["z_loss"] = 1e-4
    elif option == "softcap":
        options["softcap"] = 5.0
    elif option == "masked":
        left_out = np.expand_dims(rng.random(batch) < 0.1, axis)
        first = np.ma.masked_array(first, mask=np.broadcast_to(left_out, shape))
    elif option == "focal":
        loss = ce.categorical_focal_loss_with_logits
    elif option == "focal with label_smoothing":
        loss = ce.categorical_focal_loss_with_logits
        options["label_smoothing"] = 0.1
    elif option:
        raise SystemExit(f"unknown option {option!r}")
elif case.startswith("categorical logits"):
    first = rng.standard_normal((16384, 1000), dtype=np.float32)
    target = rng.integers(0, 1000, size=16384)
    loss = ce.categorical_cross_entropy_with_logits
elif case.startswith("binary"):
    if case.startswith("binary logits"):
        first = rng.standard_normal((100_000, 100), dtype=np.float32)
        loss = ce.binary_cross_entropy_with_logits
    else:
        first = rng.random((20_000, 100))
        loss = ce.binary_cross_entropy
    target = (rng.random(first.shape) < 0.5).astype(first.dtype)
    n_rows, n_labels = first.shape
    if option == "where":
        options["where"] = rng.random(first.shape) < 0.9
    elif option == "where per row":
        options["where"] = rng.random((n_rows, 1)) < 0.9
    elif option == "pos_weight vector":
        options["pos_weight"] = rng.random(n_labels) + 0.5
    elif option == "pos_weight balanced":
        options["pos_weight"] = "balanced"
    elif option == "sample_weight scalar":
        options["sample_weight"] = 2.0
    elif option == "sample_weight per row":
        options["sample_weight"] = rng.random((n_rows, 1))
    elif option == "sample_weight":
        options["sample_weight"] = rng.random(first.shape)
    elif option == "label_smoothing":
        options["label_smoothing"] = 0.1
    elif option == "masked":
        first = np.ma.masked_array(first, mask=rng.random(first.shape) < 0.1)
    elif option:
        raise SystemExit(f"unknown option {option!r}")
else:
    first = rng.dirichlet(np.ones(10), size=200_000)
    target = rng.integers(0, 10, size=200_000)
    loss = ce.categorical_cross_entropy
    if option == "where":
        options["where"] = rng.random(200_000) < 0.9
    elif option == "sample_weight":
        options["sample_weight"] = rng.random(200_000)
    elif option == "class_weight":
        options["class_weight"] = rng.random(10) + 0.5
    elif option == "class_weight balanced":
        options["class_weight"] = "balanced"
    elif option == "label_smoothing":
        options["label_smoothing"] = 0.1
    elif option == "ignore_index":
        target[::7] = -100
        options["ignore_index"] = -100
    elif option == "soft target":
        target = rng.dirichlet(np.ones(10), size=200_000)
    elif option == "masked":
        first = np.ma.masked_array(first, mask=np.repeat(rng.random((200_000, 1)) < 0.1, 10, 1))
    elif option == "focal":
        loss = ce.categorical_focal_loss
    elif option:
        raise SystemExit(f"unknown option {option!r}")
tracemalloc.start()
peaks = []
for _ in range(2):
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    result = loss(first, target, return_grad=grad, **options)
    current, peak = tracemalloc.get_traced_memory()
    parts = result if isinstance(result, tuple) else (result,)
    returned = sum(part.nbytes for part in parts if isinstance(part, np.ndarray))
    kept = max(0, current - before - returned) if peaks else 0
    peaks.append(peak - before - kept)
    del result
print(*peaks, first.nbytes)
"""

CASES = [
    f"{kind}, {pass_}"
    for kind in (
        "categorical logits 16384x1000 f32",
        "binary logits 100000x100 f32",
        "binary probabilities 20000x100 f64",
        "categorical probabilities 200000x10 f64",
    )
    for pass_ in ("forward", "forward+grad")
]
BINARY_OPTIONS = (
    "where",
    "where per row",
    "pos_weight vector",
    "pos_weight balanced",
    "sample_weight scalar",
    "sample_weight per row",
    "sample_weight",
    "label_smoothing",
    "masked",
)
CATEGORICAL_OPTIONS = (
    "where",
    "sample_weight",
    "class_weight",
    "class_weight balanced",
    "label_smoothing",
    "ignore_index",
    "soft target",
    "masked",
    "focal",
)
CASES += [
    f"{kind}, {option}, forward"
    for kind in ("binary logits 100000x100 f32", "binary probabilities 20000x100 f64")
    for option in BINARY_OPTIONS
]
CASES += [
    f"categorical probabilities 200000x10 f64, {option}, forward" for option in CATEGORICAL_OPTIONS
]
LOGITS_OPTIONS = (
    "class_weight",
    "class_weight balanced",
    "sample_weight",
    "where",
    "ignore_index",
    "label_smoothing",
    "soft target",
    "z_loss",
    "softcap",
    "masked",
    "focal",
    "focal with label_smoothing",
)
for kind in ("categorical logits 262144x10 f32", "categorical logits 8x21x128x128 axis=1 f32"):
    CASES += [f"{kind}, forward", f"{kind}, forward+grad"]
    CASES += [f"{kind}, {option}, forward" for option in LOGITS_OPTIONS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--only", default="", help="run only the cases containing this")
    args = parser.parse_args()
    print(f"numpy {np.__version__}; extra memory over the input's size (tracemalloc)\n")
    print("| case | threads | first call | later call | first - later (MiB) |")
    print("| --- | --: | --: | --: | --: |")
    for case in CASES:
        if args.only not in case:
            continue
        for threads in (int(n) for n in args.threads.split(",")):
            command = [sys.executable, "-c", PROBE, case, str(threads)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            first, later, nbytes = (int(n) for n in output.split())
            print(
                f"| {case} | {threads} | {first / nbytes:.4f} | {later / nbytes:.4f} | "
                f"{(first - later) / 2**20:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
