"""Geo bookkeeping for DataArrays: dims, bands, CRS, transform, nodata, output metadata.

Validation here reads metadata only (dims, coords, dtype, attrs, chunks); it never
touches ``.values``, so it is free on lazy cubes. Nothing here knows about Keras.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from ._errors import InputError, ModelMismatchError

__all__ = ["CubeInfo", "describe", "invalid_pixels", "label_attrs", "with_geo"]

_Y_NAMES = ("y", "latitude", "lat")
_X_NAMES = ("x", "longitude", "lon")


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


def _find(da: xr.DataArray, names: Sequence[str], what: str) -> Hashable:
    for n in names:
        if n in da.dims:
            return n
    raise InputError(
        f"no {what} dimension: expected one of {list(names)} among the array's dims {list(da.dims)}. "
        "Rename your spatial dims, e.g. da.rename({'row': 'y', 'col': 'x'})."
    )


def find_crs(da: xr.DataArray) -> Any:
    """The CRS wherever a loader put it: rioxarray's ``spatial_ref``, stackstac's ``crs``/``epsg``, odc."""
    try:
        crs = da.rio.crs
    except Exception:
        crs = None
    if crs is not None:
        return crs
    from rasterio.crs import CRS

    for source in (da.attrs, {n: c.item() for n, c in da.coords.items() if c.ndim == 0}):
        for key in ("crs", "spatial_ref", "epsg", "proj:epsg"):
            value = source.get(key)
            if value is None or (isinstance(value, float) and np.isnan(value)):
                continue
            try:
                return CRS.from_epsg(int(value)) if isinstance(value, (int, np.integer)) else CRS.from_user_input(value)
            except Exception:
                continue
    return None


def find_nodata(da: xr.DataArray) -> float | None:
    """The nodata value the input declares (rioxarray, ``_FillValue`` or ``nodata`` attrs)."""
    try:
        nd = da.rio.nodata
    except Exception:
        nd = None
    if nd is None:
        for key in ("nodata", "_FillValue"):
            if key in da.attrs:
                nd = da.attrs[key]
                break
        else:
            nd = da.encoding.get("_FillValue")
    if nd is None:
        return None
    nd = float(np.asarray(nd).ravel()[0]) if np.ndim(nd) else float(nd)
    return None if np.isnan(nd) else nd


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
            f"expected an xarray.DataArray (or a Dataset of one variable per band), got {type(da).__name__}."
        )
    if band_dim not in da.dims:
        raise InputError(
            f"no band dimension {band_dim!r} in dims {list(da.dims)}; pass band_dim=NAME, "
            f"or add one with da.expand_dims({band_dim!r}) for a single-band image."
        )
    y_dim, x_dim = _find(da, _Y_NAMES, "y"), _find(da, _X_NAMES, "x")
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
    info = CubeInfo(band_dim, y_dim, x_dim, others, names, find_crs(da), find_nodata(da), _topleft(da, y_dim, x_dim))
    return da, info


def dataset_to_bands(ds: xr.Dataset, band_dim: Hashable = "band") -> xr.DataArray:
    """Stack a Dataset of one variable per band (odc-stac's layout) along ``band_dim``.

    ``Dataset.to_array`` drops each variable's attrs, and with them the ``nodata`` that
    odc-stac declares per band; the common nodata value is carried over here.

    Raises
    ------
    InputError
        If the Dataset is empty, its variables have different dims, or different nodata.
    """
    names = list(ds.data_vars)
    if not names:
        raise InputError("the Dataset has no data variables; expected one variable per band.")
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


def _topleft(da: xr.DataArray, y_dim: Hashable, x_dim: Hashable) -> bool:
    """True when coords sit on the corners of the loader's own ``transform`` (stackstac's default)."""
    t = da.attrs.get("transform")
    if t is None or x_dim not in da.coords or y_dim not in da.coords or da.sizes[x_dim] == 0:
        return False
    try:
        a, c, e, f = float(t[0]), float(t[2]), float(t[4]), float(t[5])
        x0, y0 = float(da[x_dim].values[0]), float(da[y_dim].values[0])
    except (TypeError, ValueError, IndexError):
        return False
    return abs(x0 - c) < 1e-6 * abs(a) and abs(y0 - f) < 1e-6 * abs(e)


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


def source_transform(da: xr.DataArray) -> Any:
    """The affine transform of ``da``: the loader's own ``transform`` attribute first
    (stackstac's coords are pixel *top-left* corners by default, so deriving it from
    coords would shift it by half a pixel), then rioxarray's (``spatial_ref`` or coords)."""
    from affine import Affine

    t = da.attrs.get("transform")
    if t is not None:
        try:
            vals = [float(v) for v in (t if not isinstance(t, Affine) else tuple(t))]
            return Affine(*vals[:6])
        except (TypeError, ValueError):
            pass
    try:
        return da.rio.transform(recalc=False)
    except Exception:
        return None


def with_geo(out: xr.DataArray, source: xr.DataArray, info: CubeInfo) -> xr.DataArray:
    """Write the source's CRS and transform onto ``out`` the rioxarray way (never mutates ``source``).

    Parameters
    ----------
    out : xarray.DataArray
        The new array (labels or simulation) on the source's y/x grid.
    source : xarray.DataArray
        The input it was computed from.
    info : CubeInfo
        The input's description.

    Returns
    -------
    xarray.DataArray
        ``out`` with ``spatial_ref`` (CRS and GeoTransform) written.

    Examples
    --------
    >>> import numpy as np, rioxarray, xarray as xr
    >>> src = xr.DataArray(np.zeros((1, 2, 2)), dims=("band", "y", "x"),
    ...                    coords={"y": [1.5, 0.5], "x": [0.5, 1.5]}).rio.write_crs(32618)
    >>> _, info = describe(src)
    >>> with_geo(src.isel(band=0, drop=True), src, info).rio.crs.to_epsg()
    32618
    """
    out = out.rio.set_spatial_dims(x_dim=info.x_dim, y_dim=info.y_dim, inplace=False)
    if info.crs is not None:
        out = out.rio.write_crs(info.crs, inplace=False)
        transform = source_transform(source)
        if transform is not None and out.sizes[info.x_dim] > 1 and out.sizes[info.y_dim] > 1:
            out = out.rio.write_transform(transform, inplace=False)
    return out
