"""Helpers shared by the benchmarks: machine description, medians, FLOP counts, sgemm roofline."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def machine() -> str:
    import keras

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} logical cores, Python {sys.version.split()[0]}, "
        f"Keras {keras.__version__} ({keras.backend.backend()} backend)"
    )


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float]]:
    """Median wall time of ``repeats`` calls (after the caller's own warm-up)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def sgemm_gflops(n: int = 2048, repeats: int = 5) -> dict[str, float]:
    """Single-precision matrix-multiply rate of the Keras backend and of numpy (GFLOP/s, medians)."""
    import keras

    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    ta, tb = keras.ops.convert_to_tensor(a), keras.ops.convert_to_tensor(b)
    keras.ops.convert_to_numpy(keras.ops.matmul(ta, tb))
    t_keras, _ = median_time(lambda: keras.ops.convert_to_numpy(keras.ops.matmul(ta, tb)), repeats)
    a @ b
    t_np, _ = median_time(lambda: a @ b, repeats)
    flops = 2.0 * n**3
    return {"backend": flops / t_keras / 1e9, "numpy": flops / t_np / 1e9}


def flops_per_pixel(model: Any) -> dict[str, float]:
    """Floating-point operations per output pixel of the label computation (multiply-add = 2).

    Counts every convolution, the front end's and the head's pooling (separable box
    sums, w additions per pass) and element-wise work; the halo overlap between chunks and tiles is *not* counted,
    so redundant work there lowers the measured efficiency, as it should.
    """
    enc = model.encoder
    bands = model.bands
    out: dict[str, float] = {"scaler": 2.0 * bands}
    cin = bands
    if enc.frontend is not None:
        fe = enc.frontend
        n2 = 2 * fe.orientations
        gabor = len(fe.dilations) * (2 * 49 * n2 + 3 * n2)  # 7x7 conv to even/odd, square, pair-sum, log1p
        stack = len(fe.dilations) * fe.orientations + 2 * bands
        pool = 2 * (2 * fe.pool + 1) * stack  # (w, 1) then (1, w) means
        out["frontend"] = float(bands + gabor + bands + pool + 5 * bands)
        cin = fe.channels(bands)
    first = cin
    view = getattr(enc, "view", "both")
    hidden = not enc.pool or view != "colour"  # the "colour" view runs no convolution
    for i in range(len(enc.convs) if hidden else 0):
        out[f"conv{i}"] = float(2 * 9 * cin * enc.filters + 2 * enc.filters)  # MACs, bias, relu
        cin = enc.filters
    if enc.pool:  # the head reads the view's part of the hypercolumn; k logits pooled
        read = (first if view != "texture" else 0) + (enc.filters * len(enc.convs) if hidden else 0)
        radii = getattr(enc, "scales", ()) or (enc.pool,)  # a multi-scale head: k logits per radius
        out["head"] = float(len(radii) * (2 * read * enc.outputs + 2 * enc.outputs))
        # (w, 1) then (1, w) means of each radius' k logits, and their sum
        out["pool"] = float(sum(2 * (2 * r + 1) * enc.outputs for r in radii) + (len(radii) - 1) * enc.outputs)
    else:
        out["head"] = float(2 * cin * enc.outputs + 2 * enc.outputs)
    out["total"] = sum(out.values())
    return out
