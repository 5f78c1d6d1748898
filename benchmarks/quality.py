"""Segmentation quality on ground-truth texture mosaics, next to k-means baselines.

Fits the *default* model through the public API (``xr_ktextures.fit`` on a DataArray,
so the same chunk sampling a user gets) on both mosaic families of
``shared/bench/mosaic.py`` and prints ARI, NMI and matched accuracy, fit time and the
classes used, next to k-means on pixels, on local statistics, and on Gabor energies.

Usage (from the project root; needs ``pip install -e ".[bench]"``)::

    python benchmarks/quality.py                       # both families, seed 0
    python benchmarks/quality.py --seeds 0 1 2         # median over seeds
    python benchmarks/quality.py --option quantizer=hard_sigmoid   # an ablation
    python benchmarks/quality.py --layout 1            # a held-out mosaic layout
"""

from __future__ import annotations

import argparse
import ast
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

import xr_ktextures as xk


def _load_mosaic_module(path: Path):
    sys.path.insert(0, str(path.parent))
    import mosaic  # type: ignore[import-not-found]

    return mosaic


def run(mosaic, family: str, seed: int, options: dict, layout: int = 0) -> dict:
    img, truth = mosaic.mosaic(family, seed=layout)
    k = int(truth.max()) + 1
    da = xr.DataArray(img, dims=("band", "y", "x"), coords={"band": ["red", "green", "blue", "nir"]})
    t0 = time.perf_counter()
    model = xk.fit(da, k=k, seed=seed, verbose=0, **options)
    fit_s = time.perf_counter() - t0
    pred = xk.segment(da, model).values
    scores = mosaic.score(truth, pred)
    used = int((np.bincount(pred.ravel(), minlength=k)[:k] > 0).sum())
    return {
        "family": family,
        "k": k,
        "seed": seed,
        "fit_s": round(fit_s, 1),
        "classes_used": used,
        **{m: round(v, 3) for m, v in scores.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--mosaic", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared/bench/mosaic.py"
    )
    ap.add_argument("--families", nargs="+", default=["rgbn", "gray"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--option", action="append", default=[], help="KEY=VALUE passed to xr_ktextures.fit")
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument(
        "--layout",
        type=int,
        default=0,
        help="seed of the mosaic's Voronoi layout and texture offsets (0: the reference mosaic; "
        "others: held-out layouts of the same textures)",
    )
    args = ap.parse_args()
    options = {}
    for item in args.option:
        key, _, value = item.partition("=")
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value
    mosaic = _load_mosaic_module(args.mosaic)
    print(
        f"# machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}, "
        f"keras backend {__import__('keras').backend.backend()}"
    )
    print(f"# command: python benchmarks/quality.py {' '.join(sys.argv[1:])}")
    print(f"# options: {json.dumps(options) if options else 'defaults'}, mosaic layout {args.layout}")
    for family in args.families:
        rows = [run(mosaic, family, s, options, args.layout) for s in args.seeds]
        for r in rows:
            print(
                f"{family:5s} k={r['k']} k-textures seed={r['seed']}  ari={r['ari']:.3f} nmi={r['nmi']:.3f} "
                f"matched_accuracy={r['matched_accuracy']:.3f}  fit={r['fit_s']:.1f}s "
                f"classes_used={r['classes_used']}/{r['k']}",
                flush=True,
            )
        if len(rows) > 1:
            med = {m: float(np.median([r[m] for r in rows])) for m in ("ari", "nmi", "matched_accuracy", "fit_s")}
            print(
                f"{family:5s} k-textures median of {len(rows)} seeds: "
                + " ".join(f"{m}={v:.3f}" for m, v in med.items())
            )
        if not args.no_baselines:
            img, truth = mosaic.mosaic(family, seed=args.layout)
            k = int(truth.max()) + 1
            for name in ("kmeans_pixels", "kmeans_local_stats", "kmeans_gabor"):
                s = mosaic.score(truth, getattr(mosaic, name)(img, k))
                print(f"{family:5s} k={k} {name:20s}  " + " ".join(f"{m}={v:.3f}" for m, v in s.items()), flush=True)


if __name__ == "__main__":
    main()
