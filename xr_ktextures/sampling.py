"""Training patches from a sample of chunks: only the sampled windows are ever computed.

Windows are laid on the array's own chunk grid (over time too), a random subset is
chosen, computed in one ``dask.compute`` call, and cut into patches. Patches with at most
:data:`MAX_FILLED` of their pixels nodata/NaN are taken first, then (with a warning) up to
:data:`MAX_FILLED_FALLBACK`; the nodata pixels come back as NaN, for
:meth:`~xr_ktextures.KTextures.fit` to fill, to leave out of its clustering and out of its
refinement (clouds, cloud-mask speckle or sensor gaps leave few windows wholly clean).
numpy-backed arrays are treated as one chunk per step.
"""

from __future__ import annotations

import warnings

import dask
import numpy as np
import xarray as xr

from ._errors import InputError
from ._nodata import invalid_pixels
from .geo import CubeInfo

__all__ = ["MAX_FILLED", "sample_patches"]

MAX_FILLED = 0.05
"""Largest share of nodata/NaN pixels a sampled patch may hold without a warning.

A bound on what the fit fills in, not a tuned constant: a patch is first sought with at
most this share; where none has so few (gaps in every window), patches with up to
:data:`MAX_FILLED_FALLBACK` are taken, with a warning, before smaller patches are tried
(the clustering reads its widest windows, 41 px, at pixels far from a patch edge: on a
mosaic with a fifth of its pixels under cloud-like blobs, ARI 0.25 and 0.36 with the
small clean patches, 0.78 with the wide ones, 0.82 and 0.83 with the gaps also left out
of the refinement; ``docs/quality.md``)."""

MAX_FILLED_FALLBACK = 0.5
"""The share of nodata/NaN pixels above which a patch is never used."""

_MIN_PATCH = 32  # the smallest patch_size KTextures.fit accepts (training.check_patch_size)


def _chunk_starts(chunks: tuple[int, ...]) -> np.ndarray:
    """Index of the first element of each chunk along one axis."""
    return np.concatenate([[0], np.cumsum(chunks)[:-1]]).astype(int)


def _even_chunks(n: int, size: int) -> tuple[int, ...]:
    """Chunks of ``size`` covering ``n`` (the last one shorter)."""
    return (size,) * (n // size) + ((n % size,) if n % size else ())


def _windows_along(chunks: tuple[int, ...], size: int, cap: int) -> list[tuple[int, int]]:
    """(start, stop) windows aligned to chunk starts, each >= size (if the axis allows) and <= cap."""
    total = int(sum(chunks))
    out = []
    for s, c in zip(_chunk_starts(chunks), chunks):
        length = min(max(int(c), size), max(cap, size))
        start = min(int(s), max(total - length, 0))
        out.append((start, min(start + length, total)))
    return sorted(set(out))


def sample_patches(
    da: xr.DataArray,
    info: CubeInfo,
    *,
    n_chunks: int = 8,
    patches_per_chunk: int = 16,
    patch_size: int = 64,
    max_window: int = 512,
    min_size: int | None = None,
    seed: int = 0,
    dates_together: bool = False,
) -> np.ndarray:
    """Compute a random sample of chunks and cut ``(N, patch, patch, bands)`` float32 patches.

    Parameters
    ----------
    da : xarray.DataArray
        Validated input (see :func:`xr_ktextures.geo.describe`), lazy or not.
    info : CubeInfo
        Its dims and nodata.
    n_chunks : int
        How many chunk windows to compute (fewer if the array has fewer).
    patches_per_chunk : int
        Random patch positions tried in each window.
    patch_size : int
        Side of each patch in pixels.
    max_window : int
        Largest window side read from one chunk (bounds memory with huge chunks).
    min_size : int, optional
        When no window holds a ``patch_size`` patch with at most
        :data:`MAX_FILLED_FALLBACK` of its pixels nodata/NaN (e.g. an image barely larger
        than a patch with a wide NaN edge), retry on the same windows with patches 3/4
        the size, down to ``min_size``, and warn. Default: no fallback. At each size,
        patches with at most :data:`MAX_FILLED` nodata are taken first; else up to
        :data:`MAX_FILLED_FALLBACK`, with a warning.
    seed : int
        Seed of the random choice of windows and patches.
    dates_together : bool
        For an array with dims other than band, y and x (dates): sample places, and
        each place at several dates, with the patches at the same pixels on every date,
        so that the fit sees how one place looks at each date
        (:func:`~xr_ktextures.refine.context_merge`). The window budget stays
        ``n_chunks``: ``D = min(dates, max(2, ceil(n_chunks / places)))`` dates at each of
        ``min(places, max(1, n_chunks // D))`` places. Without other dims, as False.

    Returns
    -------
    numpy.ndarray
        ``float32`` patches; their few nodata pixels (every band) are NaN. With
        ``dates_together`` and dates, ``(N, D, patch, patch, bands)``: patch ``i`` at
        ``D`` dates (a patch is kept when its pixels over the ``D`` dates are at most
        :data:`MAX_FILLED` nodata, as for one date).

    Raises
    ------
    InputError
        If the image is smaller than ``patch_size``, or every sampled patch is more than
        :data:`MAX_FILLED_FALLBACK` nodata.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from xr_ktextures.geo import describe
    >>> da = xr.DataArray(np.ones((4, 96, 96), "float32"), dims=("band", "y", "x")).chunk({"y": 48, "x": 48})
    >>> da, info = describe(da)
    >>> sample_patches(da, info, n_chunks=2, patches_per_chunk=3, patch_size=32).shape
    (6, 32, 32, 4)
    """
    ny, nx = da.sizes[info.y_dim], da.sizes[info.x_dim]
    check_image_size(ny, nx, patch_size, min_size)
    arr = da.transpose(*info.other_dims, info.y_dim, info.x_dim, info.band_dim)
    data = arr.data
    lead = arr.shape[:-3]
    if getattr(data, "chunks", None) is not None:
        chunks = data.chunks
    else:  # numpy-backed: a virtual grid of max_window/2 tiles, so small images give several windows
        tile = max(max_window // 2, patch_size)
        chunks = tuple((s,) if i < arr.ndim - 3 else _even_chunks(s, tile) for i, s in enumerate(arr.shape))
    ywin = _windows_along(chunks[-3], patch_size, max_window)
    xwin = _windows_along(chunks[-2], patch_size, max_window)
    rng = np.random.default_rng(seed)
    lead_total = int(np.prod(lead)) if lead else 1
    places = len(ywin) * len(xwin)
    groups: list[list[tuple[int, int]]] = []  # (date, place) of the windows cut at the same pixels
    if dates_together and lead_total > 1:
        dates = min(lead_total, max(2, -(-n_chunks // places)))
        for p in np.sort(rng.choice(places, size=min(places, max(1, n_chunks // dates)), replace=False)):
            groups.append([(int(t), int(p)) for t in np.sort(rng.choice(lead_total, dates, replace=False))])
    else:
        n_cand = lead_total * places
        for p in np.sort(rng.choice(n_cand, size=min(n_chunks, n_cand), replace=False)):
            groups.append([divmod(int(p), places)])
    selections = []
    for t, p in (window for group in groups for window in group):
        iy, ix = divmod(p, len(xwin))
        idx = np.unravel_index(t, lead) if lead else ()
        (y0, y1), (x0, x1) = ywin[iy], xwin[ix]
        selections.append(data[(*idx, slice(y0, y1), slice(x0, x1), slice(None))])
    computed = dask.compute(*selections) if any(hasattr(s, "dask") for s in selections) else selections
    windows = []
    for group in groups:  # back into groups: the windows of one place, date by date
        windows.append(computed[: len(group)])
        computed = computed[len(group) :]
    nodata = info.nodata
    sizes = [patch_size]
    while min_size is not None and sizes[-1] > min_size:  # fall back in 3/4 steps to min_size
        sizes.append(max(min_size, sizes[-1] * 3 // 4))
    arrays, sats = [], []
    for group in windows:
        a = np.stack([np.asarray(w, dtype=np.float32) for w in group])  # (dates, y, x, band)
        bad = invalid_pixels(a, nodata)
        if bad.any():  # a copy: a numpy input's own values stay as they are
            a = np.where(bad[..., None], np.float32(np.nan), a)
        arrays.append(a)
        # summed-area tables over the dates: O(1) "how many bad pixels in this patch" per position
        sats.append(np.pad(bad.sum(0).cumsum(0).cumsum(1), ((1, 0), (1, 0))))
    patches: list[np.ndarray] = []
    # larger patches first, then fewer gaps: the clustering reads 41 px windows at pixels
    # far from a patch edge, so a wide patch with its gaps left out serves it better than
    # a small clean one (docs/quality.md, *Images with gaps*)
    for size in sizes:
        for share in (MAX_FILLED, MAX_FILLED_FALLBACK):
            patches = _valid_patches(arrays, sats, size, patches_per_chunk, rng, share)
            if patches:
                break
        if patches:
            break
    if not patches:
        raise InputError(
            f"all {len(windows) * patches_per_chunk} sampled patches are more than "
            f"{MAX_FILLED_FALLBACK:.0%} nodata/NaN (nodata={nodata}); sample more chunks (n_chunks=...), "
            "use a smaller patch_size, or check that the input holds valid data."
        )
    out = np.stack(patches)  # (N, dates, size, size, band)
    if len(groups[0]) == 1:  # one date per window: (N, size, size, band)
        out = out[:, 0]
    if share > MAX_FILLED:
        filled = float(np.isnan(out[..., 0]).mean())
        warnings.warn(
            f"every sampled {patch_size} px window is more than {MAX_FILLED:.0%} nodata/NaN; fit uses "
            f"{len(out)} {size} px patches of which {filled:.0%} of the pixels are nodata (filled from "
            "their neighbours for training, left out of the clustering). Fewer gaps give a better "
            "clustering: sample more chunks (n_chunks=...) or a date or area with fewer gaps.",
            UserWarning,
            stacklevel=3,
        )
    elif size != patch_size:
        warnings.warn(
            f"no {patch_size} px sample window at most {MAX_FILLED_FALLBACK:.0%} nodata/NaN was found in the "
            f"{len(windows)} sampled windows; sampled {size} px windows instead. Smaller windows can "
            "lower the clustering quality (docs/quality.md); sample more chunks (n_chunks=...) or "
            "pass a smaller sample_size to silence this.",
            UserWarning,
            stacklevel=3,
        )
    return out


def _valid_patches(
    arrays: list[np.ndarray],
    sats: list[np.ndarray],
    size: int,
    per_window: int,
    rng: np.random.Generator,
    share: float = 0.0,
) -> list[np.ndarray]:
    """Up to ``per_window`` random ``size`` px patches per ``(dates, y, x, band)`` window, at the
    same pixels on every date, with at most ``share`` of their pixels bad."""
    patches = []
    for w, sat in zip(arrays, sats):
        most = int(share * size * size * w.shape[0])
        h, wd = w.shape[1:3]
        if h < size or wd < size:
            continue
        ys = rng.integers(0, h - size + 1, per_window)
        xs = rng.integers(0, wd - size + 1, per_window)
        # a window no larger than a patch offers one position: keep each position once
        for y, x in dict.fromkeys(zip(ys.tolist(), xs.tolist())):
            y2, x2 = y + size, x + size
            if sat[y2, x2] - sat[y, x2] - sat[y2, x] + sat[y, x] <= most:
                patches.append(w[:, y:y2, x:x2])
    return patches


def check_image_size(ny: int, nx: int, patch_size: int, min_size: int | None = None) -> None:
    """Refuse an image smaller than the patches, naming what would work (the minimum or a patch_size)."""
    if ny < patch_size or nx < patch_size:
        side = min(ny, nx, min_size or patch_size)  # the patch_size the image allows, at most min_size
        if side < _MIN_PATCH:
            raise InputError(
                f"the image is {ny}x{nx} px; fit needs at least {_MIN_PATCH}x{_MIN_PATCH} px (the smallest "
                "patch_size); fit on a larger image of the same sensor and use that model."
            )
        raise InputError(
            f"the image is {ny}x{nx} px, smaller than patch_size={patch_size}; pass patch_size="
            f"{side // 16 * 16} or less (a multiple of 16, >= {_MIN_PATCH})."
        )
