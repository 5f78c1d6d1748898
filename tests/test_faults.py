"""Faults lose nothing: a worker killed during write_zarr or fit's sample, a write_zarr interrupted and rerun."""

from __future__ import annotations

import contextlib
import os
import threading
import time

import dask
import dask.array as dsa
import numpy as np
import pytest
import xarray as xr

import xr_ktextures as xk
from xr_ktextures.writing import COMPLETE, open_zarr, store_state

from .conftest import make_cube

FAIL_AT: dict[str, tuple[int, int] | None] = {"chunk": None}
COMPUTED: list[tuple[int, int]] = []


def _source(block_info=None):
    """Chunks of a 4 x 4 grid of 16 px chunks; raises at ``FAIL_AT["chunk"]`` (an interrupted run)."""
    loc = tuple(block_info[None]["chunk-location"])
    if loc == FAIL_AT["chunk"]:
        raise KeyboardInterrupt("interrupted")
    COMPUTED.append(loc)
    return np.full(block_info[None]["chunk-shape"], 4 * loc[0] + loc[1], "uint8")


def _grid() -> xr.DataArray:
    data = dsa.map_blocks(_source, chunks=((16,) * 4, (16,) * 4), dtype="uint8", meta=np.empty((0, 0), "uint8"))
    return xr.DataArray(data, dims=("y", "x"), name="labels", attrs={"k": 16})


def _expected() -> np.ndarray:
    return np.repeat(np.repeat(np.arange(16, dtype="uint8").reshape(4, 4), 16, 0), 16, 1)


@pytest.fixture
def interrupted(tmp_path):
    """A store whose write stopped at the 10th of 16 windows."""
    store = tmp_path / "l.zarr"
    FAIL_AT["chunk"] = (2, 1)
    try:
        with dask.config.set(scheduler="sync"), pytest.raises(KeyboardInterrupt):
            xk.write_zarr(_grid(), store, window=1)
    finally:
        FAIL_AT["chunk"] = None
    return store


def test_an_interrupted_store_is_never_taken_for_a_finished_one(interrupted) -> None:
    assert store_state(interrupted) == "partial"
    assert xr.open_zarr(interrupted).attrs[COMPLETE] is False
    with pytest.raises(xk.IncompleteStoreError, match=r"unfinished write_zarr.*resume=True"):
        open_zarr(interrupted)
    with pytest.raises(xk.InputError, match=r"unfinished write_zarr.*resume=True.*mode='w'"):
        xk.write_zarr(_grid(), interrupted, window=1)


def test_a_resumed_write_completes_the_store_from_the_first_missing_window(interrupted) -> None:
    COMPUTED.clear()
    with dask.config.set(scheduler="sync"):
        xk.write_zarr(_grid(), interrupted, window=3, resume=True)  # walks the first write's 1-chunk windows
    assert store_state(interrupted) == "complete"
    np.testing.assert_array_equal(open_zarr(interrupted).values, _expected())
    assert sorted(COMPUTED) == [(i, j) for i in range(4) for j in range(4)][9:]  # nothing written twice
    COMPUTED.clear()
    xk.write_zarr(_grid(), interrupted, window=1, resume=True)  # finished: left as it is
    assert COMPUTED == []


def test_a_rerun_with_mode_w_rewrites_a_complete_store(interrupted) -> None:
    xk.write_zarr(_grid(), interrupted, window=2, mode="w")
    assert store_state(interrupted) == "complete"
    np.testing.assert_array_equal(open_zarr(interrupted).values, _expected())


KILLED_WRITER = """
import os, sys
import dask, dask.array as dsa, numpy as np, xarray as xr
from xr_ktextures.writing import write_zarr

def source(block_info=None):
    loc = tuple(block_info[None]["chunk-location"])
    if loc == (2, 1):
        os._exit(9)  # the process dies abruptly in the 10th of 16 windows
    return np.full(block_info[None]["chunk-shape"], 4 * loc[0] + loc[1], "uint8")

data = dsa.map_blocks(source, chunks=((16,) * 4, (16,) * 4), dtype="uint8", meta=np.empty((0, 0), "uint8"))
with dask.config.set(scheduler="sync"):
    write_zarr(xr.DataArray(data, dims=("y", "x"), name="labels", attrs={"k": 16}), sys.argv[1], window=1)
"""


def test_a_process_killed_mid_write_leaves_a_partial_store_that_resumes(tmp_path) -> None:
    import subprocess
    import sys
    from pathlib import Path

    store = tmp_path / "killed.zarr"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(store)], env=env, timeout=300, capture_output=True)
    assert proc.returncode == 9, proc.stderr.decode()[-2000:]
    assert store_state(store) == "partial"
    with pytest.raises(xk.IncompleteStoreError):
        open_zarr(store)
    COMPUTED.clear()
    with dask.config.set(scheduler="sync"):
        xk.write_zarr(_grid(), store, resume=True)
    assert store_state(store) == "complete" and len(COMPUTED) == 7  # only the windows not written
    np.testing.assert_array_equal(open_zarr(store).values, _expected())


def test_resume_refuses_a_store_of_another_array(interrupted) -> None:
    other = _grid().assign_attrs(k=3)
    with pytest.raises(xk.InputError, match=r"cannot resume.*k=16"):
        xk.write_zarr(other, interrupted, window=1, resume=True)
    with pytest.raises(xk.InputError, match=r"cannot resume.*chunks"):
        xk.write_zarr(_grid().chunk(32), interrupted, resume=True)


# ---------------------------------------------------------------------------------------------- killed workers
def _pid() -> int:
    return os.getpid()


def _kill_one_worker_when_busy(client, killed: list[int]) -> threading.Thread:
    def kill() -> None:
        deadline = time.monotonic() + 120
        while not any(client.processing().values()) and time.monotonic() < deadline:
            time.sleep(0.02)
        victim, pid = next(iter(client.run(_pid).items()))
        with contextlib.suppress(Exception):  # it dies before it can answer
            client.run(os._exit, 1, workers=[victim])
        killed.append(pid)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def _slow(block):
    time.sleep(0.2)
    return block


@pytest.mark.slow
def test_a_worker_killed_during_write_zarr_still_gives_the_complete_store(client, model, tmp_path) -> None:
    cube = make_cube(96, 96, seed=5)
    expected = xk.segment(cube, model).values
    lazy = cube.chunk({"y": 32, "x": 32})
    labels = xk.segment(lazy.copy(data=lazy.data.map_blocks(_slow, dtype=lazy.dtype)), model)
    killed: list[int] = []
    thread = _kill_one_worker_when_busy(client, killed)
    xk.write_zarr(labels, tmp_path / "k.zarr", window=3)  # one window: all 9 chunks at once
    thread.join(60)
    assert killed and killed[0] not in client.run(_pid).values()  # the worker really died
    assert store_state(tmp_path / "k.zarr") == "complete"
    np.testing.assert_array_equal(open_zarr(tmp_path / "k.zarr").values, expected)


@pytest.mark.slow
def test_a_worker_killed_during_fit_s_sample_still_gives_the_same_model(client) -> None:
    cube = make_cube(128, 128, seed=6).chunk({"y": 32, "x": 32})
    slow = cube.copy(data=cube.data.map_blocks(_slow, dtype=cube.dtype))
    options = {"k": 2, "steps": 0, "patch_size": 32, "sample_size": 32, "n_chunks": 6, "verbose": 0}
    with dask.config.set(scheduler="sync"):
        expected = xk.fit(cube, **options)
    killed: list[int] = []
    thread = _kill_one_worker_when_busy(client, killed)
    got = xk.fit(slow, **options)  # the sample is computed on the cluster
    thread.join(60)
    assert killed and killed[0] not in client.run(_pid).values()
    assert got.model_id == expected.model_id
