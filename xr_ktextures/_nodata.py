"""The nodata label and the test for invalid pixels: numpy only, so every module may import it.

>>> NODATA
255
"""

from __future__ import annotations

import numpy as np

__all__ = ["NODATA", "invalid_pixels"]

NODATA = 255
"""Label written where a pixel has no valid data (any band NaN/inf or equal to the input's nodata)."""


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
