"""The context merge's window against the regions' width: the diagnostic of docs/quality.md.

For each case (the shared families, layouts 0 and 1, even and uneven class areas, and
the ``fields`` spectra in 1500 and 800 parcels) it runs the harness's pipeline
(``init_prototype.py``: draw 0, the chosen view clustered into 2k, refined over every
radius) and prints the region width (``refine.region_width``, mean run length on the
half-resolution grid) of the truth, of the view's k clusters, of those refined and of
the 2k pieces, then the ARI of the merged labels (before the refinement at k and the
cut) for Ward's merge and for ``refine.context_merge`` at radii 1, 2, 4, 6 and 10. The
library's window is half the width of the refined k clusters' regions, at most 10.

Usage (from the project root; needs ``pip install -e ".[bench]"``; ~10 minutes on 2 cores)::

    python benchmarks/merge_radius.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import MOSAIC, load_mosaic, machine
from init_prototype import RADII, SAMPLE, pooled_maps, uneven_voronoi

RADIUS_GRID = (1, 2, 4, 6, 10)


def case(mosaic, family: str, layout: int, uneven: float = 0.0, cells: int | None = None) -> None:
    from sklearn.metrics import adjusted_rand_score as ari

    from xr_ktextures.cluster import POOL_LADDER, choose_view
    from xr_ktextures.refine import context_merge, multiscale_space, region_width, spatial_refine, ward_merge

    original = mosaic.voronoi_labels
    try:
        if cells:
            mosaic.voronoi_labels = lambda size, n, _cells, rng: original(size, n, cells, rng)
            img, truth = mosaic._fields(512, layout)
            k = 6
        else:
            if uneven:
                mosaic.voronoi_labels = uneven_voronoi(uneven)
            img, truth = mosaic.mosaic(family, seed=layout)
            k = mosaic.FAMILIES[family]
    finally:
        mosaic.voronoi_labels = original
    dates = img.shape[0] if img.ndim == 4 else 1
    if img.ndim == 4:  # two dates side by side, split again for the merge's window
        img, truth = np.concatenate(list(img), 2), np.concatenate(list(truth), 1)
    first = img.shape[0]
    maps = pooled_maps(img, k, 0)
    truth = truth[::2, ::2]
    h, w, d = maps[0].shape
    flat = {r: m.reshape(-1, d) for r, m in maps.items()}
    sample = np.random.default_rng(0).choice(h * w, min(SAMPLE, h * w), replace=False)
    pooled = {r: flat[r][sample] for r in POOL_LADDER}
    choice = choose_view(pooled, first, k, seed=0)
    view = (flat[choice.pool] @ choice.kernel + choice.bias).argmax(1).reshape(1, h, w)
    spaces = multiscale_space({r: flat[r][sample] for r in RADII}, first)
    feats = np.concatenate([flat[r] @ m + o for r, (m, o) in spaces.items()], 1).reshape(1, h, w, -1)
    _, _, refined, _ = spatial_refine(feats, view, k, radius=4, seed=0)
    finer = choose_view(pooled, first, 2 * k, seed=0, candidates=[(choice.view, choice.pool)])
    many = (flat[choice.pool] @ finer.kernel + finer.bias).argmax(1).reshape(1, h, w)
    _, _, many, _ = spatial_refine(feats, many, 2 * k, radius=4, seed=0)

    def by_date(a: np.ndarray) -> np.ndarray:
        return np.stack(np.split(a, dates, axis=2), 1)

    merged = {r: context_merge(by_date(feats), by_date(many), k, radius=r, seed=0) for r in RADIUS_GRID}
    scores = {r: ari(by_date(truth[None]).ravel(), m.ravel()) for r, m in merged.items()}
    ward = ari(truth.ravel(), ward_merge(feats, many, k, seed=0).ravel())
    widths = {name: region_width(by_date(a[None] if a.ndim == 2 else a)) for name, a in
              (("truth", truth), ("view", view), ("refined", refined), ("pieces", many))}  # fmt: skip
    name = f"parcels{cells}" if cells else family
    print(
        f"{name:12s} L{layout} uneven={uneven} view={choice.view}@{choice.pool} "
        + " ".join(f"width_{n}={v:.1f}" for n, v in widths.items())
        + f" radius={int(np.clip(int(widths['refined']) // 2, 1, 10))} ward={ward:.3f} "
        + " ".join(f"r{r}={v:.3f}" for r, v in scores.items()),
        flush=True,
    )


def main() -> None:
    mosaic = load_mosaic(MOSAIC)
    print(machine())
    for cells in (1500, 800):
        for layout in (0, 1):
            case(mosaic, "fields", layout, cells=cells)
    for uneven in (0.0, 1.5):
        for family in mosaic.FAMILIES:
            for layout in (0, 1):
                case(mosaic, family, layout, uneven)


if __name__ == "__main__":
    main()
