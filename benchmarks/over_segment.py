"""Large k on small-k mosaics: how clean an over-segmentation is.

The paper supports k up to 128, but the ground-truth mosaics hold 3-8 classes, so ARI
against them says little at k = 32. Fitting a family with ``--k`` classes (the default
model through the public API, as ``quality.py`` does) and scoring the labels by

* ``homogeneity`` (scikit-learn's ``homogeneity_score``): 1 when every predicted class
  lies within one true class, whatever the number of classes: an over-segmentation
  should split classes, not mix them;
* ``agree``: the share of 4-neighbour pixel pairs with the same label (1 - the speckle);
  the truth's own value is printed beside it;
* the classes used, and the fit time,

shows whether the initialisation's spatial prior and merge work at that k.

Usage (from the project root; needs ``pip install -e ".[bench]"``)::

    python benchmarks/over_segment.py                        # k = 32 on rgbn, fields, gray
    python benchmarks/over_segment.py --k 64 --families fields --layout 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import MOSAIC, load_mosaic, machine
from quality import _as_dataarray

import xr_ktextures as xk


def neighbour_agreement(labels: np.ndarray) -> float:
    """Share of horizontally and vertically adjacent pixel pairs with the same label."""
    lab = labels.reshape(-1, *labels.shape[-2:])
    rows = lab[:, :, 1:] == lab[:, :, :-1]
    cols = lab[:, 1:] == lab[:, :-1]
    return float((rows.sum() + cols.sum()) / (rows.size + cols.size))


def main() -> None:
    from sklearn.metrics import homogeneity_score

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mosaic", type=Path, default=MOSAIC)
    ap.add_argument("--families", nargs="+", default=["rgbn", "fields", "gray"])
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layout", type=int, default=0, help="seed of the mosaic's layout (as in quality.py)")
    args = ap.parse_args()
    mosaic = load_mosaic(args.mosaic)
    print(f"# machine: {machine()}")
    print(f"# command: python benchmarks/over_segment.py {' '.join(sys.argv[1:])}", flush=True)
    print("| family | true classes | k | homogeneity | agree (truth) | classes used | fit s |")
    print("|---|---|---|---|---|---|---|")
    for family in args.families:
        img, truth = mosaic.mosaic(family, seed=args.layout)
        da = _as_dataarray(img)
        t0 = time.perf_counter()
        model = xk.fit(da, k=args.k, seed=args.seed, verbose=0)
        fit_s = time.perf_counter() - t0
        pred = np.asarray(xk.segment(da, model).values)
        used = len(np.unique(pred[pred != xk.NODATA]))
        print(
            f"| {family} | {mosaic.FAMILIES[family]} | {args.k} | {homogeneity_score(truth.ravel(), pred.ravel()):.3f} "
            f"| {neighbour_agreement(pred):.3f} ({neighbour_agreement(truth):.3f}) | {used}/{args.k} | {fit_s:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
