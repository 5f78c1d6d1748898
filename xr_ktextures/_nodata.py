"""The nodata label and the test for invalid pixels: numpy only, so every module may import it.

>>> NODATA
255
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["FILL_RADIUS", "NODATA", "fill_gaps", "invalid_pixels"]

NODATA = 255
"""Label written where a pixel has no valid data (any band NaN/inf or equal to the input's nodata)."""

FILL_RADIUS = 2
"""Radius in px of the window whose valid values fill a gap (:func:`fill_gaps`)."""


def invalid_pixels(a: np.ndarray, nodata: float | None = None) -> np.ndarray:
    """Pixels of ``a`` (bands last) where any band is non-finite or equals ``nodata``.

    Fast in the usual all-valid case: one whole-array reduction (a per-pixel
    ``all(axis=-1)`` over a short band axis is about 20x slower).

    >>> a = np.ones((2, 3, 4), "float32"); a[1, 2, 3] = np.nan; a[0, 0, 1] = -9
    >>> invalid_pixels(a).sum(), invalid_pixels(a, nodata=-9).sum()
    (np.int64(1), np.int64(2))
    """
    ok = np.isfinite(a)
    if nodata is not None:
        ok &= a != np.float32(nodata)
    if ok.all():
        return np.zeros(a.shape[:-1], bool)
    bad = ~ok[..., 0]
    for b in range(1, a.shape[-1]):
        bad |= ~ok[..., b]
    return bad


def fill_gaps(a: np.ndarray, mean: Any) -> np.ndarray:
    """``a`` (bands last, ``(..., H, W, bands)``) with its non-finite values filled.

    A gap takes the mean of the valid values of its band within :data:`FILL_RADIUS` px
    (a normalised convolution; the image mirrored at its edges), else ``mean`` (one
    value per band). The gap's neighbours then see values like their own surroundings:
    a flat band mean inside a texture reads as an edge to every filter and window, and
    moved the context choice on images with scattered gaps (``docs/quality.md``). Fit
    and predict fill alike, so the features match. Each output is a sum in one fixed
    order over its own window (not scipy's running sums, whose rounding depends on
    where a row starts), so a chunk with a ``FILL_RADIUS`` overlap fills exactly as the
    whole image does.

    >>> a = np.arange(25, dtype="float32").reshape(5, 5, 1); a[2, 2] = np.nan
    >>> float(fill_gaps(a, np.zeros(1))[2, 2, 0])  # the mean of the other 24
    12.0
    """
    ok = np.isfinite(a)
    if ok.all():
        return a
    r, (h, w) = FILL_RADIUS, a.shape[-3:-1]
    pad = [(0, 0)] * (a.ndim - 3) + [(r, r), (r, r), (0, 0)]

    def box(u: np.ndarray) -> np.ndarray:
        p = np.pad(u, pad, mode="symmetric")
        rows = p[..., :h, :, :].copy()
        for i in range(1, 2 * r + 1):
            rows += p[..., i : i + h, :, :]
        out = rows[..., :w, :].copy()
        for j in range(1, 2 * r + 1):
            out += rows[..., j : j + w, :]
        return out

    total = box(np.where(ok, a, np.float32(0)).astype(np.float32))
    count = box(ok.astype(np.float32))
    local = np.where(count > 0, total / np.maximum(count, np.float32(1)), np.asarray(mean, np.float32))
    return np.where(ok, a, local).astype(np.float32)
