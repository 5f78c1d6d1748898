"""Describing an input cube from its metadata: dims, bands, nodata, and output metadata.

Validation here reads metadata only (dims, coords, dtype, attrs, chunks); it never
touches ``.values``, so it is free on lazy cubes. The CRS and the affine transform are
:mod:`xr_ktextures.georef`'s. Nothing here knows about Keras.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from ._errors import InputError, ModelMismatchError
from .georef import find_crs, grid_transform

__all__ = [
    "X_NAMES",
    "Y_NAMES",
    "CubeInfo",
    "describe",
    "encodable_coords",
    "find_nodata",
    "label_attrs",
    "spatial_dims",
]

Y_NAMES = ("y", "latitude", "lat")
"""Names a y dim may have, in the order they are looked for."""
X_NAMES = ("x", "longitude", "lon")
"""Names an x dim may have."""


@dataclass(frozen=True)
class CubeInfo:
    """What the rest of the package needs to know about an input cube.

    Attributes
    ----------
    band_dim, y_dim, x_dim : hashable
        Names of the band and spatial dims.
    other_dims : tuple
        Every other dim (e.g. time), in input order; each step is segmented alike.
    band_names : tuple of str or None
        Band coordinate values, when the band dim has a coordinate.
    crs : object or None
        The CRS found on the input (rioxarray, stackstac or odc conventions).
    nodata : float or None
        The input's nodata value, if it declares one.
    topleft_coords : bool
        The x/y coords are pixel top-left corners (stackstac's default), not centres.
    """

    band_dim: Hashable
    y_dim: Hashable
    x_dim: Hashable
    other_dims: tuple[Hashable, ...]
    band_names: tuple[str, ...] | None
    crs: Any
    nodata: float | None
    topleft_coords: bool = False


def spatial_dims(da: xr.DataArray) -> tuple[Hashable, Hashable]:
    """The names of ``da``'s y and x dims (``y``/``latitude``/``lat``, ``x``/``longitude``/``lon``).

    Raises
    ------
    InputError
        If either is missing; the message lists the dims and how to rename them.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> spatial_dims(xr.DataArray(np.zeros((2, 3)), dims=("lat", "lon")))
    ('lat', 'lon')
    """
    return _find(da, Y_NAMES, "y"), _find(da, X_NAMES, "x")


def _find(da: xr.DataArray, names: Sequence[str], what: str) -> Hashable:
    for n in names:
        if n in da.dims:
            return n
    raise InputError(
        f"no {what} dimension: expected one of {list(names)} among the array's dims {list(da.dims)}. "
        "Rename your spatial dims, e.g. da.rename({'row': 'y', 'col': 'x'})."
    )


def _number(value: Any) -> float | None:
    """``value`` (a scalar or a one-per-band sequence) as a float; None when absent or not a number."""
    if value is None or isinstance(value, (str, bytes)):
        return None
    try:
        arr = np.asarray(value).ravel()
        return float(arr[0]) if arr.size else None
    except (TypeError, ValueError):
        return None


def find_nodata(da: xr.DataArray) -> float | None:
    """The nodata value the input declares, read the same way on every call.

    Looked up, in order, in the attrs (``_FillValue``, ``missing_value``, ``fill_value``,
    ``nodata``, ``nodatavals``: where ``rio.write_nodata(v)``, odc-stac and
    ``rioxarray.open_rasterio`` put it), then in the encoding (``_FillValue``,
    ``missing_value``: where ``rio.write_nodata(v, encoded=True)`` puts it) when the
    values are still in their encoded form (an integer dtype, or no scale/offset and the
    encoded dtype). ``da.rio.nodata`` is not used: it caches a NaN after its first look
    at an encoded nodata on integer data, so a second call would see no nodata at all.
    NaN counts as "no nodata value" (NaN pixels are nodata anyway).

    Examples
    --------
    >>> import numpy as np, rioxarray, xarray as xr
    >>> da = xr.DataArray(np.zeros((1, 2, 2), "int16"), dims=("band", "y", "x"))
    >>> find_nodata(da.rio.write_nodata(-9999, encoded=True)), find_nodata(da.rio.write_nodata(-1))
    (-9999.0, -1.0)
    """
    for key in ("_FillValue", "missing_value", "fill_value", "nodata", "nodatavals"):
        if key in da.attrs:
            nd = _number(da.attrs[key])
            if nd is not None:
                return None if np.isnan(nd) else nd
    enc = da.encoding
    encoded_form = np.issubdtype(da.dtype, np.integer) or (
        "scale_factor" not in enc and "add_offset" not in enc and np.dtype(enc.get("dtype", da.dtype)) == da.dtype
    )
    if encoded_form:
        for key in ("_FillValue", "missing_value"):
            nd = _number(enc.get(key))
            if nd is not None:
                return None if np.isnan(nd) else nd
    return None


def describe(
    da: Any,
    *,
    band_dim: Hashable = "band",
    bands: Sequence[Any] | None = None,
) -> tuple[xr.DataArray, CubeInfo]:
    """Validate an input cube from its metadata and select ``bands``; compute nothing.

    Parameters
    ----------
    da : xarray.DataArray or xarray.Dataset
        The cube; a Dataset of one variable per band is stacked along ``band_dim``.
    band_dim : hashable
        Name of the band dimension.
    bands : sequence, optional
        Band names to select, in order.

    Returns
    -------
    (xarray.DataArray, CubeInfo)
        The (possibly band-selected) DataArray and what was found about it.

    Raises
    ------
    InputError
        Not a DataArray, no band dim, no y/x dims, non-numeric dtype, empty axes,
        unknown or repeated band names.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.zeros((2, 3, 4)), dims=("band", "y", "x"), coords={"band": ["red", "nir"]})
    >>> _, info = describe(da, bands=["nir"])
    >>> info.band_names, info.y_dim, info.other_dims
    (('nir',), 'y', ())
    """
    if isinstance(da, xr.Dataset):
        da = dataset_to_bands(da, band_dim)
    if not isinstance(da, xr.DataArray):
        raise InputError(
            f"expected an xarray.DataArray (or a Dataset of one variable per band), got {type(da).__name__}; "
            "wrap an array with xr.DataArray(a, dims=('band', 'y', 'x'))."
        )
    y_dim, x_dim = spatial_dims(da)
    if isinstance(band_dim, str) and band_dim in (y_dim, x_dim):
        raise InputError(
            f"band_dim={band_dim!r} is a spatial dim of the image; band_dim names the dim that holds the "
            f"bands (channels), one of {[d for d in da.dims if d not in (y_dim, x_dim)]}."
        )
    if band_dim not in da.dims:
        scalar = (
            " (it is a scalar coordinate: select bands with a list, e.g. isel(band=[0]))"
            if band_dim in da.coords
            else ""
        )
        raise InputError(
            f"no band dimension {band_dim!r} in dims {list(da.dims)}{scalar}; pass band_dim=NAME, "
            f"or add one with da.expand_dims({band_dim!r}) for a single-band image."
        )
    if len(da.dims) != len(set(da.dims)):
        raise InputError(f"the array repeats a dim name: {list(da.dims)}.")
    bands = check_bands_arg(bands)
    dt = da.dtype
    if np.issubdtype(dt, np.bool_) or not (np.issubdtype(dt, np.integer) or np.issubdtype(dt, np.floating)):
        raise InputError(f"image values must be integers or floats, got dtype {dt}; cast with da.astype('float32').")
    empty = [d for d in da.dims if da.sizes[d] == 0]
    if empty:
        raise InputError(f"dimension(s) {empty} of the input are empty; nothing to segment.")
    names: tuple[str, ...] | None = None
    if band_dim in da.coords:
        names = tuple(str(v) for v in da[band_dim].values)
    if bands is not None:
        wanted = [str(b) for b in bands]
        if len(set(wanted)) != len(wanted):
            raise InputError(f"bands has repeated names: {wanted}.")
        if names is None:
            raise InputError(
                f"bands={wanted} selects by name but the {band_dim!r} dim has no coordinate; "
                f"assign one with da.assign_coords({band_dim}=[...])."
            )
        missing = [b for b in wanted if b not in names]
        if missing:
            raise InputError(f"band(s) {missing} not found; the {band_dim!r} coordinate holds {list(names)}.")
        da = da.isel({band_dim: [names.index(b) for b in wanted]})
        names = tuple(wanted)
    elif names is not None and len(set(names)) != len(names):
        names = None  # unnamed duplicates (e.g. all "band"): treat as positional
    others = tuple(d for d in da.dims if d not in (band_dim, y_dim, x_dim))
    _, topleft = grid_transform(da, y_dim, x_dim)  # also refuses a rotated or skewed transform
    info = CubeInfo(band_dim, y_dim, x_dim, others, names, find_crs(da), find_nodata(da), topleft)
    return da, info


def check_bands_arg(bands: Any) -> list[Any] | None:
    """``bands=`` as a list; refused when not a non-empty sequence of names (e.g. the string ``"red"``)."""
    if bands is None:
        return None
    if isinstance(bands, (str, bytes)):
        raise InputError(f"bands must be a list of band names, got the string {bands!r}; pass bands=[{bands!r}].")
    if not isinstance(bands, Iterable) or isinstance(bands, Mapping):
        raise InputError(f"bands must be a list of band names, e.g. ['red', 'nir'], got {bands!r}.")
    bands = np.asarray(bands).ravel().tolist() if isinstance(bands, (xr.DataArray, xr.Variable)) else list(bands)
    if not bands:
        raise InputError("bands=[] selects no band; pass the band names to use, or leave bands out for all.")
    return bands


def dataset_to_bands(ds: xr.Dataset, band_dim: Hashable = "band") -> xr.DataArray:
    """The image of a Dataset: its one variable that has a band dim, or its variables stacked as bands.

    A Dataset with one variable along ``band_dim`` (``xr.open_dataset(tif,
    engine="rasterio")`` gives ``band_data``) is that variable. Otherwise each variable
    is one band (odc-stac's layout), stacked along ``band_dim``. ``Dataset.to_array``
    drops each variable's attrs, and with them the ``nodata`` that odc-stac declares per
    band; the common nodata value is carried over here.

    Raises
    ------
    InputError
        If the Dataset is empty, several variables have a band dim, the variables have
        different dims, or different nodata.
    """
    names = list(ds.data_vars)
    if not names:
        raise InputError("the Dataset has no data variables; expected one variable per band.")
    banded = [n for n in names if band_dim in ds[n].dims]
    if len(banded) == 1:
        return ds[banded[0]]
    if banded:
        raise InputError(
            f"the Dataset has several variables along {band_dim!r}: {banded}; pass one of them, e.g. ds[{banded[0]!r}]."
        )
    dims = {ds[n].dims for n in names}
    if len(dims) != 1:
        raise InputError(
            f"the Dataset's variables have different dims {sorted(map(str, dims))}; "
            "select the band variables, e.g. ds[['red', 'green', 'blue', 'nir']]."
        )
    nodatas = {find_nodata(ds[n]) for n in names}
    if len(nodatas) > 1:
        raise InputError(f"the band variables declare different nodata values {sorted(map(str, nodatas))}.")
    da = ds.to_array(band_dim)
    nd = nodatas.pop()
    if nd is not None:
        da.attrs["nodata"] = nd
    return da


def warn_if_topleft(info: CubeInfo) -> None:
    """Warn (before any compute) that top-left coords make rioxarray's transform half a pixel off."""
    if info.topleft_coords:
        import warnings

        warnings.warn(
            "the input's x/y coords are pixel top-left corners (stackstac's default xy_coords='topleft'); "
            "the output keeps them so it aligns with the input, but rioxarray reads coords as pixel "
            "centres, so .rio.transform() and files written with .rio.to_raster() would be shifted by "
            "half a pixel. Load with stackstac.stack(..., xy_coords='center') to get exact georeferencing.",
            UserWarning,
            stacklevel=3,
        )


def check_model_fits(info: CubeInfo, n_bands: int, model: Any) -> None:
    """Refuse data whose bands differ from what ``model`` was fitted on (metadata only)."""
    if n_bands != model.bands:
        raise ModelMismatchError(
            f"the model was fitted on {model.bands} bands {model.band_names or ''} but the data has "
            f"{n_bands}; select the same bands, e.g. bands={model.band_names or '[...]'}."
        )
    if model.band_names is not None and info.band_names is not None and list(info.band_names) != model.band_names:
        raise ModelMismatchError(
            f"the model was fitted on bands {model.band_names} but the data has {list(info.band_names)}; "
            f"pass bands={model.band_names} to use the same bands in the same order."
        )


def label_attrs(k: int, model_id: str, nodata: int) -> dict[str, Any]:
    """CF-style attributes of a label array.

    Parameters
    ----------
    k : int
        Number of classes.
    model_id : str
        The model's id.
    nodata : int
        The nodata label.

    Returns
    -------
    dict
        ``long_name``, ``flag_values``, ``flag_meanings``, ``nodata``, ``k``, ``model_id``.

    Examples
    --------
    >>> label_attrs(2, "abc", 255)["flag_meanings"]
    'class_0 class_1'
    """
    return {
        "long_name": "k-textures class",
        "flag_values": np.arange(k, dtype=np.uint8),
        "flag_meanings": " ".join(f"class_{i}" for i in range(k)),
        "nodata": nodata,
        "k": k,
        "model_id": model_id,
    }


def encodable_coords(out: xr.DataArray) -> xr.DataArray:
    """``out`` with its object-dtype coords made writable by ``to_zarr``/``to_netcdf``.

    stackstac attaches STAC properties as object-dtype coords (strings, numbers,
    ``None``, lists, dicts), which Zarr cannot encode. Coords of only strings become
    unicode; of only numbers (``None`` as NaN) numeric; any other is dropped. Only the
    output is changed, never the user's cube.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.zeros(3), dims="time", coords={
    ...     "id": ("time", np.array(["a", "b", "c"], object)),
    ...     "cloud": ("time", np.array([1, None, 2.5], object)),
    ...     "bands": ("time", np.array([{"a": 1}, None, None], object))})
    >>> out = encodable_coords(da)
    >>> out["id"].dtype.kind, out["cloud"].dtype.kind, "bands" in out.coords
    ('U', 'f', False)
    """
    fixed: dict[Hashable, Any] = {}
    drop = []
    for name, coord in out.coords.items():
        if coord.dtype != object or coord.chunks is not None:  # a lazy coord is left alone (never computed here)
            continue
        flat = list(coord.values.ravel())
        if flat and all(isinstance(v, str) for v in flat):
            fixed[name] = coord.variable.copy(data=coord.values.astype(str))
        elif flat and all(
            v is None or (isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool))
            for v in flat
        ):
            floats = any(v is None or isinstance(v, (float, np.floating)) for v in flat)
            values = np.array([np.nan if v is None else v for v in flat], float if floats else np.int64)
            fixed[name] = coord.variable.copy(data=values.reshape(coord.shape))
        else:
            drop.append(name)
    if not fixed and not drop:
        return out
    return out.drop_vars(drop).assign_coords(fixed)
