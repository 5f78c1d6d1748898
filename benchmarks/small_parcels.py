"""Held-out checks where colour separates: parcels smaller than the vote window, clean scenes with roads.

The ``fields`` family of ``shared/bench/mosaic.py`` has about 260 parcels (~30 px); this
script draws the same six spectra, pixel noise and per-parcel offsets in ``--cells``
parcels (default 1500, ~13 px across) and scores the default model against k-means on
the pixels. The mosaic's generator is reused with its Voronoi tessellation given more
cells (it has no argument for that); nothing else changes.

``--scene roads`` is the other case of a real scene at a coarse resolution: the same six
spectra in 260 parcels with little noise (pixel noise 5, parcel offsets 3, in digital
numbers) and meandering one- to five-pixel rivers and roads of two of the classes across
them, so that plain k-means on the pixels is nearly right (ARI ~0.96-0.98): a model that
reads context must not lose the edges and the thin features that colour alone gets.

The quality rule applies: ARI >= max(0.60, pixel k-means + 0.10), or within 0.02 of
pixel k-means where that is above 0.85.

Usage (from the project root; needs ``pip install -e ".[bench]"``)::

    python benchmarks/small_parcels.py                  # layouts 0 and 1, 1500 parcels
    python benchmarks/small_parcels.py --cells 800 --layouts 0 1 2
    python benchmarks/small_parcels.py --scene roads --layouts 0 1 2
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
from _common import MOSAIC, load_mosaic, machine, model_options

import xr_ktextures as xk


def roads_scene(mosaic, size: int, layout: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``fields`` spectra in 260 parcels, little noise, 1-5 px rivers (class 1) and roads (class 5)."""
    rng = np.random.default_rng(3000 + layout)
    spectra = [s.reshape(s.shape[0], -1).mean(1) for s in mosaic.rgbn_sources()]
    spectra = np.stack([*spectra, np.array([150.0, 135.0, 110.0, 120.0])])
    labels = mosaic.voronoi_labels(size, len(spectra), 260, rng)
    yy, xx = np.mgrid[0:size, 0:size]
    for cls, half_width, count in ((1, 2.5, 2), (5, 1.0, 3)):
        for _ in range(count):
            amp, phase, freq, at = (
                rng.uniform(10, 40),
                rng.uniform(0, 6.3),
                rng.uniform(0.01, 0.03),
                rng.uniform(0, size),
            )
            along, across = (xx, yy) if rng.random() < 0.5 else (yy, xx)
            labels[np.abs(across - (at + amp * np.sin(freq * along + phase))) < half_width] = cls
    pts = rng.uniform(0, size, (260, 2))
    parcel = np.argmin((yy[..., None] - pts[:, 0]) ** 2 + (xx[..., None] - pts[:, 1]) ** 2, axis=-1)
    offset = rng.normal(0, 3.0, len(pts))[parcel]
    img = spectra[labels].transpose(2, 0, 1) + offset[None] + rng.normal(0, 5.0, (4, size, size))
    return np.clip(img, 0, 255).astype(np.uint8), labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mosaic", type=Path, default=MOSAIC)
    ap.add_argument("--scene", choices=["parcels", "roads"], default="parcels")
    ap.add_argument("--cells", type=int, default=1500, help="parcels of the 'parcels' scene")
    ap.add_argument("--layouts", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--option", action="append", default=[], help="KEY=VALUE passed to xr_ktextures.fit")
    args = ap.parse_args()
    mosaic = load_mosaic(args.mosaic)

    options = model_options({k: ast.literal_eval(v) for k, v in (o.split("=", 1) for o in args.option)})
    original = mosaic.voronoi_labels
    mosaic.voronoi_labels = lambda size, n, cells, rng: original(size, n, args.cells, rng)
    print(f"# machine: {machine()}")
    print(f"# command: python benchmarks/small_parcels.py {' '.join(sys.argv[1:])}")
    for layout in args.layouts:
        img, truth = mosaic._fields(512, layout) if args.scene == "parcels" else roads_scene(mosaic, 512, layout)
        da = xr.DataArray(img, dims=("band", "y", "x"), coords={"band": ["red", "green", "blue", "nir"]})
        t0 = time.perf_counter()
        model = xk.fit(da, k=6, seed=args.seed, verbose=0, **options)
        fit_s = time.perf_counter() - t0
        pred = xk.segment(da, model).values
        ours = mosaic.score(truth, pred)["ari"]
        pixels = mosaic.score(truth, mosaic.kmeans_pixels(img, 6))["ari"]
        goal = pixels - 0.02 if pixels > 0.85 else max(0.60, pixels + 0.10)
        scene = f"fields {args.cells} parcels" if args.scene == "parcels" else "roads scene"
        print(
            f"{scene} layout={layout} k-textures ari={ours:.3f} kmeans_pixels ari={pixels:.3f} "
            f"goal={goal:.2f} ({'met' if ours >= goal else 'not met'}) first view={model.init_view} fit={fit_s:.1f}s "
            f"used={len(np.unique(pred))}/6",
            flush=True,
        )


if __name__ == "__main__":
    main()
