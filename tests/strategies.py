"""Hypothesis strategies for image cubes, in the manner of stackstac's ``testing/strategies.py``.

Each strategy draws one aspect (dim order, chunking, dtype, nodata placement and declaration,
coords direction); :func:`cubes` draws a whole georeferenced cube together with what a correct
result must show (:class:`Drawn`). Used by the seam, nodata and georeferencing tests.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as dsa
import numpy as np
import rioxarray  # noqa: F401
import xarray as xr
from affine import Affine
from hypothesis import strategies as st

BANDS = ("red", "green", "blue", "nir")

DTYPES = ("float32", "float64", "float16", ">f4", "uint8", "uint16", "int16", ">i2", "int32")
"""Dtypes a cube may come in (big-endian and float16 included)."""

NODATA_WAYS = ("none", "nan", "attrs", "rio", "rio-encoded", "encoding", "fill-attr")
"""How a cube declares its missing pixels: none, NaN values, attrs["nodata"], rio.write_nodata
(encoded=False / True), encoding["_FillValue"], attrs["_FillValue"]."""


@dataclass(frozen=True)
class Drawn:
    """A drawn cube and what any correct result must show for it.

    Attributes
    ----------
    cube : xarray.DataArray
        The input, numpy- or Dask-backed.
    missing : numpy.ndarray
        ``(y, x)`` bool (plus leading dims): pixels where any band is nodata.
    transform : affine.Affine
        The grid's true transform (pixel centres are the coords).
    chunks : dict
        The chunking applied (empty when numpy-backed).
    """

    cube: xr.DataArray
    missing: np.ndarray
    transform: Affine
    chunks: dict[Hashable, Any]


@st.composite
def chunkings(draw: st.DrawFn, n: int, min_chunk: int = 1) -> tuple[int, ...]:
    """A ragged chunking of ``n`` (any sizes >= ``min_chunk`` but the last summing to ``n``)."""
    sizes: list[int] = []
    left = n
    while left:
        c = draw(st.integers(min(min_chunk, left), left))
        sizes.append(c)
        left -= c
    return tuple(sizes)


def dim_orders(extra: Sequence[str] = ()) -> st.SearchStrategy[tuple[str, ...]]:
    """Any order of the band, y and x dims (and ``extra`` dims)."""
    return st.permutations(("band", "y", "x", *extra)).map(tuple)


def dtypes() -> st.SearchStrategy[str]:
    """A numeric dtype from :data:`DTYPES`."""
    return st.sampled_from(DTYPES)


@st.composite
def nodata_masks(draw: st.DrawFn, ny: int, nx: int) -> np.ndarray:
    """Where nodata falls: nowhere, scattered pixels, a whole row or column, a corner block, an edge strip."""
    kind = draw(st.sampled_from(["none", "pixels", "row", "column", "corner", "edge"]))
    mask = np.zeros((ny, nx), bool)
    if kind == "pixels":
        for _ in range(draw(st.integers(1, 5))):
            mask[draw(st.integers(0, ny - 1)), draw(st.integers(0, nx - 1))] = True
    elif kind == "row":
        mask[draw(st.integers(0, ny - 1)), :] = True
    elif kind == "column":
        mask[:, draw(st.integers(0, nx - 1))] = True
    elif kind == "corner":
        mask[: draw(st.integers(1, ny)), : draw(st.integers(1, nx))] = True
    elif kind == "edge":
        mask[:, nx - draw(st.integers(1, nx)) :] = True
    return mask


@st.composite
def cubes(
    draw: st.DrawFn,
    *,
    ny: st.SearchStrategy[int] | None = None,
    nx: st.SearchStrategy[int] | None = None,
    dtype: st.SearchStrategy[str] | None = None,
    nodata: st.SearchStrategy[str] | None = None,
    order: st.SearchStrategy[tuple[str, ...]] | None = None,
    lazy: st.SearchStrategy[bool] | None = None,
    min_chunk: int = 1,
) -> Drawn:
    """A 4-band EPSG:32618 cube (bands named as in ``tests/conftest.py``) with drawn layout.

    Draws the size, dtype, dim order, coords direction (y and x ascending or descending),
    nodata placement and the way it is declared, and a ragged Dask chunking or none.
    Default sizes are 30 to 64 px (larger than the default model's 27 px halo).
    """
    h, w = draw(ny or st.integers(30, 64)), draw(nx or st.integers(30, 64))
    dt = np.dtype(draw(dtype if dtype is not None else dtypes()))
    way = draw(nodata if nodata is not None else st.sampled_from(NODATA_WAYS))
    if way == "nan" and dt.kind != "f":
        way = "attrs"
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    values = rng.normal(100, 5, (4, h, w))
    values[..., w // 2 :] += rng.normal(0, 40, (4, h, w))[..., w // 2 :]
    values = np.clip(values, 1, 250)
    missing = draw(nodata_masks(h, w)) if way != "none" else np.zeros((h, w), bool)
    band = draw(st.integers(0, 3))  # nodata in one band is enough
    fill = np.nan if way == "nan" else 0
    values[band][missing] = fill
    data = values.astype(dt)
    sy, sx = draw(st.sampled_from([-5.0, 5.0])), draw(st.sampled_from([5.0, -5.0]))
    y0, x0 = 2050000.0, 790000.0
    ys, xs = y0 + sy * (np.arange(h) + 0.5), x0 + sx * (np.arange(w) + 0.5)
    cube = xr.DataArray(data, dims=("band", "y", "x"), coords={"band": list(BANDS), "y": ys, "x": xs})
    cube = cube.rio.write_crs("EPSG:32618")
    if way == "attrs":
        cube.attrs["nodata"] = 0
    elif way == "rio":
        cube = cube.rio.write_nodata(0)
    elif way == "rio-encoded":
        cube = cube.rio.write_nodata(0, encoded=True)
    elif way == "encoding":
        cube.encoding["_FillValue"] = dt.type(0)
    elif way == "fill-attr":
        cube.attrs["_FillValue"] = dt.type(0)
    if way in ("rio-encoded", "encoding") and dt.kind == "f":
        cube.encoding["dtype"] = dt  # stored as is, not decoded: the fill value is a pixel value
    dims = draw(order if order is not None else dim_orders())
    cube = cube.transpose(*dims)
    chunks: dict[Hashable, Any] = {}
    if draw(lazy if lazy is not None else st.booleans()):
        chunks = {"y": draw(chunkings(h, min_chunk)), "x": draw(chunkings(w, min_chunk)), "band": (4,)}
        cube = cube.copy(data=dsa.from_array(cube.values, chunks=tuple(chunks[d] for d in cube.dims)))
    transform = Affine(sx, 0.0, x0, 0.0, sy, y0)
    return Drawn(cube, missing, transform, chunks)
