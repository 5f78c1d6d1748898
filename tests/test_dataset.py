"""The Dataset accessor (odc-stac's one-variable-per-band layout): same results, per-band nodata kept."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import xr_ktextures as xk

from .conftest import BANDS, assert_geo_kept, make_cube


def test_dataset_accessor_gives_the_dataarray_results(cube, model) -> None:
    ds = cube.to_dataset(dim="band").chunk({"y": 36, "x": 44})
    ds["scl"] = xr.DataArray(np.arange(3), dims="class")  # a non-band variable: the model's bands are chosen
    labels = ds.ktex.segment(model)
    expected = xk.segment(cube, model)
    assert labels.chunks is not None  # lazy
    xr.testing.assert_identical(labels.compute(), expected)
    assert_geo_kept(labels, cube)
    sim = ds.ktex.simulate(model)
    assert list(sim.data_vars) == BANDS and sim["red"].dtype == np.float32
    xr.testing.assert_allclose(sim.to_dataarray("band"), xk.simulate(cube, model).drop_attrs())


def test_dataset_accessor_fits_on_the_named_variables_and_remembers_the_model(monkeypatch, cube, model) -> None:
    from xr_ktextures import api

    calls = []
    monkeypatch.setattr(api, "fit", lambda da, k, **kw: calls.append((da, k, kw)) or model)
    ds = cube.to_dataset(dim="band")
    assert ds.ktex.fit(3, bands=["nir", "red", "green", "blue"], steps=0) is model and ds.ktex.model is model
    da, k, kw = calls[-1]
    assert (k, kw) == (3, {"steps": 0}) and list(da.band.values) == ["nir", "red", "green", "blue"]
    xr.testing.assert_identical(da.sel(band="red", drop=True), cube.sel(band="red", drop=True).rename(None))
    np.testing.assert_array_equal(ds.ktex.segment().values, xk.segment(cube, model).values)  # the model kept
    with pytest.raises(xk.InputError, match=r"band variable\(s\) \['swir'\] not found"):
        ds.ktex.segment(bands=["swir"])


def test_each_band_keeps_its_own_nodata(model) -> None:
    cube = make_cube(dtype="uint16")
    ds = cube.to_dataset(dim="band")
    ds["red"] = ds["red"].where(ds["red"].x > ds["red"].x[5], 0).rio.write_nodata(0)  # red: 0
    ds["nir"] = ds["nir"].where(ds["nir"].y < ds["nir"].y[3], 65535).rio.write_nodata(65535)  # nir: 65535
    labels = ds.ktex.segment(model).values
    missing = (ds["red"] == 0) | (ds["nir"] == 65535)
    assert 0 < missing.sum() < missing.size
    np.testing.assert_array_equal(labels == xk.NODATA, missing.values)  # nodata exactly where any band is
    a = cube.values.astype("float32")  # each band NaN at its own nodata, the others kept
    a[0][(ds["red"] == 0).values] = np.nan
    a[3][(ds["nir"] == 65535).values] = np.nan
    np.testing.assert_array_equal(labels, xk.segment(cube.copy(data=a), model).values)
