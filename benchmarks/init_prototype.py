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
   head's fit), vote radius 4 on the half-resolution grid (the library's 8 px); with
   ``--overcluster 2 --merge context`` (the library's default since 0.2.0; the harness's
   own default stays one cluster per class, so its older sums reproduce) the chosen view
   is first clustered into 2k clusters, refined the same way at 2k and merged to k by
   ``refine.ward_merge`` (``--merge context``: by ``refine.context_merge``, its window
   as wide as the regions of the chosen view's k clusters refined, ``refine.region_width``,
   at most radius 10 on the half-resolution grid, the head's widest, as the library does;
   ``--merge-radius widest``: always 10; the window spans both dates of a two-date mosaic
   at each place; ``--finer-view both``: where the chosen view is the bands alone at a
   radius that also has texture maps, the 2k clusters are drawn in the bands and texture
   maps together, the ablation of *Where mixed8 fails* in ``docs/quality.md``);
4. gradient descent of that head on ``refine.normalized_cut`` (same radius, neighbours
   weighed by the similarity of their bands, as the library does; ``--every-neighbour``:
   every neighbour alike, the ablation that erased thin roads).

It prints, per family and layout, the ARI of the first clustering, of the refined labels
and of the labels after the cut, and the chosen view, then the sums per draw: with the
seven families and layouts 0-3, the 28-run sums that ``docs/quality.md`` quotes (refined
18.25 / 17.76 / 17.98 for draws 0 / 1 / 2). The numbers are the initialisation's, not
the library's (no chunk sampling, no training through the k-textures loss):
``benchmarks/quality.py`` measures those. Two-date mosaics (``rgbn_time``) are put side
by side, as one image.

``--uneven ALPHA`` draws held-out layouts with uneven class areas: ``mosaic.py`` gives
every class one Voronoi cell and the rest of the cells at random, evenly; here the rest
go to class ``i`` with probability proportional to ``1 / (i + 1) ** ALPHA`` (1.5: the
largest class about 40 % of a k=5 mosaic). A design that only works when classes are
the same size is caught there.

Usage (from the project root; needs ``pip install -e ".[bench]"``)::

    python benchmarks/init_prototype.py                      # draw 0, every family, layouts 0-3
    python benchmarks/init_prototype.py --draws 0 1 2        # the filters' draw: three 28-run sums
    python benchmarks/init_prototype.py --families gray mixed8 --layouts 1
    python benchmarks/init_prototype.py --uneven 1.5       # classes of uneven area
    python benchmarks/init_prototype.py --every-neighbour  # the cut without colour weights
    python benchmarks/init_prototype.py --overcluster 2    # 2k clusters first, merged to k (an ablation)
    python benchmarks/init_prototype.py --overcluster 2 --merge context   # merged by their surroundings
    python benchmarks/init_prototype.py --overcluster 2 --merge context --finer-view both --draws 0 1 2
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


def uneven_voronoi(alpha: float):
    """A stand-in for ``mosaic.voronoi_labels`` whose extra cells favour the first classes."""

    def voronoi_labels(size: int, n_classes: int, cells: int, rng: np.random.Generator) -> np.ndarray:
        pts = rng.uniform(0, size, (cells, 2))
        p = 1.0 / (np.arange(n_classes) + 1) ** alpha
        cls = np.concatenate([np.arange(n_classes), rng.choice(n_classes, cells - n_classes, p=p / p.sum())])
        yy, xx = np.mgrid[0:size, 0:size]
        d = (yy[..., None] - pts[:, 0]) ** 2 + (xx[..., None] - pts[:, 1]) ** 2
        return cls[np.argmin(d, axis=-1)].astype(np.uint8)

    return voronoi_labels


def run(
    mosaic,
    family: str,
    layout: int,
    draw: int,
    edges: bool = True,
    over: int = 1,
    merge: str = "ward",
    merge_radius: str = "regions",
    finer_view: str = "chosen",
) -> tuple[float, float, float, str]:
    from sklearn.metrics import adjusted_rand_score

    from xr_ktextures.cluster import POOL_LADDER, TEXTURE_POOLS, choose_view
    from xr_ktextures.refine import (
        context_merge,
        multiscale_space,
        normalized_cut,
        region_width,
        spatial_refine,
        ward_merge,
    )

    img, truth = mosaic.mosaic(family, seed=layout)
    k = mosaic.FAMILIES[family]
    dates = img.shape[0] if img.ndim == 4 else 1
    if img.ndim == 4:  # two dates side by side
        img, truth = np.concatenate(list(img), 2), np.concatenate(list(truth), 1)
    first = img.shape[0]
    maps = pooled_maps(img, k, draw)
    truth = truth[::2, ::2].ravel()
    h, w, d = maps[0].shape
    flat = {r: m.reshape(-1, d) for r, m in maps.items()}
    sample = np.random.default_rng(0).choice(h * w, min(SAMPLE, h * w), replace=False)
    pooled = {r: flat[r][sample] for r in POOL_LADDER}
    choice = choose_view(pooled, first, k, seed=0)
    labels0 = (flat[choice.pool] @ choice.kernel + choice.bias).argmax(1)
    spaces = multiscale_space({r: flat[r][sample] for r in RADII}, first)
    feats = np.concatenate([flat[r] @ m + o for r, (m, o) in spaces.items()], 1).reshape(1, h, w, -1)
    if over > 1:  # the chosen view in over x k clusters, refined over every radius, merged to k
        view = (choice.view, choice.pool)
        if finer_view == "both" and choice.view == "colour" and choice.pool in TEXTURE_POOLS:
            view = ("both", choice.pool)  # the bands cannot split classes that differ only in texture
        finer = choose_view(pooled, first, over * k, seed=0, candidates=[view])
        many = (flat[choice.pool] @ finer.kernel + finer.bias).argmax(1).reshape(1, h, w)
        _, _, many, _ = spatial_refine(feats, many, over * k, radius=4, seed=0)
        if merge == "context":  # (1, dates, h, w / dates): the window spans every date at a place
            by_date = np.stack(np.split(many, dates, axis=2), 1)
            f_date = np.stack(np.split(feats, dates, axis=2), 1)
            if merge_radius == "regions":  # the library's: as wide as the refined k classes' regions, <= 10
                _, _, plain, _ = spatial_refine(feats, labels0.reshape(1, h, w), k, radius=4, seed=0)
                wide = int(np.clip(int(region_width(np.stack(np.split(plain, dates, axis=2), 1))) // 2, 1, 10))
            else:
                wide = 10 if merge_radius == "widest" else max(1, choice.pool // 2)
            merged = context_merge(f_date, by_date, k, radius=wide, seed=0)
            labels0 = np.concatenate(list(merged[0]), 1).ravel()
        else:
            labels0 = ward_merge(feats, many, k, seed=0).ravel()
    weights, bias, refined, _ = spatial_refine(feats, labels0.reshape(1, h, w), k, radius=4, seed=0)
    weights, bias, _ = normalized_cut(feats, weights, bias, radius=4, edges=first if edges else 0)
    cut = (feats.reshape(-1, feats.shape[-1]) @ weights + bias).argmax(1)
    return (
        adjusted_rand_score(truth, labels0),
        adjusted_rand_score(truth, refined.ravel()),
        adjusted_rand_score(truth, cut),
        f"{choice.view}@{choice.pool}",
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mosaic", type=Path, default=MOSAIC)
    ap.add_argument("--families", nargs="+", default=None, help="default: every family of mosaic.FAMILIES")
    ap.add_argument("--layouts", nargs="+", type=int, default=[0, 1, 2, 3])
    ap.add_argument("--draws", nargs="+", type=int, default=[0], help="seeds of the mask CNN's random filters")
    ap.add_argument("--uneven", type=float, default=0.0, help="classes of uneven area (see above); 0: mosaic.py's")
    ap.add_argument("--every-neighbour", action="store_true", help="the cut without colour weights (an ablation)")
    ap.add_argument(
        "--overcluster", type=int, default=1, help="clusters per class of the first view (default 1; 2: the ablation)"
    )
    ap.add_argument("--merge", choices=["ward", "context"], default="ward", help="how --overcluster merges")
    ap.add_argument(
        "--merge-radius",
        choices=["regions", "widest", "view"],
        default="regions",
        help="--merge context's window: as wide as the refined k classes' regions, at most the head's widest "
        "(the library's), always the head's widest (20 px), or the chosen view's radius",
    )
    ap.add_argument(
        "--finer-view",
        choices=["chosen", "both"],
        default="chosen",
        help="--overcluster's view: the chosen one (the library's), or the bands and texture maps together "
        "where the chosen view is the bands alone at a radius with texture maps (an ablation)",
    )
    args = ap.parse_args()
    mosaic = load_mosaic(args.mosaic)
    if args.uneven:  # every family's layout goes through this module-level function
        mosaic.voronoi_labels = uneven_voronoi(args.uneven)
    families = args.families or list(mosaic.FAMILIES)
    unknown = sorted(set(families) - set(mosaic.FAMILIES))
    if unknown:
        raise SystemExit(f"unknown families {unknown}; choose from {sorted(mosaic.FAMILIES)}")
    print(machine())
    sums = {}
    for draw in args.draws:
        total = np.zeros(2)
        for family in families:
            for layout in args.layouts:
                t0 = time.perf_counter()
                edges = not args.every_neighbour
                first, refined, cut, view = run(
                    mosaic,
                    family,
                    layout,
                    draw,
                    edges,
                    args.overcluster,
                    args.merge,
                    args.merge_radius,
                    args.finer_view,
                )
                total += (refined, cut)
                print(
                    f"draw {draw} {family:11s} L{layout} first={first:.3f} refined={refined:.3f} cut={cut:.3f} "
                    f"{view} {time.perf_counter() - t0:.0f}s",
                    flush=True,
                )
        sums[draw] = total
    runs = len(families) * len(args.layouts)
    for draw, (refined, cut) in sums.items():
        print(f"draw {draw}: sum of ARI over {runs} runs: refined {refined:.2f}, after the cut {cut:.2f}")


if __name__ == "__main__":
    main()
