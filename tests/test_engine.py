"""The tiled label engine: labels equal the reference forward pass; tiling, batching, devices, costs."""

from __future__ import annotations

import dask
import keras
import numpy as np
import pytest

import xr_ktextures as xk
from xr_ktextures import devices, tiles
from xr_ktextures.devices import normalize_device
from xr_ktextures.tiles import LabelEngine

from .conftest import CountingScheduler

CONFIGS = [
    {"k": 5},  # the default mask branch: pooled hypercolumn, cluster-initialised head
    {"k": 3, "_ablation": {"frontend": True}, "mask": {"pool": 0}},  # the Gabor front end, head on the last layer
    {"k": 3, "_ablation": {"frontend": True}, "mask": {"pool": 5}},  # front end and pooled hypercolumn
    {"k": 4, "mask": {"quantizer": "hard_sigmoid"}},
    {"k": 3, "mask": {"pool": 0, "dilations": (1, 2, 4, 8)}},
    {"k": 3, "mask": {"dilations": (3, 2, 1)}, "seed": 1},  # dilations that cannot stay split
    {"k": 4, "architecture": "paper"},  # the paper's 1x1 mask CNN (halo 0)
]


def _unfitted_as_fitted(**options) -> xk.KTextures:
    """A model with its random weights, marked fitted (the engine does not care how weights came)."""
    model = xk.KTextures(**options)
    model.network.fitted = True
    return model


def _reference(model: xk.KTextures, x: np.ndarray) -> np.ndarray:
    net = model.network
    z = net.encoder(net.scaler(x))
    return keras.ops.convert_to_numpy(net.quantizer.labels(z)).astype(np.uint8)


def _image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, shape).astype(np.float32)
    x[..., shape[-2] // 2 :, :] *= 3  # two textures, so the classes are not all one
    return x


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_engine_labels_equal_the_reference_forward_pass(config) -> None:
    model = _unfitted_as_fitted(**config)
    net = model.network
    if model.mask.cluster_init:  # a random head on pooled features is smooth: give it real clusters
        model.fit(_image((4, 96, 96, 4), seed=3), steps=0, patch_size=32, verbose=0)
    x = _image((2, 75, 69, 4))
    if model.mask.quantizer == "hard_sigmoid":  # spread the random head's value over all k intervals
        z = keras.ops.convert_to_numpy(net.encoder(net.scaler(x)))
        a = 0.5 / max(float(z.std()), 1e-6)
        kernel, bias = net.encoder.head.get_weights()
        net.encoder.head.set_weights([kernel * a, (bias - float(np.median(z))) * a])
    ref = _reference(model, x)
    h = model.halo
    inner = (slice(None), slice(h, x.shape[1] - h), slice(h, x.shape[2] - h))  # halo 0: all of it
    assert len(np.unique(ref[inner])) >= 2  # a test that labels all one class would prove little
    for tile in (8, 24, 4096):  # many tiles, a few, one
        out = LabelEngine(net, tile=tile)(x)
        assert out.shape == ref.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(out[inner], ref[inner])


def test_tiles_have_one_shape_and_batches_follow_the_pixel_budget(monkeypatch) -> None:
    model = _unfitted_as_fitted(k=3, mask={"pool": 0, "dilations": (1, 2)})
    x = _image((1, 70, 61, 4), seed=1)
    whole = LabelEngine(model.network, tile=4096)(x)
    eng = LabelEngine(model.network, tile=16, batch_pixels=2 * 24 * 24)  # halo 3: 22 px windows padded to 24
    seen: list[tuple[int, ...]] = []
    original = eng._graph

    def spy(h: int, w: int):
        fn = original(h, w)

        def call(t: np.ndarray):
            seen.append(t.shape)
            return fn(t)

        return call

    cut: list[int] = []
    run = eng._run

    def run_spy(tiles: np.ndarray) -> np.ndarray:
        cut.append(len(tiles))
        return run(tiles)

    monkeypatch.setattr(eng, "_graph", spy)
    monkeypatch.setattr(eng, "_run", run_spy)
    out = eng(x)
    h = model.halo
    np.testing.assert_array_equal(out[:, h:-h, h:-h], whole[:, h:-h, h:-h])
    assert {s[1:] for s in seen} == {(24, 24, 4)}  # every call: the same compiled tile shape
    assert max(s[0] for s in seen) == 2 and sum(s[0] for s in seen) == 4 * 4  # 4 x 4 tiles, 2 per call
    assert cut == [2] * 8  # the tiles are cut one batch at a time, never all of the image's at once


def test_gpu_batches_are_sized_from_the_free_device_memory(monkeypatch) -> None:
    net = _unfitted_as_fitted(k=3).network
    monkeypatch.setattr(devices, "device_memory", lambda device: 8 * 2**30)
    eng = LabelEngine(net, gpu=True)
    assert eng.tile == tiles.GPU_TILE
    assert eng.batch_pixels == int(8 * 2**30 * tiles.GPU_MEMORY_FRACTION) // tiles.bytes_per_pixel(net)
    monkeypatch.setattr(devices, "device_memory", lambda device: None)  # TensorFlow cannot tell
    assert LabelEngine(net, gpu=True).batch_pixels == tiles.GPU_FALLBACK_BUDGET // 2 // tiles.bytes_per_pixel(net)
    assert LabelEngine(net).batch_pixels is None and LabelEngine(net).tile == tiles.CPU_TILE  # CPU: one tile


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
    monkeypatch.setattr(devices, "available_gpus", lambda: 1)
    assert devices.resolve_device(None) == "gpu:0"
    assert devices.resolve_device("gpu:0") == "gpu:0"
    with pytest.raises(xk.DeviceUnavailableError, match="sees 1 GPU"):
        devices.resolve_device("gpu:1")
    monkeypatch.setattr(devices, "available_gpus", lambda: 0)
    assert devices.resolve_device(None) == "cpu:0"


def test_asking_for_an_absent_gpu_fails_at_compute_with_a_clear_error(cube, model) -> None:
    if devices.available_gpus():
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
        assert 16 < tiles.bytes_per_pixel(model.network) < 4096


COST_CASES = [
    ("paper", {"architecture": "paper"}),
    ("colour", {"mask": {"pool": 3, "view": "colour"}}),
    ("texture", {"mask": {"pool": 8, "view": "texture"}}),
    ("both", {"mask": {"pool": 20, "view": "both"}}),
    ("unpooled", {"mask": {"pool": 0, "dilations": (1, 2, 4, 8)}}),
    ("frontend", {"mask": {"pool": 5}, "_ablation": {"frontend": True}}),
]


def _independent_flops(net) -> dict[str, float]:
    """FLOPs per pixel counted from the built kernels' shapes (multiply-add = 2), by what each view runs."""
    enc, bands = net.encoder, net.bands
    macs = lambda kernel: 2.0 * np.prod(tuple(kernel.shape))  # noqa: E731
    out = {"scaler": 2.0 * bands}  # subtract, divide
    if net.architecture == "paper":
        for i, conv in enumerate(enc.convs):
            out[f"conv{i}"] = macs(conv.kernel) + 4.0 * conv.kernel.shape[-1]  # bias, BN scale + shift, ELU
        out["head"] = macs(enc.head.kernel) + 4.0  # bias, sigmoid, 2 s - 1
        return out
    kernel = enc.head.kernel  # (1, 1, every hypercolumn channel, k)
    first = int(enc.convs[0].kernel.shape[2])  # the conv stack's input: bands, or the front end's channels
    if enc.frontend is not None:
        fe = enc.frontend
        out["frontend"] = fe.flops_per_pixel(bands)  # fixed filters, no kernel variables: its own count
    runs_convs = not enc.pool or enc.view != "colour"
    for i, conv in enumerate(enc.convs if runs_convs else []):
        out[f"conv{i}"] = macs(conv.kernel) + 2.0 * conv.kernel.shape[-1]  # bias, ReLU
    k = int(kernel.shape[-1])
    if not enc.pool:
        out["head"] = macs(kernel) + 2.0 * k
        return out
    rows = int(kernel.shape[2])
    read = {"colour": first, "texture": rows - first, "both": rows}[enc.view]
    out["head"] = 2.0 * read * k + 2.0 * k
    out["pool"] = 2.0 * (2 * enc.pool + 1) * k  # separable window mean of the k logits
    return out


@pytest.mark.parametrize(("name", "options"), COST_CASES, ids=[c[0] for c in COST_CASES])
def test_the_flop_count_is_the_layers_own_and_matches_their_kernels(name, options) -> None:
    net = xk.KTextures(k=4, **options).network
    counted = net.label_flops_per_pixel()
    expected = _independent_flops(net)
    assert counted.pop("total") == pytest.approx(sum(expected.values()))
    assert counted == pytest.approx(expected)
    if name == "colour":
        assert not any(key.startswith("conv") for key in counted)  # the colour view runs no convolution
    assert tiles.bytes_per_pixel(net) == net.encoder.bytes_per_pixel(net.bands) > 0


def test_the_benchmarks_count_flops_with_the_layers() -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "_common.py"
    spec = importlib.util.spec_from_file_location("bench_common", path)
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    for _, options in COST_CASES:
        model = xk.KTextures(k=4, **options)
        assert common.flops_per_pixel(model) == model.network.label_flops_per_pixel()


def test_one_bounded_cache_holds_models_copies_and_engines() -> None:
    from xr_ktextures._cache import CACHE, MAX_ENTRIES
    from xr_ktextures.chunks import ModelHandle, get_model

    nets = []
    for seed in range(MAX_ENTRIES + 4):  # more engines than the cache keeps
        net = _unfitted_as_fitted(k=2, seed=seed, mask={"pool": 1, "view": "colour"}).network
        assert tiles.engine_for(net, "cpu") is tiles.engine_for(net, "cpu")  # cached
        nets.append(net)
    assert len(CACHE) <= MAX_ENTRIES
    model = _unfitted_as_fitted(k=2, seed=99)
    handle = ModelHandle.from_model(model)
    assert get_model(handle) is model  # this process keeps the model itself for its handle
    CACHE.clear()
    rebuilt = get_model(handle)
    assert rebuilt is not model and rebuilt.model_id == model.model_id and get_model(handle) is rebuilt


@pytest.mark.parametrize(
    ("mask", "splits"),
    [
        ({}, [1, 2, 2]),  # the default multi-scale head
        ({"pool": 8, "view": "texture"}, [1, 2, 2]),  # a single view that reads the convolutions
        ({"dilations": (1, 2, 4, 8)}, [1, 2, 2, 2]),
        ({"dilations": (3, 2, 1)}, None),  # dilations that do not nest: the dilated path
    ],
)
def test_the_engine_runs_nested_dilations_undilated_in_phase_layout(mask, splits) -> None:
    enc = _unfitted_as_fitted(k=4, mask=mask).network.encoder
    x = keras.ops.convert_to_tensor(_image((2, 64, 48, 4)))
    assert enc.phase_splits(x.shape) == splits
    assert enc.phase_splits((2, 66, 48, 4)) is None  # sides that the split does not divide
    dilated = keras.ops.convert_to_numpy(enc(x))
    phased = keras.ops.convert_to_numpy(enc(x, phased=True))
    np.testing.assert_allclose(phased, dilated, rtol=1e-5, atol=1e-5 * float(np.abs(dilated).max()))
