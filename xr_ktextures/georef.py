"""Georeferencing of DataArrays: the CRS wherever a loader put it, the affine transform of the
y/x grid, and writing both onto outputs the rioxarray way. Metadata only; nothing here
knows about Keras. :mod:`xr_ktextures.geo` (dims, bands, nodata) builds on it.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from ._errors import InputError

if TYPE_CHECKING:
    from .geo import CubeInfo

__all__ = ["find_crs", "grid_transform", "reversed_axes", "with_geo"]


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


def _affine(value: Any) -> Any:
    """An ``Affine`` from a loader's ``transform`` attr (Affine, or 6 or 9 numbers); None if not one."""
    from affine import Affine

    if value is None:
        return None
    try:
        vals = [float(v) for v in (tuple(value) if isinstance(value, Affine) else value)]
    except (TypeError, ValueError):
        return None
    return Affine(*vals[:6]) if len(vals) in (6, 9) and np.isfinite(vals[:6]).all() else None


def _geotransform(da: xr.DataArray) -> Any:
    """The GDAL ``GeoTransform`` stored on rioxarray's grid-mapping coord, as an ``Affine``; None if absent."""
    from affine import Affine

    name = da.encoding.get("grid_mapping", da.attrs.get("grid_mapping", "spatial_ref"))
    coord = da.coords.get(name) if isinstance(name, str) else None
    text = None if coord is None else coord.attrs.get("GeoTransform")
    if not isinstance(text, str):
        return None
    try:
        vals = [float(v) for v in text.split()]
    except ValueError:
        return None
    return Affine.from_gdal(*vals) if len(vals) == 6 and np.isfinite(vals).all() else None


def _regular_axis(c: xr.DataArray) -> bool:
    v = c.values
    if c.ndim != 1 or v.size < 2 or not np.issubdtype(v.dtype, np.number):
        return False
    step = np.diff(v.astype(np.float64))
    return bool(step[0] != 0 and np.allclose(step, step[0], rtol=1e-6, atol=0))


def grid_transform(da: xr.DataArray, y_dim: Hashable, x_dim: Hashable) -> tuple[Any, bool]:
    """The affine transform of ``da``'s y/x grid, and whether its coords are pixel top-left corners.

    The coords decide where the pixels are. A declared transform (a loader's
    ``attrs["transform"]``, as stackstac's, or rioxarray's ``GeoTransform``) is used only
    when it agrees with them: same resolution, and the coords sit on its pixel centres
    (or, stackstac's default, on its top-left corners) a whole number of pixels from its
    origin; it is then moved to the coords' first pixel, so a cropped cube gets its own
    origin. Otherwise the transform is derived from the coords (any y/x dim names,
    e.g. ``lat``/``lon``). Without coords, the declared transform is kept as it is.

    Returns
    -------
    (affine.Affine or None, bool)
        None when no transform can be known: single-pixel or irregular coords, or no
        coords and nothing declared.

    Raises
    ------
    InputError
        If a declared transform is rotated or skewed.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.zeros((3, 4)), dims=("lat", "lon"),
    ...                   coords={"lat": [1.5, 0.5, -0.5], "lon": [10.5, 11.5, 12.5, 13.5]})
    >>> tuple(grid_transform(da, "lat", "lon")[0])[:6]
    (1.0, 0.0, 10.0, 0.0, -1.0, 2.0)
    """
    from affine import Affine

    declared = [t for t in (_affine(da.attrs.get("transform")), _geotransform(da)) if t is not None]
    for t in declared:
        if t.b != 0 or t.d != 0:
            raise InputError(
                f"the input's transform is rotated or skewed ({tuple(t)[:6]}); labels are written on a "
                "north-up grid only. Warp the input first, e.g. da.rio.reproject(da.rio.crs)."
            )
    if x_dim not in da.coords or y_dim not in da.coords:
        return (declared[-1] if declared else None), False
    if not (_regular_axis(da[x_dim]) and _regular_axis(da[y_dim])):
        return None, False
    xs, ys = da[x_dim].values.astype(np.float64), da[y_dim].values.astype(np.float64)
    dx, dy = (xs[-1] - xs[0]) / (xs.size - 1), (ys[-1] - ys[0]) / (ys.size - 1)
    for t in declared:
        if not (np.isclose(t.a, dx, rtol=1e-6, atol=0) and np.isclose(t.e, dy, rtol=1e-6, atol=0)):
            continue
        for offset, topleft in ((0.5, False), (0.0, True)):
            kx, ky = (xs[0] - t.c) / t.a - offset, (ys[0] - t.f) / t.e - offset
            if abs(kx - round(kx)) < 1e-6 and abs(ky - round(ky)) < 1e-6:
                return Affine(t.a, 0.0, t.c + round(kx) * t.a, 0.0, t.e, t.f + round(ky) * t.e), topleft
    return Affine(dx, 0.0, xs[0] - dx / 2, 0.0, dy, ys[0] - dy / 2), False


def reversed_axes(da: xr.DataArray, info: CubeInfo) -> tuple[bool, bool]:
    """Whether the y coords ascend (south up) and whether the x coords descend (east left).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.zeros((1, 2, 2)), dims=("band", "y", "x"), coords={"y": [0, 1], "x": [0, 1]})
    >>> from xr_ktextures.geo import describe
    >>> reversed_axes(da, describe(da)[1])
    (True, False)
    """

    def ascending(dim: Hashable) -> bool | None:
        if dim not in da.coords:  # da[dim] would be xarray's 0, 1, 2, ... index: no order to read
            return None
        c = da.coords[dim]
        if c.ndim != 1 or c.size < 2 or not np.issubdtype(c.dtype, np.number):
            return None
        return bool(c.values[-1] > c.values[0])

    return ascending(info.y_dim) is True, ascending(info.x_dim) is False


def with_geo(out: xr.DataArray, source: xr.DataArray, info: CubeInfo) -> xr.DataArray:
    """Write the source's CRS and transform onto ``out`` the rioxarray way (never mutates ``source``).

    The source's own grid-mapping coord (which may carry a stale ``GeoTransform``) is
    replaced by a fresh one; the transform is :func:`grid_transform`'s, so it matches the
    coords of ``out`` (cropped cubes, ``lat``/``lon`` dims included).

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
    >>> from xr_ktextures.geo import describe
    >>> _, info = describe(src)
    >>> with_geo(src.isel(band=0, drop=True), src, info).rio.crs.to_epsg()
    32618
    """
    stale = [n for n in ("spatial_ref", source.encoding.get("grid_mapping")) if isinstance(n, str) and n in out.coords]
    out = out.drop_vars([n for n in stale if out[n].ndim == 0])
    out.encoding.pop("grid_mapping", None)
    out = out.rio.set_spatial_dims(x_dim=info.x_dim, y_dim=info.y_dim, inplace=False)
    if info.crs is not None:
        out = out.rio.write_crs(info.crs, inplace=False)
        transform, _ = grid_transform(source, info.y_dim, info.x_dim)
        if transform is not None:
            out = out.rio.write_transform(transform, inplace=False)
    return out
