"""Texture noise that is a pure function of global pixel position and seed (numpy only).

Simulations drawn from it are identical whatever the chunking: two windows that
overlap get the same noise where they overlap.
"""

from __future__ import annotations

import numpy as np

__all__ = ["position_noise"]


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def position_noise(offset: tuple[int, int], shape: tuple[int, int], channels: int, seed: int) -> np.ndarray:
    """Standard normal noise that is a pure function of global pixel position and seed.

    Parameters
    ----------
    offset : (int, int)
        Global (row, col) of the first pixel.
    shape : (int, int)
        Rows and columns.
    channels : int
        Noise channels per pixel.
    seed : int
        Seed; other seeds give independent noise.

    Two windows that overlap get the same values where they overlap, so simulated
    images are identical whatever the chunking.

    Returns
    -------
    numpy.ndarray
        ``float32`` array of shape ``(*shape, channels)``.

    Examples
    --------
    >>> import numpy as np
    >>> a = position_noise((0, 0), (8, 8), 2, seed=0)
    >>> b = position_noise((4, 4), (4, 4), 2, seed=0)
    >>> a.shape, bool(np.array_equal(a[4:, 4:], b))
    ((8, 8, 2), True)
    """
    y0, x0 = offset
    h, w = shape
    with np.errstate(over="ignore"):
        ys = np.arange(y0, y0 + h, dtype=np.int64).astype(np.uint64)[:, None, None]
        xs = np.arange(x0, x0 + w, dtype=np.int64).astype(np.uint64)[None, :, None]
        cs = np.arange(2 * channels, dtype=np.uint64)[None, None, :]
        base = _mix64(np.uint64(seed & 0xFFFFFFFFFFFFFFFF) + np.zeros(1, np.uint64))
        z = _mix64(_mix64(_mix64(base ^ ys) ^ xs) ^ cs)
    u = ((z >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 2**53)
    u1, u2 = u[..., :channels], u[..., channels:]
    return (np.sqrt(-2.0 * np.log(u1)) * np.cos(2 * np.pi * u2)).astype(np.float32)
