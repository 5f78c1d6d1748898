"""segment under dask.distributed with process workers: same labels, one build per process, faults."""

from __future__ import annotations

import contextlib
import os
import time

import numpy as np
import pytest

import xr_ktextures as xk

distributed = pytest.importorskip("distributed")


def _cached_model(model_id: str) -> int | None:
    """The identity of the model this worker process keeps for ``model_id`` (None: it has none)."""
    from xr_ktextures._cache import CACHE

    model = CACHE.get(("model", model_id))
    return None if model is None else id(model)


def _pid() -> int:
    return os.getpid()


@pytest.mark.slow
def test_process_workers_give_the_local_labels_and_build_the_model_once_each(client, cube, model) -> None:
    expected = xk.segment(cube, model).values
    lazy = xk.segment(cube.chunk({"y": 24, "x": 24}), model)
    assert set(client.run(_cached_model, model.model_id).values()) == {None}  # no worker has it yet
    np.testing.assert_array_equal(client.compute(lazy.data).result(), expected)
    first = client.run(_cached_model, model.model_id)
    assert any(v is not None for v in first.values()), first  # built on the workers that ran blocks
    np.testing.assert_array_equal(client.compute(lazy.data).result(), expected)  # again: reuse, no rebuild
    second = client.run(_cached_model, model.model_id)
    assert all(second[w] == first[w] for w in first if first[w] is not None), (first, second)


@pytest.mark.slow
def test_a_worker_killed_mid_compute_still_gives_complete_identical_labels(client, model) -> None:
    from .conftest import make_cube

    big = make_cube(ny=240, nx=240, seed=3)
    expected = xk.segment(big, model).values
    future = client.compute(xk.segment(big.chunk({"y": 30, "x": 30}), model).data)
    while not any(client.processing().values()):
        time.sleep(0.05)
    victim, victim_pid = next(iter(client.run(_pid).items()))
    with contextlib.suppress(Exception):  # the worker dies before it can answer
        client.run(os._exit, 1, workers=[victim])  # abrupt death mid-compute; its nanny restarts it
    np.testing.assert_array_equal(future.result(timeout=300), expected)
    assert victim_pid not in client.run(_pid).values()  # that process really died (and was replaced)
