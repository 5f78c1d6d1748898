"""The inference engine: phase-decomposed labels equal the reference path; tiling, batching, devices."""

from __future__ import annotations

import dask
import keras
import numpy as np
import pytest

import xr_ktextures as xk
from xr_ktextures import engine
from xr_ktextures.engine import LabelEngine, normalize_device

from .test_xarray import CountingScheduler

CONFIGS = [
    {"k": 5},  # the default mask branch: pooled hypercolumn, cluster-initialised head
    {"k": 3, "frontend": True, "pool": 0},  # the Gabor front end, head on the last layer
    {"k": 3, "frontend": True, "pool": 5},  # front end and pooled hypercolumn
    {"k": 4, "quantizer": "hard_sigmoid"},
    {"k": 3, "frontend": False, "pool": 0, "dilations": (1, 2, 4, 8)},
    {"k": 3, "dilations": (3, 2, 1), "seed": 1},  # dilations that cannot stay split
]


def _reference(model: xk.KTextures, x: np.ndarray) -> np.ndarray:
    z = model.encoder(model.scaler(x))
    return keras.ops.convert_to_numpy(model.quantizer.labels(z)).astype(np.uint8)


def _image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, shape).astype(np.float32)
    x[..., shape[-2] // 2 :, :] *= 3  # two textures, so the classes are not all one
    return x


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_engine_labels_equal_the_reference_forward_pass(config) -> None:
    model = xk.KTextures(fitted=True, **config)
    if model.cluster_init:  # a random head on pooled features is smooth: give it real clusters
        model.fit(_image((4, 96, 96, 4), seed=3), steps=0, patch_size=32, verbose=0)
    x = _image((2, 75, 69, 4))
    if model.quantizer_name == "hard_sigmoid":  # spread the random head's value over all k intervals
        z = keras.ops.convert_to_numpy(model.encoder(model.scaler(x)))
        a = 0.5 / max(float(z.std()), 1e-6)
        kernel, bias = model.encoder.head.get_weights()
        model.encoder.head.set_weights([kernel * a, (bias - float(np.median(z))) * a])
    ref = _reference(model, x)
    h = model.halo
    assert len(np.unique(ref[:, h:-h, h:-h])) >= 2  # a test that labels all one class would prove little
    for tile in (8, 24, 4096):  # many tiles, a few, one
        out = LabelEngine(model, tile=tile)(x)
        assert out.shape == ref.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(out[:, h:-h, h:-h], ref[:, h:-h, h:-h])


def test_tiles_have_one_shape_and_batches_follow_the_pixel_budget(monkeypatch) -> None:
    model = xk.KTextures(k=3, fitted=True, frontend=False, pool=0, dilations=(1, 2))
    x = _image((1, 70, 61, 4), seed=1)
    whole = LabelEngine(model, tile=4096)(x)
    eng = LabelEngine(model, tile=16, batch_pixels=2 * 24 * 24)  # halo 3: 22 px windows padded to 24
    seen: list[tuple[int, ...]] = []
    original = eng._graph

    def spy(h: int, w: int):
        fn = original(h, w)

        def call(t: np.ndarray):
            seen.append(t.shape)
            return fn(t)

        return call

    monkeypatch.setattr(eng, "_graph", spy)
    out = eng(x)
    h = model.halo
    np.testing.assert_array_equal(out[:, h:-h, h:-h], whole[:, h:-h, h:-h])
    assert {s[1:] for s in seen} == {(24, 24, 4)}  # every call: the same compiled tile shape
    assert max(s[0] for s in seen) == 2 and sum(s[0] for s in seen) == 4 * 4  # 4 x 4 tiles, 2 per call


def test_gpu_batches_are_sized_from_the_free_device_memory(monkeypatch) -> None:
    model = xk.KTextures(k=3, fitted=True)
    monkeypatch.setattr(engine, "device_memory", lambda device: 8 * 2**30)
    eng = LabelEngine(model, gpu=True)
    assert eng.tile == engine.GPU_TILE
    assert eng.batch_pixels == int(8 * 2**30 * engine.GPU_MEMORY_FRACTION) // engine.bytes_per_pixel(model)
    monkeypatch.setattr(engine, "device_memory", lambda device: None)  # TensorFlow cannot tell
    assert LabelEngine(model, gpu=True).batch_pixels == engine.GPU_FALLBACK_BUDGET // 2 // engine.bytes_per_pixel(model)
    assert LabelEngine(model).batch_pixels is None and LabelEngine(model).tile == engine.CPU_TILE  # CPU: one tile


@pytest.mark.parametrize(
    ("name", "expected"),
    [(None, None), ("auto", None), ("cpu", "cpu:0"), ("GPU", "gpu:0"), ("gpu:2", "gpu:2"), ("cuda:1", "gpu:1")],
)
def test_device_names(name, expected) -> None:
    assert normalize_device(name) == expected


@pytest.mark.parametrize("bad", ["tpu", "gpu0", "cpu:1", "gpu:-1", 0])
def test_bad_device_names_fail_before_any_compute(cube, model, bad) -> None:
    counter = CountingScheduler()
    with dask.config.set(scheduler=counter), pytest.raises(xk.InputError, match="device"):
        xk.segment(cube.chunk({"y": 40}), model, device=bad)
    assert counter.calls == 0


@pytest.mark.parametrize("bad", [0, 4, 2.5, True, "big"])
def test_bad_tiles_fail_early(cube, model, bad) -> None:
    with pytest.raises(xk.InputError, match="tile"):
        xk.segment(cube.chunk({"y": 40}), model, tile=bad)


def test_auto_picks_a_gpu_when_the_backend_sees_one(monkeypatch) -> None:
    monkeypatch.setattr(engine, "available_gpus", lambda: 1)
    assert engine.resolve_device(None) == "gpu:0"
    assert engine.resolve_device("gpu:0") == "gpu:0"
    with pytest.raises(xk.DeviceUnavailableError, match="sees 1 GPU"):
        engine.resolve_device("gpu:1")
    monkeypatch.setattr(engine, "available_gpus", lambda: 0)
    assert engine.resolve_device(None) == "cpu:0"


def test_asking_for_an_absent_gpu_fails_at_compute_with_a_clear_error(cube, model) -> None:
    if engine.available_gpus():
        pytest.skip("this machine has a GPU")
    lazy = xk.segment(cube.chunk({"y": 40}), model, device="gpu")  # lazy: nothing checked on the workers yet
    with pytest.raises(xk.DeviceUnavailableError, match=r"'gpu:0' was requested .* sees 0 GPU"):
        lazy.compute()


def test_cpu_device_and_tiles_give_the_default_labels(cube, model) -> None:
    expected = xk.segment(cube, model).values
    on_cpu = xk.segment(cube.chunk({"y": 40, "x": 50}), model, device="cpu", tile=16).values
    np.testing.assert_array_equal(on_cpu, expected)


def test_threads_sharing_one_compiled_graph_give_the_serial_labels() -> None:
    # Dask's threaded scheduler runs the same compiled tile graph on several chunks at once.
    # Large tiles are needed: TensorFlow's graph optimiser once turned the engine's chain of
    # head-share additions into an accumulator whose per-step temporary two threads shared
    # (an error, or silently wrong labels, for 1024 px chunks; never for small ones).
    import dask.array as dsa
    import xarray as xr

    model = xk.KTextures(k=3, seed=0).fit(_image((4, 96, 96, 4), seed=3), steps=0, patch_size=32, verbose=0)
    data = _image((2048, 2048, 4), seed=2)
    cube = xr.DataArray(dsa.from_array(np.moveaxis(data, -1, 0), chunks=(4, 1024, 1024)), dims=("band", "y", "x"))
    with dask.config.set(scheduler="threads", num_workers=4):
        threaded = [xk.segment(cube, model).values for _ in range(3)]  # a race: several chances to lose it
    with dask.config.set(scheduler="synchronous"):
        serial = xk.segment(cube, model).values
    assert len(np.unique(serial)) >= 2
    for labels in threaded:
        np.testing.assert_array_equal(labels, serial)


def test_the_memory_estimate_covers_both_architectures() -> None:
    for model in (xk.KTextures(k=3), xk.KTextures(k=3, architecture="paper")):
        assert 16 < engine.bytes_per_pixel(model) < 4096
