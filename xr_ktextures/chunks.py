"""The model over the chunks of a Dask array: a halo overlap on y/x, the model shipped once.

:func:`apply_model` gives labels or the simulation of a ``(..., y, x, band)`` array,
lazily for Dask input. The graph holds one small picklable :class:`ModelHandle` (config
+ weights as numpy) under one key; every block task depends on it. Each worker process
rebuilds the model the first time it meets a handle and keeps it in the package's one
bounded cache (:mod:`xr_ktextures._cache`), keyed by ``model_id``. Inside a chunk, labels
come from the tiled engine of :mod:`xr_ktextures.tiles`.
Blocks are mirror-extended at the image border exactly like ``numpy.pad(...,
mode="symmetric")``, so labels do not depend on the chunking. The mirroring is done
inside each border block (Dask's ``boundary="reflect"`` makes every edge task depend on
a whole row of chunks, which makes the scheduler hold most of the cube in memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import dask
import dask.array as dsa
import numpy as np
from dask.base import tokenize

from ._cache import CACHE
from ._errors import InputError
from ._nodata import FILL_RADIUS, NODATA, invalid_pixels

__all__ = ["ModelHandle", "apply_model", "get_model"]

Output = Literal["labels", "simulated"]


@dataclass(frozen=True)
class ModelHandle:
    """Everything a worker needs to rebuild a fitted model; small and picklable.

    Attributes
    ----------
    model_id : str
        Hash of config and weights; the cache key and the dask token.
    config : dict
        The network's config (:meth:`~xr_ktextures.network.KTexturesNet.get_config`).
    weights : tuple of numpy.ndarray
        The network's weights.

    Examples
    --------
    >>> import xr_ktextures as xk
    >>> model = xk.KTextures(k=2)
    >>> handle = ModelHandle.from_model(model)
    >>> get_model(handle) is model, handle.__dask_tokenize__() == model.model_id
    (True, True)
    """

    model_id: str
    config: dict[str, Any]
    weights: tuple[np.ndarray, ...]

    @classmethod
    def from_model(cls, model: Any) -> ModelHandle:
        """The handle of a :class:`~xr_ktextures.KTextures`; this process keeps ``model`` itself for it."""
        mid = model.model_id
        CACHE.put(("model", mid), model)
        net = model.network
        return cls(mid, net.get_config(), tuple(np.asarray(w) for w in net.get_weights()))

    def __dask_tokenize__(self) -> str:
        return self.model_id


def get_model(handle: ModelHandle) -> Any:
    """The process-wide model for ``handle``, rebuilt at most once per process.

    Parameters
    ----------
    handle : ModelHandle
        What to rebuild from.

    Returns
    -------
    KTextures
        The cached model (the same object for every call with that ``model_id``, until
        the bounded cache drops it).

    Examples
    --------
    >>> import xr_ktextures as xk
    >>> handle = ModelHandle.from_model(xk.KTextures(k=2))
    >>> get_model(handle) is get_model(handle)
    True
    """

    def build() -> Any:
        from .model import KTextures
        from .network import KTexturesNet

        net = KTexturesNet.from_config(dict(handle.config))
        net.set_weights(list(handle.weights))
        return KTextures.from_network(net)

    return CACHE.get_or_create(("model", handle.model_id), build)


def _min_chunks(chunks: tuple[int, ...], size: int) -> tuple[int, ...]:
    """Merge neighbouring chunks until each is >= size (the last absorbs any remainder)."""
    out: list[int] = []
    acc = 0
    for c in chunks:
        acc += c
        if acc >= size:
            out.append(acc)
            acc = 0
    if acc:
        if out:
            out[-1] += acc
        else:
            out.append(acc)
    return tuple(out)


def _nodata_to_nan(a: np.ndarray, nodata: float | None) -> np.ndarray:
    a = a.astype(np.float32, copy=False)
    return a if nodata is None else np.where(a == np.float32(nodata), np.float32(np.nan), a)


def _model_on_block(
    block: np.ndarray,
    handle: ModelHandle,
    depth: int,
    nodata: float | None,
    output: Output,
    starts: tuple[np.ndarray, np.ndarray],
    device: str | None = None,
    tile: int | None = None,
    block_info: dict[Any, Any] | None = None,
) -> np.ndarray:
    """Labels (or simulation) of one block that carries a ``depth`` ring (the halo and
    :data:`FILL_RADIUS`); the ring is cut off."""
    model = get_model(handle)
    loc = block_info[0]["chunk-location"] if block_info else (0,) * block.ndim  # the input's grid
    if block_info:
        num = block_info[0]["num-chunks"]
        sides = [(depth if loc[ax] == 0 else 0, depth if loc[ax] == num[ax] - 1 else 0) for ax in (-3, -2)]
        if any(any(s) for s in sides):  # a border block: mirror the missing context here
            pad = [(0, 0)] * (block.ndim - 3) + sides + [(0, 0)]
            block = np.pad(block, pad, mode="symmetric")
    lead = block.shape[:-3]
    a = _nodata_to_nan(block.reshape((-1, *block.shape[-3:])), nodata)
    # gaps are filled here, from the outer FILL_RADIUS ring, which is then cut: the model
    # reads the block with its halo ring alone, so a 1024 px chunk is one 1024 px tile of
    # the engine, as without gaps (through the model, the extra ring made it four tiles:
    # segment ran 4x slower in benchmarks/throughput.py)
    r = FILL_RADIUS
    gaps = invalid_pixels(a)
    if gaps.any():
        a = model._fill_gaps(a)
    a, gaps = a[:, r : a.shape[1] - r, r : a.shape[2] - r], gaps[:, r : a.shape[1] - r, r : a.shape[2] - r]
    halo = depth - r
    if output == "simulated":
        offset = (int(starts[0][loc[-3]]) - halo, int(starts[1][loc[-2]]) - halo)
        out = model.simulate(a, pad=False, offset=offset)
        out[gaps] = np.nan
    else:
        out = model.predict(a, pad=False, device=device, tile=tile)
        out[gaps] = NODATA
    out = out[:, halo : out.shape[1] - halo, halo : out.shape[2] - halo]
    return out.reshape((*lead, *out.shape[1:]))


def apply_model(
    data: Any,
    model: Any,
    *,
    output: Output = "labels",
    nodata: float | None = None,
    device: str | None = None,
    tile: int | None = None,
) -> Any:
    """Labels (or the simulation) of a ``(..., y, x, band)`` array, lazily if it is a Dask array.

    Parameters
    ----------
    data : numpy.ndarray or dask.array.Array
        Image with bands last.
    model : KTextures
        A fitted model.
    output : {"labels", "simulated"}
        ``uint8`` labels, or the simulated image (float32, bands last).
    nodata : float, optional
        Input value treated as missing (as NaN is).
    device : str, optional
        Device for the labels (see :func:`xr_ktextures.devices.normalize_device`),
        resolved where the block is computed.
    tile : int, optional
        Output tile side inside each block.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        Eager for numpy input, lazy for Dask input. Nothing is computed here.

    Raises
    ------
    InputError
        If the image is smaller than the model's halo along y or x (Dask input).

    Examples
    --------
    >>> import dask.array as dsa, numpy as np
    >>> import xr_ktextures as xk
    >>> rng = np.random.default_rng(0)
    >>> model = xk.KTextures(k=2).fit(rng.random((2, 32, 32, 4)), steps=0, patch_size=32)
    >>> data = dsa.zeros((60, 60, 4), chunks=(30, 30, 4), dtype="float32")
    >>> out = apply_model(data, model)
    >>> out.dtype, out.chunks
    (dtype('uint8'), ((30, 30), (30, 30)))
    """
    if not isinstance(data, dsa.Array):
        a = np.asarray(data)
        lead = a.shape[:-3]
        flat = _nodata_to_nan(a.reshape((-1, *a.shape[-3:])), nodata)
        if output == "simulated":
            out = model.simulate(flat)
        else:
            out = model.predict(flat, device=device, tile=tile)
        return out.reshape((*lead, *out.shape[1:]))

    ny, nx = data.shape[-3], data.shape[-2]
    # the overlap: the model's context, and around it the pixels that fill a gap in it
    # (fill_gaps), so that a block labels its interior exactly as the whole image would
    halo = model.halo + FILL_RADIUS
    if min(ny, nx) <= halo:
        raise InputError(
            f"the image is {ny}x{nx} px but the model's context radius (halo) is {model.halo} px "
            f"(+{FILL_RADIUS} px to fill gaps); segment images larger than {halo} px, or pass a "
            "numpy-backed array."
        )
    out_chunks = data.chunks
    chunks = list(data.chunks)
    chunks[-1] = (data.shape[-1],)  # band in one chunk
    chunks[-3] = _min_chunks(chunks[-3], halo)
    chunks[-2] = _min_chunks(chunks[-2], halo)
    if tuple(chunks) != data.chunks:
        data = data.rechunk(tuple(chunks))
    depth = {data.ndim - 3: halo, data.ndim - 2: halo}
    for ax in range(data.ndim - 3):
        depth[ax] = 0
    depth[data.ndim - 1] = 0
    # no boundary extension here: border blocks mirror their own context (see _model_on_block)
    extended = dsa.overlap.overlap(data, depth=depth, boundary="none")
    model_handle = ModelHandle.from_model(model)  # hashes the weights once for key, cache and token
    handle = dask.delayed(model_handle, pure=True)
    starts = (
        np.concatenate([[0], np.cumsum(data.chunks[-3])[:-1]]),
        np.concatenate([[0], np.cumsum(data.chunks[-2])[:-1]]),
    )
    kind = "simulate" if output == "simulated" else "segment"
    name = f"ktex-{kind}-" + tokenize(data, model_handle.model_id, nodata, halo, device, tile)
    if output == "simulated":
        out = extended.map_blocks(
            _model_on_block,
            handle,
            halo,
            nodata,
            output,
            starts,
            chunks=data.chunks,
            dtype=np.float32,
            meta=np.empty((0,) * data.ndim, np.float32),
            name=name,
        )
        # chunks merged for the halo are split back: the output chunks like the input
        return out.rechunk((*out_chunks[:-1], data.shape[-1])) if out.chunks[:-1] != out_chunks[:-1] else out
    out = extended.map_blocks(
        _model_on_block,
        handle,
        halo,
        nodata,
        output,
        starts,
        device,
        tile,
        chunks=data.chunks[:-1],
        drop_axis=data.ndim - 1,
        dtype=np.uint8,
        meta=np.empty((0,) * (data.ndim - 1), np.uint8),
        name=name,
    )
    return out.rechunk(out_chunks[:-1]) if out.chunks != out_chunks[:-1] else out
