"""Fit time against k: sampling, initialisation and training, beside the Gabor k-means anchor.

For each k it times, in one process and one run, ``kmeans_gabor`` of
``shared/bench/mosaic.py`` on the same image (the classical anchor, k-means on Gabor
energies) and then the default ``xr_ktextures.fit`` on it, split into its stages by the
``xr_ktextures`` timing log records (sampling the chunks, the cluster initialisation,
gradient training). The ratio fit / anchor is what the performance issue sets goals for
(k=5 on the shipped sample: <= 5x; k=16: <= 10x). Each time is the median of
``--repeats`` runs.

Usage (from the project root; needs ``pip install -e ".[bench]"``)::

    python benchmarks/fit.py                         # the shipped sample, k = 5 and 16
    python benchmarks/fit.py --k 2 4 8 16 32 64 128 --size 512 --repeats 1   # the table of docs/scaling.md
    python benchmarks/fit.py --option overcluster=True --option context_merge=True   # an ablation's fit time
    python benchmarks/fit.py --steps-of-init        # also the initialisation's own steps, per k

``--steps-of-init`` times, inside the initialisation, the view clusterings
(``choose_view``: every candidate view at k, then the chosen one over-clustered), the
refinements (``spatial_refine``), the merge (``context_merge``) and the normalised cut
(``normalized_cut``): each the median over the repeats of its total seconds in one fit.
"""

from __future__ import annotations

import argparse
import ast
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import MOSAIC, load_mosaic, machine, model_options

INIT_STEPS = ("choose_view", "spatial_refine", "context_merge", "normalized_cut")


def _time_init_steps(seconds: dict[str, float]) -> None:
    """Wrap the initialisation's steps, as :mod:`xr_ktextures.initialise` calls them, to add up their seconds."""
    from xr_ktextures import initialise

    def timed(name: str, f: Callable[..., Any]) -> Callable[..., Any]:
        def run(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return f(*a, **kw)
            finally:
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0

        return run

    for name in INIT_STEPS:
        setattr(initialise, name, timed(name, getattr(initialise, name)))


class _Stages(logging.Handler):
    """Collects the ``stage`` and ``seconds`` of the library's timing records."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seconds: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        stage = getattr(record, "stage", None)
        if stage is not None:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + float(getattr(record, "seconds", 0.0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", nargs="+", type=int, default=[5, 16])
    ap.add_argument("--size", type=int, default=None, help="tile the sample to SIZE x SIZE px (default: as shipped)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mosaic", type=Path, default=MOSAIC)
    ap.add_argument("--option", action="append", default=[], help="KEY=VALUE passed to xr_ktextures.fit")
    ap.add_argument("--steps-of-init", action="store_true", help="also time the initialisation's own steps")
    args = ap.parse_args()
    options = model_options({k: ast.literal_eval(v) for k, v in (o.split("=", 1) for o in args.option)})
    mosaic = load_mosaic(args.mosaic)
    import rioxarray
    import xarray as xr

    import xr_ktextures as xk

    da = rioxarray.open_rasterio(xk.sample_path()).load()
    if args.size:
        reps = (1, -(-args.size // da.sizes["y"]), -(-args.size // da.sizes["x"]))
        tiled = np.tile(da.values, reps)[:, : args.size, : args.size]
        da = xr.DataArray(tiled, dims=("band", "y", "x"), coords={"band": da["band"].values})
    img = da.values
    stages = _Stages()
    log = logging.getLogger("xr_ktextures")
    log.addHandler(stages)
    log.setLevel(logging.DEBUG)
    print(f"# machine: {machine()}")
    print(f"# command: python benchmarks/fit.py {' '.join(sys.argv[1:])}")
    print(f"# image: {img.shape[1]} x {img.shape[2]} px, {img.shape[0]} bands; medians of {args.repeats} runs")
    print(f"# options: {options or 'defaults'}")
    steps: dict[str, float] = {}
    if args.steps_of_init:
        _time_init_steps(steps)
    shown = INIT_STEPS if args.steps_of_init else ()
    extra = "".join(f" {name} s |" for name in shown)
    head = "| k | anchor s | fit s | ratio | sample s | init s | train s | classes used | context (first view) |"
    print(head + extra)
    print("|---|---|---|---|---|---|---|---|---|" + "---|" * len(shown))
    xk.fit(da, k=2, seed=0, steps=2, verbose=0)  # warm-up: imports, graph tracing
    for k in args.k:
        anchor, total, parts, used, context, inits = [], [], [], [], "", []
        for r in range(args.repeats):
            t0 = time.perf_counter()
            mosaic.kmeans_gabor(img, k, seed=r)
            anchor.append(time.perf_counter() - t0)
            stages.seconds.clear()
            steps.clear()
            t0 = time.perf_counter()
            model = xk.fit(da, k=k, seed=r, verbose=0, **options)
            total.append(time.perf_counter() - t0)
            parts.append(dict(stages.seconds))
            inits.append(dict(steps))
            labels = xk.segment(da, model).values
            used.append(len(np.unique(labels[labels != xk.NODATA])))
            context = (
                f"multi-scale from {model.init_view}" if model.network.multiscale else f"{model.view}@{model.pool}"
            )
        a, t = statistics.median(anchor), statistics.median(total)
        stage = {s: statistics.median(p.get(s, 0.0) for p in parts) for s in ("sample", "init", "train")}
        print(
            f"| {k} | {a:.1f} | {t:.1f} | {t / a:.1f}x | {stage['sample']:.1f} | {stage['init']:.1f} | "
            f"{stage['train']:.1f} | {statistics.median(used):.0f}/{k} | {context} |"
            + "".join(f" {statistics.median(i.get(n, 0.0) for i in inits):.1f} |" for n in shown),
            flush=True,
        )


if __name__ == "__main__":
    main()
