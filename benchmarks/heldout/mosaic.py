"""Held-out texture mosaics: the shared mosaics' construction on textures no choice was tuned on.

Every design choice in ``docs/quality.md`` was measured on the families of
``shared/bench/mosaic.py`` (their textures: five land covers of ``rgbn.tif`` and
scikit-image's brick, grass and gravel), with held-out *layouts* of those textures. This
module keeps that construction (``compose``: mirror-tiled sources in Voronoi cells) and
its scores and anchors, and swaps the *textures*: five 110 px crops of other images
bundled with scikit-image (no download), each a different kind of texture:

* ``moon``: the lunar surface of ``data.moon()``, smooth with small craters;
* ``lawn``: the grass behind the cameraman of ``data.camera()``, fine noise-like grain;
* ``stars``: ``data.hubble_deep_field()``, sparse bright points on a dark field;
* ``cheek``: the side of the cat's face in ``data.chelsea()``, smooth shading and whiskers;
* ``stroma``: the stained tissue of ``data.immunohistochemistry()``, oriented fibres and nuclei.

Families (``FAMILIES`` maps each to its k):

* ``heldout_gray`` (k=5): the five textures in grey, mapped to four bands with the same
  per-band mean and spread (as the shared ``gray`` family): only texture tells them apart;
* ``heldout_colour`` (k=5): the same crops in their own colours (red, green, blue and
  their mean as the fourth band): colour and texture;
* ``heldout_fine`` (k=5): ``heldout_gray`` shrunk 2x in smaller cells (as ``gray_fine``).

Use it wherever a script takes ``--mosaic`` (it is imported as the module ``mosaic``)::

    python benchmarks/quality.py --mosaic benchmarks/heldout/mosaic.py --seeds 0 1 2 --no-paper
    python benchmarks/quality.py --mosaic benchmarks/heldout/mosaic.py --layout 1 --no-paper

The shared module is found at ``../shared/bench/mosaic.py`` beside the project (as
``benchmarks/_common.py`` finds it), or at the path in ``$XRKT_SHARED_MOSAIC``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np

_PATH = Path(os.environ.get("XRKT_SHARED_MOSAIC", Path(__file__).resolve().parents[3] / "shared/bench/mosaic.py"))
if not _PATH.is_file():
    raise FileNotFoundError(
        f"the shared mosaic module is not at {_PATH}; set XRKT_SHARED_MOSAIC to the path of shared/bench/mosaic.py"
    )
_spec = importlib.util.spec_from_file_location("_shared_mosaic", _PATH)
assert _spec is not None and _spec.loader is not None
_shared: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_shared)

# the shared scores, anchors and construction, unchanged
score = _shared.score
BASELINES = _shared.BASELINES
baseline_labels = _shared.baseline_labels
voronoi_labels = _shared.voronoi_labels


def compose(
    sources: list[np.ndarray], size: int = 512, cells: int = 24, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The shared ``compose``, with this module's ``voronoi_labels`` (which ``init_prototype.py --uneven`` replaces)."""
    _shared.voronoi_labels = voronoi_labels
    return _shared.compose(sources, size=size, cells=cells, seed=seed)


CROP = 110
"""Side (px) of every source crop."""

CROPS = {  # name: (scikit-image image, top row, left column) of a CROP x CROP window
    "moon": ("moon", 360, 360),
    "lawn": ("camera", 380, 400),
    "stars": ("hubble_deep_field", 300, 300),
    "cheek": ("chelsea", 170, 10),
    "stroma": ("immunohistochemistry", 260, 390),
}

FAMILIES = {"heldout_gray": 5, "heldout_colour": 5, "heldout_fine": 5}


def sources(colour: bool = False) -> list[np.ndarray]:
    """The five ``(4, CROP, CROP)`` uint8 sources: grey with equal band statistics, or in colour."""
    from skimage import data
    from skimage.color import rgb2gray

    out = []
    for name, y, x in CROPS.values():
        image = getattr(data, name)()
        if colour:
            rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, -1)
            rgb = rgb[y : y + CROP, x : x + CROP].astype(np.float64)
            bands = [rgb[..., 0], rgb[..., 1], rgb[..., 2], rgb.mean(-1)]
        else:  # as the shared gray_sources: standardised, then the same mean and spread per band
            grey = rgb2gray(image) if image.ndim == 3 else image / 255.0
            g = grey[y : y + CROP, x : x + CROP].astype(np.float64)
            g = (g - g.mean()) / g.std()
            bands = [np.clip(120 + 30 * g * s, 0, 255) for s in (1.0, 0.9, 0.8, 1.1)]
        out.append(np.stack(bands).astype(np.uint8))
    return out


def mosaic(family: str, size: int = 512, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(image (4, H, W) uint8, labels (H, W) uint8)`` of a held-out family; ``seed`` draws the layout."""
    if family == "heldout_gray":
        return compose(sources(), size=size, seed=seed)
    if family == "heldout_colour":
        return compose(sources(colour=True), size=size, seed=seed)
    if family == "heldout_fine":
        return compose(_shared._zoom(sources(), 0.5), size=size, cells=48, seed=seed)
    raise ValueError(f"unknown family {family!r}; one of {sorted(FAMILIES)}")
