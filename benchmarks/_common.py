"""Helpers shared by the benchmarks: machine description, medians, FLOP counts, sgemm roofline."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MOSAIC = Path(__file__).resolve().parents[2] / "shared" / "bench" / "mosaic.py"
"""Default path of the shared ground-truth mosaics (``--mosaic`` of the quality scripts)."""


def load_mosaic(path: str | Path) -> Any:
    """Import ``shared/bench/mosaic.py`` (or another copy of it) from ``path`` as the module ``mosaic``."""
    sys.path.insert(0, str(Path(path).parent))
    import mosaic  # type: ignore[import-not-found]

    return mosaic


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


def rss_mb(field: str = "VmRSS") -> float:
    """``field`` of /proc/self/status in MB: ``VmRSS`` (all resident pages) or ``RssAnon``
    (the anonymous ones: what the process allocated, without the shared libraries' pages)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


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
    import numpy as np  # here, not at the top: tile_memory.py's first stage must count no numpy

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

    The layers' own count (:meth:`xr_ktextures.network.KTexturesNet.label_flops_per_pixel`):
    every convolution the view runs, the front end's and the head's pooling (separable box
    sums, w additions per pass) and element-wise work; the halo overlap between chunks and
    tiles is *not* counted, so redundant work there lowers the measured efficiency, as it should.
    """
    return model.network.label_flops_per_pixel()


def model_options(flat: dict[str, Any]) -> dict[str, Any]:
    """``--option NAME=VALUE`` pairs (0.2's flat names included) as keyword arguments of ``xk.fit``.

    Flat names go to their group (:data:`xr_ktextures.options.FLAT_NAMES`): ``pool=8`` becomes
    ``mask={"pool": 8}``; the experiment switches (``paper_loss``, ``frontend``,
    ``finetune_masks``, ``seed_textures``, ``scaled_head``) go to the private ``_ablation``.
    Anything else (``steps``, ``architecture``, ``mask={...}``) passes through.
    """
    from xr_ktextures.options import group_flat

    groups, rest = group_flat(flat)
    out = dict(rest)
    for group, fields in groups.items():
        if fields:
            key = "_ablation" if group == "ablation" else group
            out[key] = {**out.get(key, {}), **fields}
    return out
