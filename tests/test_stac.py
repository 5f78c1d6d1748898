"""STAC in (stackstac and odc-stac, offline), COG and Zarr out, CRS and transform kept."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
import rioxarray
import xarray as xr

import xr_ktextures as xk

from .stac_fixture import BANDS


@pytest.fixture(scope="module")
def stack_cube(stac_items) -> xr.DataArray:
    import stackstac

    return stackstac.stack(stac_items, assets=list(BANDS), chunksize=256, xy_coords="center")


@pytest.fixture(scope="module")
def stac_model(stack_cube) -> xk.KTextures:
    # the snapped grid has a NaN first row and column, and the image is barely taller than the
    # default sample window: fit keeps full-size windows (the gaps are a few % of them, filled)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*nodata/NaN")
        return xk.fit(stack_cube, k=3, steps=2, batch_size=2, patch_size=32, n_chunks=3, verbose=0)


def _source_geo(stac_items):
    with rasterio.open(stac_items[0].assets["red"].href) as src:
        return src.crs, src.transform


def test_stackstac_default_topleft_coords_get_a_clear_warning(stac_items, stac_model):
    import stackstac

    cube = stackstac.stack(stac_items, assets=list(BANDS), chunksize=256)  # xy_coords="topleft"
    with pytest.warns(UserWarning, match="xy_coords='center'"):
        labels = xk.segment(cube, stac_model)
    np.testing.assert_array_equal(labels.x.values, cube.x.values)  # still aligned with the input


def test_stackstac_cube_fits_and_segments_with_the_source_crs_and_transform(stack_cube, stac_model, stac_items):
    assert stack_cube.dtype == np.float64 and stack_cube.dims == ("time", "band", "y", "x")
    labels = xk.segment(stack_cube, stac_model)
    assert labels.dims == ("time", "y", "x") and labels.dtype == np.uint8
    crs, _ = _source_geo(stac_items)
    assert labels.rio.crs == crs
    # stackstac snaps its grid to multiples of the resolution; the labels carry that grid exactly
    assert labels.rio.transform() == stack_cube.attrs["transform"]
    values = labels.values
    assert (values[-1, 1:20, 1:30] == xk.NODATA).all()  # stackstac's NaN fill → nodata label
    # the snapped grid starts 3 m west/north of the COGs: its first row and column lie outside
    # the data (NaN) and are nodata; every other pixel of the first date is labelled
    assert (values[:, 0, :] == xk.NODATA).all() and (values[:, :, 0] == xk.NODATA).all()
    assert (values[0, 1:, 1:] != xk.NODATA).all()
    np.testing.assert_array_equal(labels.time.values, stack_cube.time.values)


def test_odc_stac_cube_segments_on_the_native_grid(stac_model, stac_items):
    import odc.stac

    ds = odc.stac.load(stac_items, bands=list(BANDS), chunks={"x": 256, "y": 256})
    labels = xk.segment(ds, stac_model)  # a Dataset of one variable per band; its nodata=0 is kept
    crs, transform = _source_geo(stac_items)
    assert labels.rio.crs == crs and labels.rio.transform() == transform
    values = labels.values
    assert (values[-1, :20, :30] == xk.NODATA).all() and (values[0] != xk.NODATA).all()
    # the same pixels read straight from the COGs give the same labels
    direct = xr.concat([rioxarray.open_rasterio(stac_items[0].assets[b].href) for b in BANDS], dim="band")
    direct = direct.assign_coords(band=list(BANDS))
    np.testing.assert_array_equal(values[0], xk.segment(direct, stac_model).values)


def test_labels_round_trip_through_a_cog(stack_cube, stac_model, tmp_path):
    labels = xk.segment(stack_cube.isel(time=0), stac_model)
    path = tmp_path / "labels.tif"
    labels.rio.to_raster(path, driver="COG")
    back = rioxarray.open_rasterio(path).squeeze("band", drop=True)
    assert back.rio.crs == labels.rio.crs and back.rio.transform() == labels.rio.transform()
    assert back.rio.nodata == xk.NODATA and back.dtype == np.uint8
    np.testing.assert_array_equal(back.values, labels.values)


def test_labels_round_trip_through_zarr(stack_cube, stac_model, tmp_path):
    labels = xk.segment(stack_cube, stac_model)
    # stackstac attaches STAC properties as object-dtype coords, which Zarr cannot encode: the labels
    # carry them as strings or numbers (or not at all), so they write as they come; the cube keeps its own
    assert any(c.dtype == object for c in stack_cube.coords.values())
    assert not any(c.dtype == object for c in labels.coords.values())
    store = tmp_path / "labels.zarr"
    labels.to_dataset(name="labels").to_zarr(store, mode="w")
    back = xr.open_zarr(store, mask_and_scale=False, decode_coords="all")["labels"]
    assert back.rio.crs == labels.rio.crs and back.rio.transform() == labels.rio.transform()
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back.values, labels.values)
    np.testing.assert_array_equal(back.attrs["flag_values"], np.arange(3))
