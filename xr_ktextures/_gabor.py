"""The one Gabor implementation: even/odd kernels and their energy, shared by the loss's
:class:`~xr_ktextures.features.FilterBank` and the mask branch's
:class:`~xr_ktextures.layers.TextureFrontEnd`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from keras import ops

__all__ = ["gabor_energy", "gabor_kernels"]


def gabor_kernels(size: int, frequency: float, orientations: int) -> np.ndarray:
    """Even and odd zero-mean Gabor kernels, shape ``(size, size, 1, 2 * orientations)``.

    Channels alternate even/odd per orientation; each kernel has unit norm and no DC response.

    >>> k = gabor_kernels(7, 0.25, 4)
    >>> k.shape, bool(abs(k.sum(axis=(0, 1))).max() < 1e-5)
    ((7, 7, 1, 8), True)
    """
    half = size // 2
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float64)
    sigma = 0.56 / frequency  # about one octave of bandwidth
    envelope = np.exp(-(xx**2 + yy**2) / (2 * sigma**2))
    out = []
    for i in range(orientations):
        theta = math.pi * i / orientations
        u = xx * math.cos(theta) + yy * math.sin(theta)
        for phase in (np.cos, np.sin):
            g = envelope * phase(2 * math.pi * frequency * u)
            g -= envelope * g.sum() / envelope.sum()  # zero DC response
            g /= np.sqrt((g**2).sum())
            out.append(g)
    return np.stack(out, axis=-1)[:, :, None, :].astype(np.float32)


def gabor_energy(grey: Any, kernel: np.ndarray, orientations: int, dilation: int = 1) -> Any:
    """``even**2 + odd**2`` per orientation of a one-channel image ``(B, H, W, 1)``, stride 1.

    Parameters
    ----------
    grey : tensor
        ``(batch, height, width, 1)`` image.
    kernel : numpy.ndarray
        :func:`gabor_kernels` output.
    orientations : int
        Orientations in ``kernel``.
    dilation : int
        Dilation of the kernels (period ``4 * dilation`` px for frequency 0.25).

    Returns
    -------
    tensor
        ``(batch, height, width, orientations)`` energies.
    """
    k = ops.convert_to_tensor(kernel, dtype=grey.dtype)
    r2 = ops.square(ops.conv(grey, k, padding="same", dilation_rate=dilation))
    # channels alternate even/odd per orientation: a reshape-sum is one pass, strided slices three
    shape = ops.shape(r2)
    return ops.sum(ops.reshape(r2, (-1, *shape[1:-1], orientations, 2)), axis=-1)
