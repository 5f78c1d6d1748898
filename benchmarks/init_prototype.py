"""The initialisation's design on the whole mosaic, without training: the quick harness of docs/quality.md.

Every attempt at the first clustering recorded in ``docs/quality.md`` (*Ablations*, the
sums over 28 runs) was judged with this pipeline, which is the library's initialisation
minus the chunk sampling and the training, so one run takes seconds instead of a fit:

1. the mosaic's bands standardised over the image, the mask CNN's hypercolumn (the model
   ``xr_ktextures.KTextures(k, seed=draw)`` builds: its random filters are the draw) on
   the whole image, averaged over windows of radius 0, 1, 3, 8 and 20 px and read on
   every second pixel;
2. ``cluster.choose_view`` on 30 000 sampled pixels (the first clustering), its head
   applied to every pixel;
3. ``refine.spatial_refine`` in the space of ``refine.multiscale_space`` (the multi-scale
   head's fit), vote radius 4 on the half-resolution grid (the library's 8 px).

It prints, per family and layout, the ARI of the first clustering and of the refined
labels and the chosen view, then the sum of the refined ARI per draw: with the seven
families and layouts 0-3, the 28-run sums that ``docs/quality.md`` quotes (18.25 / 17.76
/ 17.98 for draws 0 / 1 / 2). The numbers are the initialisation's, not the library's
(no chunk sampling, no gradient descent): ``benchmarks/quality.py`` measures those.
Two-date mosaics (``rgbn_time``) are put side by side, as one image.

Usage (from the project root; needs ``pip install -e ".[bench]"``)::

    python benchmarks/init_prototype.py                      # draw 0, every family, layouts 0-3
    python benchmarks/init_prototype.py --draws 0 1 2        # the filters' draw: three 28-run sums
    python benchmarks/init_prototype.py --families gray mixed8 --layouts 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import MOSAIC, load_mosaic, machine

RADII = (0, 1, 3, 8, 20)
SAMPLE = 30_000


def pooled_maps(img: np.ndarray, k: int, draw: int) -> dict[int, np.ndarray]:
    """``(h/2, w/2, d)`` window means of the draw's hypercolumn at every radius of :data:`RADII`."""
    import keras

    import xr_ktextures as xk
    from xr_ktextures.layers import box_mean

    x = img.astype(np.float32)
    x = (x - x.mean((1, 2), keepdims=True)) / x.std((1, 2), keepdims=True)
    encoder = xk.KTextures(k=k, seed=draw).network.encoder
    col = encoder.hypercolumn(np.moveaxis(x, 0, -1)[None])
    return {r: keras.ops.convert_to_numpy(box_mean(col, r))[0, ::2, ::2] for r in RADII}


def run(mosaic, family: str, layout: int, draw: int) -> tuple[float, float, str]:
    from sklearn.metrics import adjusted_rand_score

    from xr_ktextures.cluster import POOL_LADDER, choose_view
    from xr_ktextures.refine import multiscale_space, spatial_refine

    img, truth = mosaic.mosaic(family, seed=layout)
    k = mosaic.FAMILIES[family]
    if img.ndim == 4:  # two dates side by side
        img, truth = np.concatenate(list(img), 2), np.concatenate(list(truth), 1)
    first = img.shape[0]
    maps = pooled_maps(img, k, draw)
    truth = truth[::2, ::2].ravel()
    h, w, d = maps[0].shape
    flat = {r: m.reshape(-1, d) for r, m in maps.items()}
    sample = np.random.default_rng(0).choice(h * w, min(SAMPLE, h * w), replace=False)
    choice = choose_view({r: flat[r][sample] for r in POOL_LADDER}, first, k, seed=0)
    labels0 = (flat[choice.pool] @ choice.kernel + choice.bias).argmax(1)
    spaces = multiscale_space({r: flat[r][sample] for r in RADII}, first)
    feats = np.concatenate([flat[r] @ m + o for r, (m, o) in spaces.items()], 1).reshape(1, h, w, -1)
    _, _, refined, _ = spatial_refine(feats, labels0.reshape(1, h, w), k, radius=4, seed=0)
    return (
        adjusted_rand_score(truth, labels0),
        adjusted_rand_score(truth, refined.ravel()),
        f"{choice.view}@{choice.pool}",
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mosaic", type=Path, default=MOSAIC)
    ap.add_argument("--families", nargs="+", default=None, help="default: every family of mosaic.FAMILIES")
    ap.add_argument("--layouts", nargs="+", type=int, default=[0, 1, 2, 3])
    ap.add_argument("--draws", nargs="+", type=int, default=[0], help="seeds of the mask CNN's random filters")
    args = ap.parse_args()
    mosaic = load_mosaic(args.mosaic)
    families = args.families or list(mosaic.FAMILIES)
    unknown = sorted(set(families) - set(mosaic.FAMILIES))
    if unknown:
        raise SystemExit(f"unknown families {unknown}; choose from {sorted(mosaic.FAMILIES)}")
    print(machine())
    sums = {}
    for draw in args.draws:
        total = 0.0
        for family in families:
            for layout in args.layouts:
                t0 = time.perf_counter()
                first, refined, view = run(mosaic, family, layout, draw)
                total += refined
                print(
                    f"draw {draw} {family:11s} L{layout} first={first:.3f} refined={refined:.3f} {view} "
                    f"{time.perf_counter() - t0:.0f}s",
                    flush=True,
                )
        sums[draw] = total
    runs = len(families) * len(args.layouts)
    for draw, total in sums.items():
        print(f"draw {draw}: sum of refined ARI over {runs} runs {total:.2f}")


if __name__ == "__main__":
    main()
