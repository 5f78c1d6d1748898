"""The estimator and its network on numpy arrays: quantizers, halo, fit, predict, simulate, save/load.

Backend-agnostic: CI runs this file under TensorFlow and again under JAX.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
import pytest

from xr_ktextures import NODATA, InputError, KTextures, NotFittedError, WeightsNotFoundError
from xr_ktextures.cluster import POOL_LADDER
from xr_ktextures.network import KTexturesNet
from xr_ktextures.noise import position_noise
from xr_ktextures.quantizers import HardSigmoidQuantizer, StraightThroughQuantizer

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def patches() -> np.ndarray:
    rng = np.random.default_rng(1)
    a = rng.normal(100, 5, (6, 48, 48, 4))
    a[3:] += rng.normal(0, 30, (3, 48, 48, 4))
    return a.astype(np.float32)


@pytest.fixture(scope="module")
def fitted(patches: np.ndarray) -> KTextures:
    return KTextures(k=3, seed=0).fit(patches, steps=3, batch_size=2, patch_size=32, verbose=0)


@pytest.mark.parametrize("quantizer", [StraightThroughQuantizer(5), HardSigmoidQuantizer(5)])
def test_quantizer_masks_are_binary_and_one_per_pixel(quantizer) -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(2, 7, 9, quantizer.encoder_outputs)).astype(np.float32)
    masks = keras.ops.convert_to_numpy(quantizer(z))
    np.testing.assert_allclose(np.sort(np.unique(masks.round(6))), [0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(masks.sum(-1), 1.0, atol=1e-6)
    labels = keras.ops.convert_to_numpy(quantizer.labels(z))
    np.testing.assert_array_equal(masks.argmax(-1), labels)


def test_hard_sigmoid_quantizer_cuts_one_value_into_k_ordered_intervals() -> None:
    q = HardSigmoidQuantizer(4)
    z = np.linspace(-1.5, 1.5, 61, dtype=np.float32)[:, None]
    labels = keras.ops.convert_to_numpy(q.labels(z))
    assert (np.diff(labels) >= 0).all()
    assert set(labels.tolist()) == {0, 1, 2, 3}
    soft = keras.ops.convert_to_numpy(q.soft(z))
    np.testing.assert_allclose(soft.sum(-1), 1.0, atol=1e-6)
    assert (soft >= -1e-6).all()


@pytest.mark.parametrize("k", [1, 129, 2.5, True])
def test_k_out_of_range_is_refused_with_the_package_s_input_error(k) -> None:
    with pytest.raises(InputError, match="k must be an integer from 2 to 128"):
        KTextures(k=k)


def test_k_128_trains_and_predicts_every_one_of_its_classes() -> None:
    mask = {"filters": 4, "dilations": (1,), "pool": 1, "view": "colour", "cluster_init": False}
    m = KTextures(k=128, mask=mask, textures={"filters": 2, "noise": 1, "dilations": (1,)}, seed=0)
    patches = np.random.default_rng(0).normal(size=(2, 32, 32, 4)).astype(np.float32)
    m.fit(patches, steps=1, batch_size=1, patch_size=32, verbose=0)
    # a head whose nearest-centre rule on band 0 gives class j to values near j
    net = m.network
    net.scaler.set_statistics([0.0] * 4, [1.0] * 4)
    centres = np.arange(128, dtype=np.float32)
    kernel = np.zeros(tuple(net.encoder.head.kernel.shape), np.float32)
    kernel[0, 0, 0] = centres
    net.encoder.head.kernel.assign(kernel)
    net.encoder.head.bias.assign(-(centres**2) / 2)
    x = np.zeros((8, 512, 4), np.float32)
    x[..., 0] = np.repeat(centres, 4)  # class j over 4 px of a ramp
    labels = m.predict(x)
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, np.broadcast_to(np.repeat(np.arange(128), 4), (8, 512)))


def test_halo_is_the_exact_context_radius(fitted: KTextures) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(100, 20, (1, 80, 80, 4)).astype(np.float32)
    h = fitted.halo
    assert fitted.pool in POOL_LADDER and fitted.view in ("colour", "texture", "both")
    assert h == (sum(fitted.mask.dilations) if fitted.view != "colour" else 0) + fitted.pool
    net = fitted.network
    z0 = keras.ops.convert_to_numpy(net.encoder(net.scaler(x)))
    far = x.copy()
    far[:, 40 + h + 1 :, :, :] = 0.0  # only pixels further than the halo from row 40 change
    z1 = keras.ops.convert_to_numpy(net.encoder(net.scaler(far)))
    np.testing.assert_allclose(z0[:, : 40 + 1], z1[:, : 40 + 1], rtol=1e-5, atol=1e-5)
    near = x.copy()
    near[:, 40 + h, 40, :] += 1000.0  # a pixel exactly at the halo distance does matter
    z2 = keras.ops.convert_to_numpy(net.encoder(net.scaler(near)))
    assert not np.allclose(z0[:, 40, 40], z2[:, 40, 40])


def test_fit_is_reproducible_with_a_seed(patches: np.ndarray) -> None:
    a = KTextures(k=3, seed=7).fit(patches, steps=2, batch_size=2, patch_size=32, verbose=0)
    b = KTextures(k=3, seed=7).fit(patches, steps=2, batch_size=2, patch_size=32, verbose=0)
    for wa, wb in zip(a.network.get_weights(), b.network.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert a.model_id == b.model_id


def test_fit_stores_band_scaling_in_the_model(fitted: KTextures, patches: np.ndarray) -> None:
    mean = keras.ops.convert_to_numpy(fitted.network.scaler.mean)
    np.testing.assert_allclose(mean, patches.mean(axis=(0, 1, 2)), rtol=1e-4)


def test_predict_any_size_and_batch(fitted: KTextures) -> None:
    rng = np.random.default_rng(0)
    one = fitted.predict(rng.normal(100, 9, (37, 53, 4)).astype(np.float32))
    assert one.shape == (37, 53) and one.dtype == np.uint8 and one.max() < 3
    many = fitted.predict(rng.normal(100, 9, (2, 21, 30, 4)))
    assert many.shape == (2, 21, 30)


def test_predict_marks_nan_pixels_nodata_and_only_them(fitted: KTextures) -> None:
    x = np.random.default_rng(0).normal(100, 9, (30, 30, 4)).astype(np.float32)
    x[5, 6, 2] = np.nan
    labels, sim = fitted.predict(x), fitted.simulate(x)
    assert labels[5, 6] == NODATA
    assert (np.delete(labels.ravel(), 5 * 30 + 6) < 3).all()
    assert np.isnan(sim[5, 6]).all() and np.isfinite(np.delete(sim.reshape(-1, 4), 5 * 30 + 6, 0)).all()


def test_simulated_image_is_mask_times_texture_in_band_units(fitted: KTextures) -> None:
    x = np.random.default_rng(0).normal(100, 9, (24, 24, 4)).astype(np.float32)
    labels, sim = fitted.predict(x), fitted.simulate(x)
    assert labels.shape == x.shape[:2] and labels.dtype == np.uint8
    assert sim.shape == x.shape and sim.dtype == np.float32
    h, net = fitted.halo, fitted.network
    noise = position_noise((-h, -h), (24 + 2 * h, 24 + 2 * h), fitted.k * fitted.textures.noise, fitted.seed)
    tex = keras.ops.convert_to_numpy(net.textures(noise[None]))[0, h:-h, h:-h]  # (24, 24, k, bands)
    chosen = np.take_along_axis(tex, labels[:, :, None, None].astype(int), axis=2)[:, :, 0]
    mean = keras.ops.convert_to_numpy(net.scaler.mean)
    scale = keras.ops.convert_to_numpy(net.scaler.scale)
    np.testing.assert_allclose(sim, chosen * scale + mean, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("radius", [1, 4, 15])
def test_box_mean_averages_the_valid_pixels_of_each_window_image_by_image(radius: int) -> None:
    from xr_ktextures.layers import box_mean

    x = np.random.default_rng(3).normal(5, 2, (2, 23, 31, 3)).astype(np.float32)
    got = keras.ops.convert_to_numpy(box_mean(x, radius))
    want = np.empty_like(x)
    for i in range(23):
        for j in range(31):
            win = x[:, max(i - radius, 0) : i + radius + 1, max(j - radius, 0) : j + radius + 1]
            want[:, i, j] = win.mean(axis=(1, 2))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_a_training_call_renders_one_texture_canvas_shared_by_the_batch(fitted: KTextures) -> None:
    net = fitted.network
    x = np.random.default_rng(2).normal(100, 20, (3, 32, 32, 4)).astype(np.float32)
    out = net(x, training=True)
    tex, masks = (keras.ops.convert_to_numpy(out[n]) for n in ("textures", "masks"))
    assert tex.shape == (1, 32, 32, 3, 4)
    sim = keras.ops.convert_to_numpy(out["simulated"])
    np.testing.assert_allclose(sim, (masks[..., None] * tex).sum(axis=3), rtol=1e-5, atol=1e-5)
    # the texture-match term of the batch is the mean of each image's term against the canvas
    ext, scale = net.extractor(), net._unsaved.feature_scale
    f_true = ext(out["scaled"])
    batch = float(net._texture_match_loss(ext, f_true, out, scale))
    each = [
        float(net._texture_match_loss(ext, f_true[i : i + 1], {**out, "masks": out["masks"][i : i + 1]}, scale))
        for i in range(3)
    ]
    assert batch == pytest.approx(np.mean(each), rel=1e-5)


@pytest.mark.parametrize("k", [3, 20])
def test_texture_bank_mixes_by_block_diagonal_products_as_by_per_texture_ones(k: int, monkeypatch) -> None:
    # narrow banks mix with one block-diagonal product (faster); it must be the same function
    from xr_ktextures import textures
    from xr_ktextures.textures import TextureBank

    bank = TextureBank(k=k, bands=4)
    noise = keras.random.normal((2, 8, 8, k * bank.noise), seed=0)
    bank(noise)
    assert (k * bank.filters <= textures.BLOCK_DIAGONAL_MAX) == (k == 3)
    for w in bank.mix_biases:
        w.assign(np.random.default_rng(k).normal(0, 1, tuple(w.shape)).astype(np.float32))
    outputs = []
    for widest in (10_000, 0):  # every layer block-diagonal, then every layer per texture
        monkeypatch.setattr(textures, "BLOCK_DIAGONAL_MAX", widest)
        outputs.append(keras.ops.convert_to_numpy(bank(noise)))
    assert outputs[0].shape == (2, 8, 8, k, 4)
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)


def test_position_noise_depends_only_on_global_position() -> None:
    a = position_noise((0, 0), (10, 12), 3, seed=1)
    b = position_noise((4, 5), (6, 7), 3, seed=1)
    np.testing.assert_array_equal(a[4:10, 5:12], b)
    assert abs(a.mean()) < 0.5 and 0.5 < a.std() < 1.5
    assert not np.array_equal(a, position_noise((0, 0), (10, 12), 3, seed=2))


def test_save_and_load_give_identical_labels(fitted: KTextures, tmp_path) -> None:
    from xr_ktextures import load_model

    path = tmp_path / "m.keras"
    fitted.save(path)
    loaded = load_model(path)
    x = np.random.default_rng(5).normal(100, 20, (40, 40, 4)).astype(np.float32)
    np.testing.assert_array_equal(fitted.predict(x), loaded.predict(x))
    assert loaded.model_id == fitted.model_id and loaded.halo == fitted.halo and loaded.k == 3


def test_a_model_saved_by_0_2_0_loads_and_gives_its_labels_and_simulation() -> None:
    # written by tests/data/make_0_2_0_fixture.py with xr_ktextures 0.2.0 (before the restructure)
    from xr_ktextures import load_model

    expected = np.load(DATA / "ktextures_0.2.0_expected.npz")
    model = load_model(DATA / "ktextures_0.2.0.keras")
    assert isinstance(model, KTextures) and isinstance(model.network, KTexturesNet)
    assert model.model_id == str(expected["model_id"])
    np.testing.assert_array_equal(model.predict(expected["x"]), expected["labels"])
    np.testing.assert_allclose(model.simulate(expected["x"]), expected["simulated"], rtol=1e-5, atol=1e-4)


def test_configs_round_trip_and_a_newer_config_fails_naming_this_version(fitted: KTextures) -> None:
    import xr_ktextures as xk

    cfg = fitted.network.get_config()
    again = KTexturesNet.from_config(cfg)
    assert again.get_config() == cfg
    with pytest.raises(InputError, match=rf"'colour_space'.*xr_ktextures {xk.__version__} does not know"):
        KTexturesNet.from_config({**cfg, "colour_space": "lab"})


def test_the_estimator_is_not_a_keras_model_and_its_network_is() -> None:
    m = KTextures(k=2)
    assert not isinstance(m, keras.Model) and isinstance(m.network, keras.Model)
    assert "fit" not in KTexturesNet.__dict__ and "predict" not in KTexturesNet.__dict__  # Keras' own, untouched


def test_options_of_the_0_2_constructor_say_where_they_live_now() -> None:
    with pytest.raises(InputError, match=r"'encoder_filters' is now mask=MaskOptions\(filters=...\)"):
        KTextures(k=2, encoder_filters=8)
    with pytest.raises(InputError, match="'frontend' is now an experiment switch"):
        KTextures(k=2, frontend=True)


def test_unfitted_model_refuses_to_predict_and_simulate() -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        KTextures(k=2).predict(np.zeros((8, 8, 4), np.float32))
    with pytest.raises(NotFittedError, match="not fitted"):
        KTextures(k=2).simulate(np.zeros((8, 8, 4), np.float32))


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.zeros((4, 40, 40, 3), np.float32), r"\(N, H, W, 4\)"),
        (np.zeros((40, 40, 4), np.float32), r"\(N, H, W, 4\)"),
        (np.zeros((4, 20, 20, 4), np.float32), "smaller than patch_size"),
        (np.full((4, 40, 40, 4), np.nan, np.float32), "100% of the patches' pixels are NaN or inf"),
        (
            np.where(np.arange(40) % 3 == 0, np.float32(1), np.inf)[None, :, None, None] * np.ones((4, 1, 40, 4)),
            "at most half may be gaps",
        ),
    ],
)
def test_fit_rejects_bad_patches_before_training(bad, match) -> None:
    with pytest.raises(InputError, match=match):
        KTextures(k=2).fit(bad, steps=1, patch_size=32, verbose=0)


def test_vgg16_without_weights_fails_clearly_and_never_downloads(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match="never downloads"):
        KTextures(k=2, loss={"extractor": "vgg16"})
    with pytest.raises(WeightsNotFoundError, match=r"missing\.h5"):
        from xr_ktextures.features import vgg16_extractor

        vgg16_extractor(tmp_path / "missing.h5")


def test_a_user_keras_model_can_be_the_extractor(patches: np.ndarray) -> None:
    inp = keras.Input((None, None, 4))
    feats = keras.layers.AveragePooling2D(8)(keras.layers.Conv2D(6, 3, padding="same")(inp))
    ext = keras.Model(inp, feats)
    m = KTextures(k=2, loss={"extractor": ext}).fit(patches, steps=2, batch_size=2, patch_size=32, verbose=0)
    assert ext.trainable is False
    assert m.predict(patches[0]).shape == (48, 48)


@pytest.mark.xfail(
    keras.backend.backend() == "jax",
    reason="found by this test, also on 0.2.0: on these 48 px patches JAX's draw of the head gives a "
    "value of 0.04-0.13 at every pixel, outside every ramp of the staircase (0.18-0.48 for k=3), so "
    "no gradient reaches the mask CNN; TensorFlow's draw puts pixels in a ramp. On 512 px mosaics "
    "both backends train it from one or two classes to all k (docs/quality.md)",
    strict=True,
)
def test_paper_quantizer_trains_the_whole_mask_cnn_and_changes_the_masks(patches: np.ndarray) -> None:
    start = KTextures(k=3, mask={"quantizer": "hard_sigmoid"}, seed=0)
    start.fit(patches, steps=0, batch_size=2, patch_size=32, verbose=0)  # scaled, not trained
    trained = KTextures(k=3, mask={"quantizer": "hard_sigmoid"}, seed=0)
    trained.fit(patches, steps=6, batch_size=2, patch_size=32, verbose=0)
    assert not trained.mask.cluster_init  # one value per pixel: trained from random weights
    for branch in ("encoder", "textures"):  # every trainable weight of both branches moved
        before = getattr(start.network, branch).trainable_weights
        after = getattr(trained.network, branch).trainable_weights
        assert len(before) == len(after) > 0
        for a, b in zip(before, after):
            assert not np.allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)), a.path
    before = start.predict(patches)
    after = trained.predict(patches)
    assert after.dtype == np.uint8 and after.max() < 3
    assert (before != after).any()  # the masks changed with training


def test_unknown_options_are_refused_with_the_value() -> None:
    with pytest.raises(ValueError, match="'fuzzy'"):
        KTextures(k=3, mask={"quantizer": "fuzzy"})
    with pytest.raises(ValueError, match="'resnet'"):
        KTextures(k=3, loss={"extractor": "resnet"})


def test_config_is_plain_python_and_pickles(fitted: KTextures) -> None:
    import pickle

    named = KTextures(k=2, band_names=["r", "g", "b", "n"])
    for m in (fitted, named):
        cfg = m.network.get_config()
        assert pickle.loads(pickle.dumps(cfg)) == cfg
        assert all(type(v) in (int, float, str, bool, list, type(None)) for v in cfg.values()), cfg
    assert named.band_names == ["r", "g", "b", "n"]


def test_cluster_initialisation_reads_features_a_few_patches_at_a_time(monkeypatch) -> None:
    # the pooled hypercolumn is ~100 floats per pixel: 32 patches of 512 px in one call
    # took 11 GB; the initialisation must bound each call by pixels, not by patch count
    model = KTextures(k=3, seed=0)
    seen: list[tuple[int, ...]] = []
    original = model.network.encoder.hypercolumn

    def spy(x):
        seen.append(tuple(x.shape))
        return original(x)

    monkeypatch.setattr(model.network.encoder, "hypercolumn", spy)
    patches = np.random.default_rng(0).random((6, 320, 320, 4), dtype=np.float32)
    model.fit(patches, steps=0, verbose=0)
    # two passes: pixels sampled for the choice of view, then the label maps of the refinement
    assert sum(s[0] for s in seen) == 6 * 2
    assert all(s[0] * s[1] * s[2] <= 1 << 18 for s in seen)  # 2 patches of 320 px per call


def test_the_paper_preset_is_a_1x1_hard_sigmoid_model_trained_from_random_weights(
    patches: np.ndarray, tmp_path
) -> None:
    model = KTextures(k=4, architecture="paper", seed=0)
    assert model.halo == 0 and model.mask.quantizer == "hard_sigmoid" and not model.mask.cluster_init
    assert model.loss.texture_match == 0 and model.loss.balance == 0
    before = [w.copy() for w in model.network.encoder.get_weights()]
    model.fit(patches, steps=3, batch_size=2, patch_size=32, verbose=0)
    after = model.network.encoder.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))  # the mask CNN itself trained
    labels = model.predict(patches[0])
    assert labels.dtype == np.uint8 and labels.max() < 4
    path = tmp_path / "paper.keras"
    model.save(path)
    from xr_ktextures import load_model

    back = load_model(path)
    assert back.architecture == "paper" and back.halo == 0
    np.testing.assert_array_equal(back.predict(patches[0]), labels)


def test_gradient_descent_trains_the_initialised_mask_head_and_keeps_the_random_filters(patches: np.ndarray) -> None:
    frozen = KTextures(k=3, seed=0, _ablation={"finetune_masks": False})
    frozen.fit(patches, steps=3, batch_size=2, patch_size=32, verbose=0)
    trained = KTextures(k=3, seed=0).fit(patches, steps=3, batch_size=2, patch_size=32, verbose=0)
    assert trained.network.ablation.finetune_masks and (trained.view, trained.pool) == (frozen.view, frozen.pool)
    enc0, enc1 = frozen.network.encoder, trained.network.encoder
    for a, b in zip(enc0.convs, enc1.convs):
        np.testing.assert_array_equal(a.get_weights()[0], b.get_weights()[0])
    k0 = keras.ops.convert_to_numpy(enc0.head.kernel)
    k1 = keras.ops.convert_to_numpy(enc1.head.kernel)
    assert not np.allclose(k0, k1)  # the head moved under gradient descent
    assert enc1.trainable and all(c.trainable for c in enc1.convs)  # restored after fit


def test_the_normalised_cut_trains_the_initial_head_and_only_its_ablation_is_written(patches: np.ndarray) -> None:
    # k clusters (no over-clustering): on these six small patches the merged start can
    # leave a class too rare to show, where the view's head stays and nothing is cut
    k_clusters = {"overcluster": False}
    plain = KTextures(k=3, seed=0, _ablation={"normalized_cut": False, **k_clusters})
    plain.fit(patches, steps=0, patch_size=32, verbose=0)
    cut = KTextures(k=3, seed=0, _ablation=k_clusters).fit(patches, steps=0, patch_size=32, verbose=0)
    k0 = keras.ops.convert_to_numpy(plain.network.encoder.head.kernel)
    k1 = keras.ops.convert_to_numpy(cut.network.encoder.head.kernel)
    assert not np.allclose(k0, k1)  # gradient descent on the cut moved the refined head
    assert plain.network.get_config()["normalized_cut"] is False
    assert "normalized_cut" not in cut.network.get_config()  # the default's switch is not written
    assert KTexturesNet.from_config(plain.network.get_config()).ablation.normalized_cut is False


def test_the_wards_merge_and_the_k_clusters_ablations_are_written_only_when_on(patches, monkeypatch) -> None:
    from xr_ktextures import initialise

    merges: list[int] = []
    real = initialise.ward_merge

    def spy(features, labels, k, **kw):
        merges.append(int(labels.max()) + 1)
        return real(features, labels, k, **kw)

    monkeypatch.setattr(initialise, "ward_merge", spy)
    plain = KTextures(k=3, seed=0, _ablation={"overcluster": False}).fit(patches, steps=0, patch_size=32, verbose=0)
    assert merges == []  # k clusters: nothing to merge
    ward = {"context_merge": False}
    over = KTextures(k=3, seed=0, _ablation=ward).fit(patches, steps=0, patch_size=32, verbose=0)
    assert merges == [6]  # OVERCLUSTER x k clusters of the chosen view, merged to k by Ward's criterion
    assert len(np.unique(over.predict(patches))) == 3
    assert over.network.get_config()["context_merge"] is False and "overcluster" not in over.network.get_config()
    assert plain.network.get_config()["overcluster"] is False and "context_merge" not in plain.network.get_config()
    for model in (plain, over):
        assert KTexturesNet.from_config(model.network.get_config()).ablation == model.network.ablation
    monkeypatch.setattr(initialise, "OVERCLUSTER_MAX", 5)  # a compute bound: 2k = 6 pieces are too many
    KTextures(k=3, seed=0, _ablation=ward).fit(patches, steps=0, patch_size=32, verbose=0)
    assert merges == [6]  # the k clusters, as with overcluster=False


def test_the_default_merges_its_overclustering_by_the_surroundings(patches, monkeypatch) -> None:
    from xr_ktextures import initialise

    calls: list[tuple[int, int]] = []
    real = initialise.context_merge

    def spy(features, labels, k, **kw):
        calls.append((int(labels.max()) + 1, kw["radius"]))
        return real(features, labels, k, **kw)

    widths: list[float] = []
    real_width = initialise.region_width
    monkeypatch.setattr(initialise, "region_width", lambda *a: widths.append(real_width(*a)) or widths[-1])
    monkeypatch.setattr(initialise, "context_merge", spy)
    model = KTextures(k=3, seed=0).fit(patches, steps=0, patch_size=32, verbose=0)
    # 2k clusters; a window as wide as the k classes' regions (48 px patches: every pixel read),
    # at most the head's widest (radius 20 px)
    assert len(widths) == 1 and calls == [(6, int(np.clip(int(widths[0]) // 2, 1, 20)))]
    assert len(np.unique(model.predict(patches))) == 3
    config = model.network.get_config()
    assert "context_merge" not in config and "overcluster" not in config  # the default's config is as before
    ablation = KTexturesNet.from_config(config).ablation
    assert ablation.context_merge is None and ablation.merges_by_context and ablation.overcluster is True
    assert not dataclasses.replace(ablation, overcluster=False).merges_by_context  # None follows overcluster
    with pytest.raises(InputError, match="leave overcluster on"):
        KTextures(k=3, _ablation={"overcluster": False, "context_merge": True})


def test_patches_of_places_at_several_dates_reach_the_context_merge_date_by_date(patches, monkeypatch) -> None:
    from xr_ktextures import initialise

    shapes: list[tuple[int, ...]] = []
    real = initialise.context_merge

    def spy(features, labels, k, **kw):
        shapes.append(labels.shape)
        assert features.shape[:-1] == labels.shape
        return real(features, labels, k, **kw)

    monkeypatch.setattr(initialise, "context_merge", spy)
    places = patches.reshape(3, 2, 48, 48, 4)  # three places at two dates
    model = KTextures(k=3, seed=0).fit(places, steps=1, batch_size=2, patch_size=32, verbose=0)
    assert shapes == [(3, 2, 48, 48)]  # (places, dates, h, w): 48 px patches, every pixel read
    assert model.predict(patches).shape == (6, 48, 48)
    flat = KTextures(k=3, seed=0).fit(patches, steps=0, patch_size=32, verbose=0)
    assert shapes[1] == (6, 1, 48, 48)  # one date per patch
    assert flat.fitted
    with pytest.raises(InputError, match=r"\(N, dates, H, W, 4\)"):
        KTextures(k=3).fit(places[None], steps=0, patch_size=32, verbose=0)
    with pytest.raises(InputError, match=r"\(N, dates, H, W, 4\)"):
        KTextures(k=3).fit(places[:, :0], steps=0, patch_size=32, verbose=0)


def test_a_config_saved_by_0_2_pre_releases_loads_with_its_fixed_window_and_unscaled_head() -> None:
    old = KTextures(k=3, mask={"pool": 20}, seed=0).network.get_config()
    for key in ("view", "auto_context", "scaled_head", "architecture"):
        old.pop(key)
    model = KTexturesNet.from_config(old)
    assert (model.pool, model.view, model.halo) == (20, "both", 27)
    assert not model.encoder.scaled_head and not model.auto_context


def test_repeated_fits_in_one_process_warn_of_no_retracing(patches: np.ndarray) -> None:
    import logging

    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.function retracing is TensorFlow's")
    from xr_ktextures._quiet import import_backend_quietly

    import_backend_quietly(set_level=False)  # as fit/segment/simulate/load_model do
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Collect()
    tf_log = logging.getLogger("tensorflow")
    tf_log.addHandler(handler)
    try:
        for seed in range(7):  # TensorFlow warns from the 5th trace at one code location
            m = KTextures(k=2 + seed % 2, seed=seed, mask={"cluster_init": False})
            m.fit(patches, steps=1, batch_size=2, patch_size=32, verbose=0)
            m.predict(patches[0])
    finally:
        tf_log.removeHandler(handler)
    assert not [s for s in seen if "retracing" in s]


def test_a_fit_traces_its_compiled_train_step_once(patches: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    if keras.backend.backend() == "torch":
        pytest.skip("PyTorch runs the train step eagerly: nothing is traced")
    calls: list[int] = []
    step = keras.Model.train_step

    def counting(self: KTexturesNet, *args: object) -> object:
        calls.append(1)  # Python runs the body once per trace, not per step
        return step(self, *args)

    monkeypatch.setattr(KTexturesNet, "train_step", counting)
    m = KTextures(k=2, seed=0, mask={"cluster_init": False})
    m.fit(patches, steps=3, batch_size=2, patch_size=32, verbose=0)
    # Optimizer slots created while TensorFlow traces would make it trace a second time
    assert len(calls) == 1


@pytest.mark.parametrize("dilation", [1, 3])
def test_gabor_energy_in_row_and_column_passes_equals_the_2d_convolution(dilation: int) -> None:
    from keras import ops

    from xr_ktextures._gabor import gabor_energy, gabor_kernels, separable_factors

    kernel = gabor_kernels(7, 0.25, 4)
    assert separable_factors(kernel) is not None
    grey = np.random.default_rng(0).normal(0, 1, (2, 29, 31, 1)).astype("float32")
    direct = ops.conv(
        ops.convert_to_tensor(grey), ops.convert_to_tensor(kernel), padding="same", dilation_rate=dilation
    )
    expected = ops.convert_to_numpy(direct).reshape(2, 29, 31, 4, 2)
    got = ops.convert_to_numpy(gabor_energy(grey, kernel, 4, dilation))
    np.testing.assert_allclose(got, (expected**2).sum(-1), rtol=1e-4, atol=1e-5)  # borders included
    full_rank = np.random.default_rng(1).normal(0, 1, (7, 7, 1, 8)).astype("float32")
    assert separable_factors(full_rank) is None  # nothing to save: the 2-D convolution runs


def test_the_training_loop_gives_callbacks_every_step_and_honours_stop_training(patches: np.ndarray) -> None:
    seen: list[tuple[str, int, float]] = []

    class Watch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            seen.append(("batch", batch, float(logs["loss"])))

        def on_train_end(self, logs: dict | None = None) -> None:
            seen.append(("end", -1, float(logs["loss"])))

    m = KTextures(k=2, seed=0, mask={"cluster_init": False})
    m.fit(patches, steps=4, batch_size=2, patch_size=32, verbose=0, callbacks=[Watch()])
    assert [s[:2] for s in seen] == [("batch", 0), ("batch", 1), ("batch", 2), ("batch", 3), ("end", -1)]
    assert all(np.isfinite(s[2]) and s[2] > 0 for s in seen)
    assert int(m.network.optimizer.iterations) == 4

    class StopAfterTwo(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if batch == 1:
                self.model.stop_training = True

    m = KTextures(k=2, seed=0, mask={"cluster_init": False})
    m.fit(patches, steps=5, batch_size=2, patch_size=32, verbose=0, callbacks=[StopAfterTwo()])
    assert int(m.network.optimizer.iterations) == 2


def test_fit_fills_a_few_gaps_and_scales_by_the_valid_values(patches: np.ndarray) -> None:
    gappy = patches.copy()
    gappy[:, ::7, ::5] = np.nan  # 3 % of the pixels
    m = KTextures(k=2, seed=0).fit(gappy, steps=1, batch_size=2, patch_size=32, verbose=0)
    mean = keras.ops.convert_to_numpy(m.network.scaler.mean)
    np.testing.assert_allclose(mean, np.nanmean(gappy, axis=(0, 1, 2)), rtol=1e-5)  # not pulled by the fill
    labels = m.predict(gappy[0])
    assert (labels[::7, ::5] == NODATA).all() and (labels != NODATA).sum() == labels.size - 7 * 10
