"""write_zarr: the same store as a plain to_zarr, computed one bounded window at a time."""

from __future__ import annotations

import dask
import dask.array as dsa
import numpy as np
import pytest
import xarray as xr
from dask.callbacks import Callback

import xr_ktextures as xk
from xr_ktextures._nodata import FILL_RADIUS
from xr_ktextures.writing import zarr_windows

from .conftest import make_cube


class ComputeLog(Callback):
    """Opens a new record at each compute call; ``record`` adds to the current one."""

    def __init__(self) -> None:
        super().__init__()
        self.per_call: list[set] = []

    def _start(self, dsk) -> None:
        self.per_call.append(set())

    def record(self, item) -> None:
        self.per_call[-1].add(item)


def _open(path) -> xr.Dataset:
    return xr.open_zarr(path, decode_coords="all", mask_and_scale=False).load()


def test_windowed_store_is_identical_to_a_plain_to_zarr(model, tmp_path) -> None:
    cube = make_cube(96, 120, times=2).chunk({"time": 1, "y": 32, "x": 40})
    labels = xk.segment(cube, model)
    xk.write_zarr(labels, tmp_path / "win.zarr", window=(2, 1))
    labels.to_dataset(name="labels").to_zarr(tmp_path / "plain.zarr")
    win, plain = _open(tmp_path / "win.zarr"), _open(tmp_path / "plain.zarr")
    assert win.attrs.pop("xr_ktextures:complete") is True and win.attrs.pop("xr_ktextures:windows_done") == 12
    assert win.attrs.pop("xr_ktextures:window") == [2, 1]
    xr.testing.assert_identical(win, plain)
    np.testing.assert_array_equal(win["labels"].values, labels.values)
    assert win.rio.crs == cube.rio.crs and list(win["labels"].attrs["flag_values"]) == [0, 1, 2]


def test_each_window_computes_only_its_chunks_and_their_neighbours(model, tmp_path) -> None:
    log = ComputeLog()

    assert model.halo + FILL_RADIUS <= 32  # 6 x 6 input chunks of 32 px, at least the overlap: no merging

    def chunk(block_info=None):
        log.record(tuple(block_info[None]["chunk-location"][1:]))
        return np.random.default_rng(block_info[None]["chunk-location"]).uniform(0, 255, (4, 32, 32))

    data = dsa.map_blocks(chunk, dtype="float64", chunks=((4,), (32,) * 6, (32,) * 6))
    labels = xk.segment(make_cube(192, 192).copy(data=data), model)
    with log, dask.config.set(scheduler="sync"):
        xk.write_zarr(labels, tmp_path / "l.zarr", window=2)
    assert len(log.per_call) == 9  # one compute per 2 x 2 window, nothing before
    # a window computes its 4 chunks plus the ring its halo needs: 16 of 36 inside, 9 at a corner
    assert sorted(len(c) for c in log.per_call) == [9, 9, 9, 9, 12, 12, 12, 12, 16]
    assert log.per_call[0] == {(i, j) for i in range(3) for j in range(3)}  # the top-left window
    assert set().union(*log.per_call) == {(i, j) for i in range(6) for j in range(6)}
    np.testing.assert_array_equal(_open(tmp_path / "l.zarr")["labels"].values, labels.values)


def test_zarr_windows_cover_every_chunk_once() -> None:
    da = xr.DataArray(dsa.zeros((2, 50, 70), chunks=(1, 20, 30)), dims=("time", "y", "x"))
    seen = np.zeros(da.shape, int)
    for region in zarr_windows(da, window=(2, 1)):
        seen[tuple(region[d] for d in da.dims)] += 1
    assert (seen == 1).all()
    assert len(list(zarr_windows(da, window=(2, 1)))) == 2 * 2 * 3


def test_numpy_backed_input_is_written_in_one_go(tmp_path) -> None:
    da = make_cube(20, 30).isel(band=0).astype("uint8")
    xk.write_zarr(da, tmp_path / "n.zarr", window=1)
    np.testing.assert_array_equal(_open(tmp_path / "n.zarr")["reflectance"].values, da.values)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": 0}, "window must be a positive number of chunks"),
        ({"window": (1, 2, 3)}, "window must be a positive number of chunks"),
        ({"window": True}, "window must be a positive number of chunks"),
        ({"mode": "a"}, "mode must be 'w' or 'w-'"),
    ],
)
def test_bad_arguments_fail_before_anything_is_computed(model, tmp_path, kwargs, message) -> None:
    labels = xk.segment(make_cube().chunk({"y": 36, "x": 44}), model)
    log = ComputeLog()
    with log, dask.config.set(scheduler="sync"), pytest.raises(xk.InputError, match=message):
        xk.write_zarr(labels, tmp_path / "x.zarr", **kwargs)
    assert log.per_call == [] and not (tmp_path / "x.zarr").exists()


def test_irregular_chunks_and_missing_dims_fail_with_the_fix(tmp_path) -> None:
    irregular = xr.DataArray(dsa.zeros((30, 30), chunks=((10, 15, 5), 10)), dims=("y", "x"))
    with pytest.raises(xk.InputError, match=r"regular chunks.*y: \(10, 15, 5\).*da.chunk"):
        xk.write_zarr(irregular, tmp_path / "i.zarr")
    with pytest.raises(xk.InputError, match="no y dimension"):
        xk.write_zarr(xr.DataArray(dsa.zeros((3, 3), chunks=1), dims=("a", "b")), tmp_path / "d.zarr")
    assert not (tmp_path / "i.zarr").exists() and not (tmp_path / "d.zarr").exists()
