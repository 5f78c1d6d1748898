"""Georeferencing and nodata right on disk: rio.nodata, encoded nodata, lat/lon, crops, STAC coords, Zarr.

One test (or a few) per defect of issue 16; the fuzzed checks are in ``test_adversarial.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import rioxarray
import xarray as xr
from affine import Affine

import xr_ktextures as xk
from xr_ktextures import NODATA, InputError
from xr_ktextures.geo import describe, find_nodata
from xr_ktextures.writing import open_zarr

from .conftest import make_cube


def _zarr(labels: xr.DataArray, path) -> xr.DataArray:
    labels.to_dataset(name="labels").to_zarr(path)
    return xr.open_zarr(path, decode_coords="all", mask_and_scale=False)["labels"]


# 1 ----------------------------------------------------------------------------------------------------------------
def test_labels_declare_255_as_rio_nodata_through_reproject_geotiff_and_zarr(cube, model, tmp_path) -> None:
    holes = cube.copy()
    holes[:, :5, :5] = np.nan
    labels = xk.segment(holes, model)
    assert labels.rio.nodata == NODATA and labels.rio.encoded_nodata is None
    assert labels.attrs["nodata"] == NODATA
    warped = labels.rio.reproject("EPSG:4326")
    assert warped.rio.nodata == NODATA and warped.dtype == np.uint8
    assert (warped.values == NODATA).any() and set(np.unique(warped.values)) <= {0, 1, 2, NODATA}
    labels.rio.to_raster(tmp_path / "l.tif")
    back = rioxarray.open_rasterio(tmp_path / "l.tif")
    assert back.rio.nodata == NODATA
    np.testing.assert_array_equal(back.values[0], labels.values)
    z = _zarr(labels, tmp_path / "plain.zarr")
    assert z.rio.nodata == NODATA and z.dtype == np.uint8
    xk.write_zarr(labels.chunk({"y": 36, "x": 44}), tmp_path / "win.zarr")
    w = open_zarr(tmp_path / "win.zarr")
    assert w.rio.nodata == NODATA and w.rio.crs == cube.rio.crs
    np.testing.assert_array_equal(w.values, labels.values)


# 2 ----------------------------------------------------------------------------------------------------------------
def test_an_encoded_int16_nodata_gives_the_same_labels_on_every_call(cube, model) -> None:
    ints = cube.astype("int16")
    ints[:, 3:6, 3:6] = -9999
    ints = ints.rio.write_nodata(-9999, encoded=True)
    with pytest.raises(ValueError, match="NaN"):  # rioxarray's own lookup fails, then caches a NaN
        _ = ints.rio.nodata
    first, second = xk.segment(ints, model).values, xk.segment(ints, model).values
    np.testing.assert_array_equal(first, second)
    assert (first[3:6, 3:6] == NODATA).all() and (first != NODATA).sum() == first.size - 9
    assert describe(ints)[1].nodata == -9999 == describe(ints)[1].nodata  # what fit samples with, too


def test_fit_samples_around_an_encoded_nodata_after_rioxarray_cached_its_nan() -> None:
    from xr_ktextures.sampling import sample_patches

    ints = make_cube(96, 96).astype("int16")
    ints[:, :, 70:] = -9999
    ints = ints.rio.write_nodata(-9999, encoded=True)
    with pytest.raises(ValueError, match="NaN"):
        _ = ints.rio.nodata
    for _ in range(2):  # the same on every call
        da, info = describe(ints)
        patches = sample_patches(da, info, n_chunks=1, patches_per_chunk=16, patch_size=32)
        assert len(patches) and (patches != -9999).all()


@pytest.mark.parametrize(
    ("declare", "expected"),
    [
        (lambda da: da.rio.write_nodata(-1), -1.0),
        (lambda da: da.rio.write_nodata(-1, encoded=True), -1.0),
        (lambda da: da.assign_attrs(nodata=-1), -1.0),
        (lambda da: da.assign_attrs(_FillValue=np.int16(-1)), -1.0),
        (lambda da: da.assign_attrs(missing_value=-1), -1.0),
        (lambda da: da.assign_attrs(nodatavals=(-1, -1)), -1.0),
        (lambda da: da.assign_attrs(nodata="none"), None),
        (lambda da: da.astype("float32").rio.write_nodata(np.nan), None),
        (lambda da: da, None),
    ],
)
def test_every_way_of_declaring_nodata_is_found(declare, expected) -> None:
    da = xr.DataArray(np.zeros((2, 4, 4), "int16"), dims=("band", "y", "x"))
    declared = declare(da)
    assert find_nodata(declared) == expected
    assert find_nodata(declared) == expected  # and again: no cached state


def test_an_encoded_fill_value_of_decoded_floats_is_not_a_pixel_value() -> None:
    da = xr.DataArray(np.zeros((2, 4, 4), "float32"), dims=("band", "y", "x"))
    da.encoding.update({"_FillValue": 0, "dtype": np.dtype("uint8")})  # opened with masked=True: NaN marks nodata
    assert find_nodata(da) is None
    da.encoding.update({"dtype": np.dtype("float32"), "scale_factor": 0.1})
    assert find_nodata(da) is None


# 3 ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("ydim", "xdim"), [("lat", "lon"), ("latitude", "longitude")])
def test_lat_lon_dims_get_the_transform_of_their_coords(model, tmp_path, ydim, xdim) -> None:
    cube = make_cube(40, 48).rename(y=ydim, x=xdim)
    cube = cube.assign_coords({ydim: 9.75 - 0.5 * np.arange(40), xdim: 0.25 + 0.5 * np.arange(48)})
    cube = cube.rio.write_crs("EPSG:4326")
    labels = xk.segment(cube, model)
    expected = Affine(0.5, 0, 0.0, 0, -0.5, 10.0)
    assert labels.rio.transform().almost_equals(expected)
    assert labels.rio.resolution() == (0.5, -0.5)
    z = _zarr(labels, tmp_path / "ll.zarr")
    gt = [float(v) for v in z.spatial_ref.attrs["GeoTransform"].split()]
    assert Affine.from_gdal(*gt).almost_equals(expected)


# 4 ----------------------------------------------------------------------------------------------------------------
def _stackstac_like(topleft: bool) -> xr.DataArray:
    """A cube laid out as stackstac lays it: attrs["transform"], "epsg" coord, no spatial_ref."""
    t = Affine(5.0, 0, 792990.0, 0, -5.0, 2050385.0)
    off = 0.0 if topleft else 2.5
    cube = make_cube(72, 88).drop_vars("spatial_ref")
    cube = cube.assign_coords(x=t.c + off + 5 * np.arange(88), y=t.f - off - 5 * np.arange(72), epsg=32618)
    return cube.assign_attrs(transform=t, crs="epsg:32618")


@pytest.mark.parametrize("topleft", [False, True])
def test_a_crop_gets_its_own_origin_not_the_full_cube_s_transform(model, tmp_path, topleft) -> None:
    cube = _stackstac_like(topleft)
    crop = cube.isel(x=slice(40, None), y=slice(10, None))
    assert crop.attrs["transform"] == cube.attrs["transform"]  # stale, as xarray keeps attrs
    if topleft:
        with pytest.warns(UserWarning, match="top-left"):
            labels = xk.segment(crop, model)
    else:
        labels = xk.segment(crop, model)
    expected = Affine(5.0, 0, 792990.0 + 40 * 5, 0, -5.0, 2050385.0 - 10 * 5)
    gt = Affine.from_gdal(*[float(v) for v in labels.spatial_ref.attrs["GeoTransform"].split()])
    assert gt.almost_equals(expected)
    if not topleft:
        assert labels.rio.transform().almost_equals(expected)
        full = xk.segment(cube, model)
        assert full.rio.transform() == cube.attrs["transform"]  # uncropped: the loader's own, exactly


def test_a_transform_that_disagrees_with_the_coords_is_not_used(model) -> None:
    cube = make_cube(72, 88).assign_attrs(transform=(10.0, 0.0, 0.0, 0.0, -10.0, 0.0))  # another grid
    assert xk.segment(cube, model).rio.transform() == Affine(5.0, 0, 792988.0, 0, -5.0, 2050385.0)  # the coords'
    assert cube.rio.transform() != Affine(5.0, 0, 792988.0, 0, -5.0, 2050385.0)  # rioxarray's is the attr's


def test_a_rotated_or_skewed_transform_is_refused_before_any_compute(model) -> None:
    cube = make_cube(72, 88).assign_attrs(transform=Affine(5.0, 0.5, 792990.0, 0.3, -5.0, 2050385.0))
    with pytest.raises(InputError, match=r"rotated or skewed.*reproject"):
        xk.segment(cube.chunk(), model)
    nocoords = make_cube(72, 88).drop_vars(["x", "y"]).rio.write_transform(Affine.rotation(10) * Affine.scale(5))
    with pytest.raises(InputError, match="rotated or skewed"):
        xk.segment(nocoords, model)


# 5 ----------------------------------------------------------------------------------------------------------------
def _with_stac_properties(cube: xr.DataArray) -> xr.DataArray:
    obj = np.empty(2, object)
    obj[:] = [{"name": "red"}, {"name": "nir"}]
    return cube.assign_coords(
        id=("time", np.array(["a", "b"], object)),
        cloud=("time", np.array([1.5, None], object)),
        epsg=("time", np.array([32618, 32618], object)),
        bands=("time", obj),
        title=("band", np.array(["Red", "Green", "Blue", "NIR"], object)),
    )


def test_labels_of_a_cube_with_stac_object_coords_write_to_zarr_as_they_come(model, tmp_path) -> None:
    cube = _with_stac_properties(make_cube(48, 56, times=2))
    before = cube.copy(deep=True)
    labels = xk.segment(cube, model)
    back = _zarr(labels, tmp_path / "stac.zarr")
    assert list(back["id"].values) == ["a", "b"] and np.isnan(back["cloud"].values[1])
    assert "bands" not in back.coords and back.rio.crs == cube.rio.crs
    np.testing.assert_array_equal(back.values, labels.values)
    sim = xk.simulate(cube, model)
    sim.to_dataset(name="sim").to_zarr(tmp_path / "sim.zarr")
    xr.testing.assert_identical(cube, before)
    assert cube["id"].dtype == object and "bands" in cube.coords  # the user's cube is untouched


# 6, 7: see test_adversarial.py (every option, before any compute) ----------------------------------------------------
# 9 ----------------------------------------------------------------------------------------------------------------
def test_a_rasterio_dataset_uses_its_band_data_variable(tmp_path) -> None:
    cube = make_cube(48, 56).assign_coords(band=[1, 2, 3, 4])
    cube.rio.to_raster(tmp_path / "in.tif")
    ds = xr.open_dataset(tmp_path / "in.tif", engine="rasterio")
    assert list(ds.data_vars) == ["band_data"]
    unnamed = xk.fit(ds, k=2, steps=0, patch_size=32, n_chunks=1, verbose=0)
    assert unnamed.bands == 4
    da = rioxarray.open_rasterio(tmp_path / "in.tif")
    np.testing.assert_array_equal(xk.segment(ds, unnamed).values, xk.segment(da, unnamed).values)
    two = ds.assign(other=ds["band_data"] * 2)
    with pytest.raises(InputError, match=r"several variables along 'band'.*ds\['band_data'\]"):
        xk.segment(two, unnamed)


# 10 ---------------------------------------------------------------------------------------------------------------
def test_a_coord_named_labels_does_not_break_write_zarr(model, tmp_path) -> None:
    cube = make_cube(48, 56).assign_coords(labels=("y", np.arange(48)))
    labels = xk.segment(cube, model).chunk({"y": 24})
    with pytest.warns(UserWarning, match="written as 'labels_values'"):
        xk.write_zarr(labels, tmp_path / "l.zarr")
    back = open_zarr(tmp_path / "l.zarr")
    assert back.name == "labels_values"
    np.testing.assert_array_equal(back["labels"].values, np.arange(48))
    np.testing.assert_array_equal(back.values, labels.values)
    with pytest.raises(InputError, match="name='labels' is also a coordinate"):
        xk.write_zarr(labels, tmp_path / "m.zarr", name="labels")
