"""Held-out check: parcels smaller than the refinement's vote window, where colour separates.

The ``fields`` family of ``shared/bench/mosaic.py`` has about 260 parcels (~30 px); this
script draws the same six spectra, pixel noise and per-parcel offsets in ``--cells``
parcels (default 1500, ~13 px across: like a 30 m scene where plain pixel k-means is
nearly right) and scores the default model against k-means on the pixels. The quality
rule applies: ARI >= max(0.60, pixel k-means + 0.10).

The mosaic's generator is reused with its Voronoi tessellation given more cells (it has
no argument for that); nothing else changes.

Usage (from the project root; needs ``pip install -e ".[bench]"``)::

    python benchmarks/small_parcels.py                  # layouts 0 and 1, 1500 parcels
    python benchmarks/small_parcels.py --cells 800 --layouts 0 1 2
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, model_options

import xr_ktextures as xk


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mosaic", default=str(Path(__file__).resolve().parents[2] / "shared" / "bench" / "mosaic.py"))
    ap.add_argument("--cells", type=int, default=1500)
    ap.add_argument("--layouts", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--option", action="append", default=[], help="KEY=VALUE passed to xr_ktextures.fit")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(args.mosaic).parent))
    import mosaic  # type: ignore[import-not-found]

    options = model_options({k: ast.literal_eval(v) for k, v in (o.split("=", 1) for o in args.option)})
    original = mosaic.voronoi_labels
    mosaic.voronoi_labels = lambda size, n, cells, rng: original(size, n, args.cells, rng)
    print(f"# machine: {machine()}")
    print(f"# command: python benchmarks/small_parcels.py {' '.join(sys.argv[1:])}")
    for layout in args.layouts:
        img, truth = mosaic._fields(512, layout)
        da = xr.DataArray(img, dims=("band", "y", "x"), coords={"band": ["red", "green", "blue", "nir"]})
        t0 = time.perf_counter()
        model = xk.fit(da, k=6, seed=args.seed, verbose=0, **options)
        fit_s = time.perf_counter() - t0
        pred = xk.segment(da, model).values
        ours = mosaic.score(truth, pred)["ari"]
        pixels = mosaic.score(truth, mosaic.kmeans_pixels(img, 6))["ari"]
        goal = max(0.60, pixels + 0.10)
        print(
            f"fields {args.cells} parcels layout={layout} k-textures ari={ours:.3f} kmeans_pixels ari={pixels:.3f} "
            f"goal={goal:.2f} ({'met' if ours >= goal else 'not met'}) first view={model.init_view} fit={fit_s:.1f}s "
            f"used={len(np.unique(pred))}/6",
            flush=True,
        )


if __name__ == "__main__":
    main()
