"""Plain functions on DataArrays: :func:`fit`, :func:`segment`, :func:`simulate`, :func:`load_model`.

Each one is a short pipeline: validate metadata → (sample | build the graph) →
attach coordinates, CRS and attributes. The ``.ktex`` accessor forwards here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from ._errors import InputError, NotFittedError
from ._progress import logger, stage_messages, training_display
from ._quiet import import_backend_quietly
from .geo import CubeInfo, check_model_fits, describe, label_attrs, warn_if_topleft, with_geo
from .inference import predict_blocks
from .sampling import sample_patches

if TYPE_CHECKING:
    from .model import KTextures

# Keras and its backend are imported inside the functions (``from .model import ...``),
# so ``import xr_ktextures`` stays cheap (xbatcher's habit).

__all__ = ["fit", "load_model", "segment", "simulate"]


def fit(
    da: xr.DataArray,
    k: int = 6,
    *,
    bands: Sequence[Any] | None = None,
    band_dim: Hashable = "band",
    n_chunks: int = 8,
    patches_per_chunk: int = 8,
    patch_size: int = 64,
    sample_size: int | None = None,
    steps: int = 300,
    batch_size: int = 8,
    seed: int = 0,
    verbose: int | str = "auto",
    **model_options: Any,
) -> KTextures:
    """Fit a k-textures model on a random sample of the cube's chunks.

    Only the sampled chunk windows are computed (in one ``dask.compute``); patches
    holding any NaN or nodata pixel are skipped.

    Parameters
    ----------
    da : xarray.DataArray
        ``(band, y, x)`` or ``(time, band, y, x)`` (any extra dims are sampled
        too), numpy- or Dask-backed.
    k : int
        Number of classes, 2 to 128.
    bands : sequence, optional
        Band names to use, in order (e.g. ``["red", "green", "blue", "nir"]``).
        Default: all bands as they are.
    band_dim : hashable
        Name of the band dimension.
    n_chunks, patches_per_chunk : int
        How many chunk windows to compute, and patches tried in each.
    patch_size : int
        Side of the training crops (px).
    sample_size : int, optional
        Side of the sampled patches the crops are cut from (px); default
        ``max(patch_size, 512)`` (or the image size when smaller), one window read per
        sampled chunk: the cluster initialisation reads features at pixels at least
        ``halo`` from a patch edge, and needs patches much wider than ``2 * halo`` to see
        enough of the image (``docs/quality.md``). Identical patch positions in a window
        are kept once. Where nodata/NaN leaves no such window (an image barely larger
        than ``sample_size`` with a NaN edge), smaller windows, down to ``patch_size``,
        are sampled with a warning.
    steps, batch_size : int
        Training budget (see :meth:`KTextures.fit`).
    seed : int
        Makes the sample, the weights and the training reproducible on CPU.
    verbose : int or "auto"
        Progress: 0 silent; 1 or "auto" says what fit is doing at each stage (sampling,
        initialising, training) and shows Keras' training bar; 2 the stages and one
        training line. Where stdout is not a terminal or Jupyter (a log file, a pipe),
        training progress is plain lines, without control characters. The stage
        messages go to the ``logging`` logger ``"xr_ktextures"`` (INFO); when logging is
        not configured, they are printed while ``verbose`` is on.
    **model_options
        Passed to :class:`KTextures` (``quantizer``, ``extractor``, ``balance``, ...).

    Returns
    -------
    KTextures
        The fitted model.

    Raises
    ------
    InputError
        Bad dims, dtype, band names, k out of range, image smaller than a patch,
        or a sample with no valid patch. Raised before any chunk is computed,
        except the last, which needs the sample.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> import xr_ktextures as xk
    >>> rng = np.random.default_rng(0)
    >>> values = rng.random((4, 64, 64), dtype=np.float32)
    >>> da = xr.DataArray(values, dims=("band", "y", "x"))
    >>> model = xk.fit(da, k=3, steps=2, patch_size=32, verbose=0)
    >>> model.k
    3
    """
    import_backend_quietly(set_level=False)  # no TensorFlow start-up lines in a notebook
    from .model import KTextures

    _check_k(k)
    da, info = describe(da, band_dim=band_dim, bands=bands)
    if sample_size is None:
        sample_size = max(patch_size, min(512, da.sizes[info.y_dim], da.sizes[info.x_dim]))
    elif isinstance(sample_size, bool) or not isinstance(sample_size, (int, np.integer)) or sample_size < patch_size:
        raise InputError(f"sample_size must be an integer >= patch_size={patch_size}, got {sample_size!r}.")
    with stage_messages(verbose):
        t0 = time.perf_counter()
        logger.info("fit: computing a sample of up to %d chunk windows (%d px) ...", n_chunks, sample_size)
        patches = sample_patches(
            da,
            info,
            n_chunks=n_chunks,
            patches_per_chunk=patches_per_chunk,
            patch_size=int(sample_size),
            min_size=patch_size,
            seed=seed,
        )
        logger.info(
            "fit: sampled %d patches of %d px in %.1f s", len(patches), patches.shape[1], time.perf_counter() - t0
        )
        model = KTextures(k=k, bands=da.sizes[info.band_dim], band_names=info.band_names, seed=seed, **model_options)
        logger.info("fit: initialising the k=%d model, then training %d steps ...", k, steps)
        keras_verbose, callbacks = training_display(verbose, steps)
        model.fit(
            patches,
            steps=steps,
            batch_size=batch_size,
            patch_size=patch_size,
            verbose=keras_verbose,
            callbacks=callbacks,
        )
        logger.info("fit: done in %.1f s", time.perf_counter() - t0)
    return model


def _check_k(k: Any) -> None:
    from .model import MAX_K

    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= int(k) <= MAX_K:
        raise InputError(f"k must be an integer from 2 to {MAX_K}, got {k!r}.")


def _prepare(da: Any, model: Any, band_dim: Hashable, bands: Sequence[Any] | None) -> tuple[xr.DataArray, CubeInfo]:
    import_backend_quietly(set_level=False)
    from .model import KTextures

    if model is None:
        raise NotFittedError("no model: pass model=... (from fit() or load_model()), or call da.ktex.fit() first.")
    if not isinstance(model, KTextures):
        raise TypeError(f"model must be a KTextures model, got {type(model).__name__}.")
    if not model.fitted:
        raise NotFittedError("the model is not fitted; call fit() first or load a saved model.")
    if bands is None and model.band_names is not None and band_dim in getattr(da, "coords", {}):
        names = [str(v) for v in da[band_dim].values]
        if set(model.band_names) <= set(names) and names != model.band_names:
            bands = model.band_names  # select the model's bands by name, in its order
    da, info = describe(da, band_dim=band_dim, bands=bands)
    check_model_fits(info, da.sizes[info.band_dim], model)
    warn_if_topleft(info)
    return da, info


def _run(
    da: xr.DataArray,
    info: CubeInfo,
    model: KTextures,
    nodata: float | None,
    simulate: bool,
    device: str | None = None,
    tile: int | None = None,
) -> Any:
    arr = da.transpose(*info.other_dims, info.y_dim, info.x_dim, info.band_dim)
    nd = info.nodata if nodata is None else nodata
    return predict_blocks(arr.data, model, nodata=nd, simulate=simulate, device=device, tile=tile)


def _coords_without(da: xr.DataArray, dim: Hashable) -> dict[Hashable, Any]:
    return {n: c for n, c in da.coords.items() if dim not in c.dims}


def segment(
    da: xr.DataArray,
    model: KTextures | None = None,
    *,
    bands: Sequence[Any] | None = None,
    band_dim: Hashable = "band",
    nodata: float | None = None,
    device: str | None = "auto",
    tile: int | None = None,
) -> xr.DataArray:
    """Label every pixel with one of the model's k classes; lazy for Dask input.

    Inference is mapped over the chunks with an overlap of ``model.halo`` pixels on
    y/x (mirrored at the image border), so labels are identical for any chunking.
    One model labels every time step, so class ids mean the same thing across time.

    Parameters
    ----------
    da : xarray.DataArray
        ``(band, y, x)`` or ``(time, band, y, x)``; numpy (eager) or Dask (lazy).
    model : KTextures
        A fitted model (from :func:`fit` or :func:`load_model`).
    bands : sequence, optional
        Band names to use. By default the model's own band names are selected when
        the data has them.
    band_dim : hashable
        Name of the band dimension.
    nodata : float, optional
        Input value to treat as missing (default: the input's own declared nodata).
    device : str
        Where each task runs the model, decided on the worker at compute time:
        ``"auto"`` (the worker's GPU when its Keras backend sees one, else its CPU),
        ``"cpu"``, ``"gpu"`` or ``"gpu:N"``. On a GPU, tiles are batched to fit half
        of its free memory. Same labels on every device up to floating-point rounding.
    tile : int, optional
        Output tile side in pixels inside each chunk (default 1024 on a CPU, 2048 on a
        GPU): a chunk larger than a tile is labelled tile by tile, so memory follows
        the tile, not the chunk. Labels do not depend on it.

    Returns
    -------
    xarray.DataArray
        ``uint8`` labels with the input's dims minus the band dim, all non-band
        coords, the CRS and transform, CF ``flag_values``/``flag_meanings``, and
        :data:`~xr_ktextures.NODATA` (255) wherever any band is NaN or nodata.
        Building it computes nothing.

    Raises
    ------
    NotFittedError
        If no fitted model is given.
    InputError, ModelMismatchError
        Bad dims, dtype, bands, device name or tile, or bands that differ from the model's.
    DeviceUnavailableError
        At compute time, on a worker without the GPU that ``device`` names.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> import xr_ktextures as xk
    >>> rng = np.random.default_rng(0)
    >>> values = rng.random((4, 64, 64), dtype=np.float32)
    >>> da = xr.DataArray(values, dims=("band", "y", "x"))
    >>> model = xk.fit(da, k=3, steps=2, patch_size=32, verbose=0)
    >>> labels = xk.segment(da.chunk({"y": 32, "x": 32}), model)
    >>> labels.dtype, labels.dims
    (dtype('uint8'), ('y', 'x'))
    """
    import_backend_quietly(set_level=False)
    from .engine import check_tile, normalize_device
    from .model import NODATA

    normalize_device(device)  # a misspelt device or tile fails here, not on the workers
    check_tile(tile)
    da, info = _prepare(da, model, band_dim, bands)
    assert model is not None
    data = _run(da, info, model, nodata, simulate=False, device=device, tile=tile)
    dims = (*info.other_dims, info.y_dim, info.x_dim)
    out = xr.DataArray(
        data,
        dims=dims,
        coords=_coords_without(da, info.band_dim),
        name="labels",
        attrs=label_attrs(model.k, model.model_id, NODATA),
    )
    out = with_geo(out, da, info)
    out.encoding["_FillValue"] = NODATA
    return out


def simulate(
    da: xr.DataArray,
    model: KTextures | None = None,
    *,
    bands: Sequence[Any] | None = None,
    band_dim: Hashable = "band",
    nodata: float | None = None,
) -> xr.DataArray:
    """The model's simulation of the image: each pixel's class texture; lazy for Dask input.

    Textures are drawn from noise that depends only on the global pixel position and
    the model's seed, so the simulation is identical for any chunking.

    Parameters
    ----------
    da, model, bands, band_dim, nodata
        As for :func:`segment`.

    Returns
    -------
    xarray.DataArray
        ``float32``, same dims, coords and CRS as the (band-selected) input, in band
        units; NaN where the input is nodata.

    Raises
    ------
    NotFittedError, InputError, ModelMismatchError
        As for :func:`segment`.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> import xr_ktextures as xk
    >>> rng = np.random.default_rng(0)
    >>> values = rng.random((4, 64, 64), dtype=np.float32)
    >>> da = xr.DataArray(values, dims=("band", "y", "x"))
    >>> model = xk.fit(da, k=3, steps=2, patch_size=32, verbose=0)
    >>> sim = xk.simulate(da, model)
    >>> sim.dims, sim.dtype
    (('band', 'y', 'x'), dtype('float32'))
    """
    da, info = _prepare(da, model, band_dim, bands)
    assert model is not None
    data = _run(da, info, model, nodata, simulate=True)
    dims = (*info.other_dims, info.y_dim, info.x_dim, info.band_dim)
    out = xr.DataArray(
        data,
        dims=dims,
        coords=dict(da.coords),
        name="simulated",
        attrs={"long_name": "k-textures simulated image", "k": model.k, "model_id": model.model_id},
    )
    out = out.transpose(*da.dims)
    return with_geo(out, da, info)


def load_model(path: str | os.PathLike[str]) -> KTextures:
    """Load a model saved with ``model.save("name.keras")``.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.keras`` file written by :meth:`KTextures.save`.

    Returns
    -------
    KTextures
        The fitted model; it gives the same labels as the one saved.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    InputError
        If the file is not a saved k-textures model.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import xr_ktextures as xk
    >>> patches = np.random.default_rng(0).random((2, 32, 32, 4))
    >>> model = xk.KTextures(k=2, seed=0).fit(
    ...     patches, steps=1, batch_size=2, patch_size=32, verbose=0
    ... )
    >>> path = os.path.join(tempfile.mkdtemp(), "model.keras")
    >>> model.save(path)
    >>> xk.load_model(path).model_id == model.model_id
    True
    """
    import_backend_quietly(set_level=False)
    import keras

    from .model import KTextures

    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"no model file at {p!r}.")
    try:
        model = keras.saving.load_model(p, compile=False)
    except Exception as err:
        raise InputError(f"{p!r} is not a readable .keras model file: {err}") from err
    if not isinstance(model, KTextures):
        raise InputError(f"{p!r} holds a {type(model).__name__}, not a k-textures model.")
    return model
