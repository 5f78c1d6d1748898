"""Shared fixtures: a tiny fitted model, small georeferenced cubes, and check helpers."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import xarray as xr

import xr_ktextures as xk

BANDS = ["red", "green", "blue", "nir"]


class CountingScheduler:
    """A dask scheduler that counts how many times anything is computed."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, dsk, keys, **kwargs):
        self.calls += 1
        return dask.get(dsk, keys, **kwargs)


def make_cube(
    ny: int = 72, nx: int = 88, *, times: int | None = None, seed: int = 0, dtype: str = "float32"
) -> xr.DataArray:
    """A small 4-band image with two textures (smooth left half, noisy right half), EPSG:32618."""
    rng = np.random.default_rng(seed)
    shape = (times, 4, ny, nx) if times else (4, ny, nx)
    base = rng.normal(100, 5, shape)
    base[..., nx // 2 :] += rng.normal(0, 40, shape)[..., nx // 2 :]
    a = np.clip(base, 0, 255).astype(dtype)
    dims = ("time", "band", "y", "x") if times else ("band", "y", "x")
    coords = {"band": BANDS, "y": 2050382.5 - 5 * np.arange(ny), "x": 792990.5 + 5 * np.arange(nx)}
    if times:
        coords["time"] = np.array(
            ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"][:times], dtype="datetime64[ns]"
        )
    da = xr.DataArray(a, dims=dims, coords=coords, name="reflectance")
    return da.rio.write_crs("EPSG:32618")


@pytest.fixture(scope="session")
def cube() -> xr.DataArray:
    return make_cube()


@pytest.fixture(scope="session")
def model(cube: xr.DataArray) -> xk.KTextures:
    """A tiny fitted model (few steps: these tests check plumbing, not quality)."""
    return xk.fit(cube, k=3, steps=3, batch_size=2, patch_size=32, n_chunks=2, verbose=0, seed=0)


def assert_geo_kept(out: xr.DataArray, src: xr.DataArray, band_dim: str = "band") -> None:
    """Dims, non-band coords, CRS and transform of ``src`` survive on ``out``."""
    assert out.dims == tuple(d for d in src.dims if d != band_dim)
    for name, coord in src.coords.items():
        if band_dim in coord.dims:
            continue
        assert name in out.coords, name
        np.testing.assert_array_equal(out[name].values, coord.values)
    assert out.rio.crs == src.rio.crs
    assert out.rio.transform() == src.rio.transform()


@pytest.fixture(scope="session")
def stac_items(tmp_path_factory: pytest.TempPathFactory) -> list:
    from .stac_fixture import write_catalog

    return write_catalog(tmp_path_factory.mktemp("stac"))


@pytest.fixture(scope="module")
def client():
    """A 2-process dask.distributed cluster (one per test module)."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, memory_limit="4GiB"
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c
