"""The one Gabor implementation: even/odd kernels and their energy, shared by the loss's
:class:`~xr_ktextures.features.FilterBank` and the mask branch's
:class:`~xr_ktextures.layers.TextureFrontEnd`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from keras import ops

__all__ = ["convolution_macs", "gabor_energy", "gabor_kernels", "separable_factors"]


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


def separable_factors(kernel: np.ndarray, rtol: float = 1e-6) -> tuple[np.ndarray, np.ndarray] | None:
    """Exact row and column factors of a stack of 2-D kernels, or ``None`` when they save nothing.

    Every kernel ``K_o`` (rows ``y``, columns ``x``) lies in the span ``V`` of the stack's
    rows, so ``K_o = (K_o V) V^T``: one pass of ``r`` 1-D kernels ``V`` along x, then
    ``(K_o V)`` along y, gives each 2-D convolution (zero padding included). Gabor kernels
    at 4 orientations have rank 5 of 7 (their envelope is separable and each carrier is a
    sum of two products); the two passes cost 315 instead of 392 multiply-adds per pixel and
    ran 20 % faster forward and backward on TensorFlow's CPU kernels (1-channel 7x7
    convolutions are slow there).

    Parameters
    ----------
    kernel : numpy.ndarray
        ``(size, size, 1, channels)`` kernels (:func:`gabor_kernels`).
    rtol : float
        Singular values below ``rtol`` times the largest count as zero.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray) or None
        The row kernel ``(1, size, 1, r)`` and the column kernel ``(size, 1, r, channels)``.

    >>> k = gabor_kernels(7, 0.25, 4)
    >>> row, col = separable_factors(k)
    >>> row.shape, col.shape
    ((1, 7, 1, 5), (7, 1, 5, 8))
    """
    key = (kernel.shape, kernel.dtype.str, kernel.tobytes(), rtol)
    if key not in _FACTORS:  # once per kernel set: gabor_energy runs at every level and trace
        _FACTORS[key] = _factorise(kernel, rtol)
    return _FACTORS[key]


_FACTORS: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray] | None] = {}


def _factorise(kernel: np.ndarray, rtol: float) -> tuple[np.ndarray, np.ndarray] | None:
    size, channels = kernel.shape[0], kernel.shape[-1]
    mats = [kernel[:, :, 0, o].astype(np.float64) for o in range(channels)]
    _, sv, vt = np.linalg.svd(np.concatenate(mats, axis=0), full_matrices=False)
    rank = int((sv > rtol * sv[0]).sum())
    if rank * (1 + channels) >= size * channels:
        return None
    v = vt[:rank].T  # (size, rank): an orthonormal basis of the kernels' rows
    col = np.stack([m @ v for m in mats], axis=-1)  # (size, rank, channels)
    return v[None, :, None, :].astype(np.float32), col[:, None].astype(np.float32)


def convolution_macs(kernel: np.ndarray) -> int:
    """Multiply-adds per pixel of :func:`gabor_energy`'s convolutions (two passes where separable).

    >>> convolution_macs(gabor_kernels(7, 0.25, 4))
    315
    """
    factors = separable_factors(kernel)
    if factors is None:
        return int(np.prod(kernel.shape))
    row, col = factors
    return int(row.size + col.size)


def gabor_energy(grey: Any, kernel: np.ndarray, orientations: int, dilation: int = 1) -> Any:
    """``even**2 + odd**2`` per orientation of a one-channel image ``(B, H, W, 1)``, stride 1.

    The kernels run as a row pass and a column pass where that is exact and cheaper
    (:func:`separable_factors`).

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
    factors = separable_factors(kernel)
    if factors is None:
        k = ops.convert_to_tensor(kernel, dtype=grey.dtype)
        r = ops.conv(grey, k, padding="same", dilation_rate=dilation)
    else:
        row, col = (ops.convert_to_tensor(f, dtype=grey.dtype) for f in factors)
        r = ops.conv(
            ops.conv(grey, row, padding="same", dilation_rate=dilation), col, padding="same", dilation_rate=dilation
        )
    r2 = ops.square(r)
    # channels alternate even/odd per orientation: a reshape-sum is one pass, strided slices three
    shape = ops.shape(r2)
    return ops.sum(ops.reshape(r2, (-1, *shape[1:-1], orientations, 2)), axis=-1)
