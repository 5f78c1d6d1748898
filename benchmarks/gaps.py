"""Quality on images with gaps: scattered NaN pixels (a cloud-mask speckle), striped gaps and clouds.

Real cubes rarely have a window free of nodata: masked clouds leave blobs, cloud masks
scattered pixels, Landsat 7's scan-line corrector stripes. ``fit`` samples windows with
gaps (at most ``sampling.MAX_FILLED`` of their pixels without a warning), fills them from
their neighbours (``_nodata.fill_gaps``) and leaves them out of the clustering; ``segment``
fills them the same way for their neighbours and labels them nodata. This script scores
the default on a mosaic family with gaps of several kinds against the same image without
them (ARI on the valid pixels; each gap pattern drawn ``--patterns`` times).

Usage (from the project root; needs ``pip install -e ".[bench]"``)::

    python benchmarks/gaps.py                         # rgbn, 2 % and 20 % speckle, 20 % stripes, 20 % clouds
    python benchmarks/gaps.py --family fields --patterns 3
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

sys.path.insert(0, str(Path(__file__).parent))
from _common import MOSAIC, load_mosaic, machine

import xr_ktextures as xk

BANDS = ["red", "green", "blue", "nir"]


def gaps(kind: str, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A boolean gap mask: ``speckle2``/``speckle20`` (random pixels), ``stripes20`` (slanted 8 px
    stripes) or ``clouds20`` (20 % in blobs: white noise smoothed over ~12 px, its top fifth)."""
    if kind == "none":
        return np.zeros(shape, bool)
    if kind.startswith("speckle"):
        return rng.random(shape) < int(kind[len("speckle") :]) / 100
    if kind == "stripes20":
        yy, xx = np.mgrid[: shape[0], : shape[1]]
        return ((yy + xx // 4 + int(rng.integers(0, 40))) % 40) < 8
    if kind == "clouds20":
        from scipy.ndimage import gaussian_filter

        field = gaussian_filter(rng.standard_normal(shape), 12, mode="wrap")
        return field > np.quantile(field, 0.8)
    raise ValueError(f"unknown gap kind {kind!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mosaic", default=str(MOSAIC), help="path to shared/bench/mosaic.py")
    ap.add_argument("--family", default="rgbn")
    ap.add_argument("--layout", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--patterns", type=int, default=3, help="gap patterns drawn per kind")
    ap.add_argument("--kinds", nargs="+", default=["none", "speckle2", "speckle20", "stripes20", "clouds20"])
    args = ap.parse_args()
    mosaic = load_mosaic(args.mosaic)
    img, truth = mosaic.mosaic(args.family, seed=args.layout)
    k = mosaic.FAMILIES[args.family]
    print(f"# {machine()}; {args.family} layout {args.layout}, seed {args.seed}, k={k}")
    print("| gaps | pattern | ARI (valid pixels) | first view | gap share | warning |")
    print("|---|---|---|---|---|---|")
    for kind in args.kinds:
        scores = []
        for p in range(1 if kind == "none" else args.patterns):
            mask = gaps(kind, truth.shape[-2:], np.random.default_rng(100 + p))
            values = np.where(mask, np.float32(np.nan), img.astype(np.float32))
            da = xr.DataArray(values, dims=("band", "y", "x"), coords={"band": BANDS})
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model = xk.fit(da, k=k, seed=args.seed, verbose=0)
            pred = xk.segment(da, model).values
            ok = pred != xk.NODATA
            assert (ok == ~mask).all(), "nodata where there was no gap, or a gap labelled"
            ari = mosaic.score(truth[ok], pred[ok])["ari"]
            scores.append(ari)
            warned = any("nodata" in str(w.message) for w in caught)
            print(f"| {kind} | {p} | {ari:.3f} | {model.init_view} | {mask.mean():.3f} | {'yes' if warned else 'no'} |",
                  flush=True)  # fmt: skip
        print(f"| {kind} | median | **{np.median(scores):.3f}** | | | |", flush=True)


if __name__ == "__main__":
    main()
