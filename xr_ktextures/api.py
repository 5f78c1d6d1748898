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

from ._errors import InputError, KTexturesError, ModelNotFoundError, NotFittedError
from ._nodata import NODATA
from ._progress import log_timing, logger, stage_messages, training_display
from ._quiet import import_backend_quietly
from ._validate import check_int, check_tile, is_int
from .chunks import apply_model
from .devices import normalize_device
from .geo import CubeInfo, check_bands_arg, check_model_fits, describe, encodable_coords, label_attrs, warn_if_topleft
from .georef import reversed_axes, with_geo
from .options import FLAT_NAMES, check_k, moved_option_message, new_place
from .sampling import check_image_size, sample_patches

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
    steps: int = 60,
    batch_size: int = 4,
    seed: int = 0,
    verbose: int | str = "auto",
    **model_options: Any,
) -> KTextures:
    """Fit a k-textures model on a random sample of the cube's chunks.

    Only the sampled chunk windows are computed (in one ``dask.compute``). Patches
    with at most 5 % NaN or nodata pixels are taken (where every window has more, up
    to half, with a warning); those gaps are filled from the valid values around them
    for training, as :func:`segment` fills them for their neighbours, and left out of
    the clustering.

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
        are kept once. Windows with at most 5 % nodata/NaN are taken first, else up to
        half (with a warning); where none has even that (an image barely larger than
        ``sample_size`` with a wide NaN edge), smaller windows, down to ``patch_size``,
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
        Passed to :class:`KTextures`: ``architecture``, and the grouped options
        ``mask=MaskOptions(...)``, ``textures=TextureOptions(...)``,
        ``loss=LossOptions(...)`` (:mod:`xr_ktextures.options`; plain mappings work too).

    Returns
    -------
    KTextures
        The fitted model.

    Raises
    ------
    InputError
        Bad dims, dtype, band names, k out of range, image smaller than a patch, any
        bad option value (``steps``, ``batch_size``, ``patch_size``, ``seed``,
        ``n_chunks``, ...), an unknown model option, or a sample with no valid patch.
        Raised before any chunk is computed (the model is built first), except the
        last, which needs the sample.
    WeightsNotFoundError
        ``loss=LossOptions(extractor="vgg16")`` without its weights; also before any chunk is computed.

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
    check_k(k)
    _check_fit_options(n_chunks, patches_per_chunk, patch_size, steps, batch_size, seed, verbose)
    da, info = describe(da, band_dim=band_dim, bands=bands)
    if sample_size is None:
        sample_size = max(patch_size, min(512, da.sizes[info.y_dim], da.sizes[info.x_dim]))
    elif not is_int(sample_size) or sample_size < patch_size:
        raise InputError(f"sample_size must be an integer >= patch_size={patch_size}, got {sample_size!r}.")
    check_image_size(da.sizes[info.y_dim], da.sizes[info.x_dim], int(sample_size), patch_size)
    # the model is built (and its options checked) before any chunk is computed
    model = _new_model(k, da.sizes[info.band_dim], info.band_names, seed, model_options)
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
            # the context merge sees a place's looks on several dates side by side
            dates_together=model.network.ablation.merges_by_context,
        )
        log_timing("sample", t0)
        logger.info(
            "fit: sampled %d patches of %d px in %.1f s", len(patches), patches.shape[1], time.perf_counter() - t0
        )
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


def _check_fit_options(
    n_chunks: Any, patches_per_chunk: Any, patch_size: Any, steps: Any, batch_size: Any, seed: Any, verbose: Any
) -> None:
    """Refuse bad fit options from their values alone, before anything is read."""
    for name, v, low in (("n_chunks", n_chunks, 1), ("patches_per_chunk", patches_per_chunk, 1),
                         ("steps", steps, 0), ("batch_size", batch_size, 1)):  # fmt: skip
        check_int(name, v, low)
    if not is_int(patch_size) or patch_size < 32 or patch_size % 16:
        raise InputError(f"patch_size must be a multiple of 16 and >= 32 (e.g. 32, 48, 64), got {patch_size!r}.")
    check_int("seed", seed, 0, 2**32 - 1, shown_maximum="2**32 - 1")
    if isinstance(verbose, (list, dict, set)) or verbose not in (0, 1, 2, "auto"):
        raise InputError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}.")


_NOT_OPTIONS = ("self", "k", "bands", "band_names", "seed", "moved")


def _new_model(k: int, bands: int, band_names: Any, seed: int, options: dict[str, Any]) -> KTextures:
    """An unfitted KTextures; unknown or bad options raise :class:`InputError` (others of ours pass through)."""
    import difflib
    import inspect

    from .model import KTextures

    params = inspect.signature(KTextures.__init__).parameters
    known = [p for p in params if p not in _NOT_OPTIONS and not p.startswith("_")]
    moved = [name for name in options if name in FLAT_NAMES]
    if moved:
        raise InputError(f"fit() got 0.2 model options: {moved_option_message(moved)}")
    for name in options:
        if name not in params or name in _NOT_OPTIONS:
            close = difflib.get_close_matches(name, [*known, *FLAT_NAMES], n=1)
            hint = ""
            if close:
                where = f" (now {new_place(close[0])})" if close[0] in FLAT_NAMES else ""
                hint = f" Did you mean {close[0]!r}{where}?"
            raise InputError(f"fit() got an unknown option {name!r}.{hint} Model options are {sorted(known)}.")
    try:
        return KTextures(k=k, bands=bands, band_names=band_names, seed=seed, **options)
    except KTexturesError:
        raise
    except (ValueError, TypeError) as err:
        raise InputError(str(err)) from err


def _check_nodata(nodata: Any) -> float | None:
    if nodata is None:
        return None
    if isinstance(nodata, (bool, np.bool_)) or not isinstance(nodata, (int, float, np.integer, np.floating)):
        raise InputError(f"nodata must be a number (the input value that marks missing pixels), got {nodata!r}.")
    return None if np.isnan(nodata) else float(nodata)


def _prepare(da: Any, model: Any, band_dim: Hashable, bands: Sequence[Any] | None) -> tuple[xr.DataArray, CubeInfo]:
    import_backend_quietly(set_level=False)
    from .model import KTextures

    if model is None:
        raise NotFittedError("no model: pass model=... (from fit() or load_model()), or call da.ktex.fit() first.")
    if not isinstance(model, KTextures):
        hint = " (a path? load it with xk.load_model(path))" if isinstance(model, (str, os.PathLike)) else ""
        raise InputError(f"model must be a fitted KTextures model, got {type(model).__name__}{hint}.")
    if not model.fitted:
        raise NotFittedError("the model is not fitted; call fit() first or load a saved model.")
    bands = check_bands_arg(bands)
    if bands is None and model.band_names is not None and band_dim in getattr(da, "dims", ()):
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
    nd = info.nodata if nodata is None else _check_nodata(nodata)
    # the model sees every image north up, west left, whatever the storage order of its coords,
    # so a place gets the same label from an ascending-y (or descending-x) copy of the cube
    flip_y, flip_x = reversed_axes(da, info)
    flip = (slice(None, None, -1) if flip_y else slice(None), slice(None, None, -1) if flip_x else slice(None))
    data = arr.data[(..., *flip, slice(None))] if flip_y or flip_x else arr.data
    out = apply_model(data, model, output="simulated" if simulate else "labels", nodata=nd, device=device, tile=tile)
    if flip_y or flip_x:
        out = out[(..., *flip, slice(None))] if simulate else out[(..., *flip)]
    return out


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
        Input value to treat as missing (default: the input's own declared nodata, read
        from its attrs or encoding; NaN pixels are always missing).
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
        Bad dims, dtype, bands (a list of names, not a string), ``band_dim``, ``nodata``
        (a number), device name or tile, a rotated/skewed transform, or bands that differ
        from the model's; all before anything is computed.
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
    normalize_device(device)  # a misspelt device or tile fails here, not on the workers
    check_tile(tile)
    _check_nodata(nodata)
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
    out = encodable_coords(with_geo(out, da, info))
    # rioxarray's convention for unmasked data: labels.rio.nodata is 255 (kept by reproject, GeoTIFF, Zarr)
    return out.rio.write_nodata(NODATA, encoded=False, inplace=False)


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
    _check_nodata(nodata)
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
    return encodable_coords(with_geo(out, da, info))


def load_model(path: str | os.PathLike[str]) -> KTextures:
    """Load a model saved with ``model.save("name.keras")``.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.keras`` file written by :meth:`KTextures.save` (0.2.0 files included).

    Returns
    -------
    KTextures
        The fitted model; it gives the same labels as the one saved.

    Raises
    ------
    ModelNotFoundError
        If ``path`` does not exist (a ``FileNotFoundError`` too).
    InputError
        If ``path`` is not a path, or the file is not a saved k-textures model.

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
    from .network import KTexturesNet

    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"path must be a file path (str or os.PathLike), got {type(path).__name__}.")
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise ModelNotFoundError(f"no model file at {p!r}; save one with model.save('name.keras').")
    try:
        network = keras.saving.load_model(p, compile=False)
    except KTexturesError:
        raise
    except Exception as err:
        raise InputError(f"{p!r} is not a readable .keras model file: {err}") from err
    if not isinstance(network, KTexturesNet):
        raise InputError(f"{p!r} holds a {type(network).__name__}, not a k-textures model.")
    return KTextures.from_network(network)
