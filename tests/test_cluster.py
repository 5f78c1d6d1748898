"""Cluster initialisation: discriminative k-means, the exact linear head, and the model using them."""

from __future__ import annotations

import numpy as np
import pytest

import xr_ktextures as xk
from xr_ktextures.cluster import discriminative_kmeans, kmeans, linear_head


def test_kmeans_keeps_every_cluster_even_with_duplicate_points() -> None:
    x = np.concatenate([np.zeros((40, 2)), np.ones((3, 2)), np.full((2, 2), 5.0)])
    _, labels = kmeans(x, 3, np.random.default_rng(0))
    assert sorted(np.bincount(labels, minlength=3).tolist()) == [2, 3, 40]


def test_discriminant_rounds_keep_the_clusters_along_one_informative_feature() -> None:
    # two clusters differ along one feature only; ten independent noise features blur k-means
    rng = np.random.default_rng(0)
    n = 2000
    truth = rng.integers(0, 2, n)
    noise = rng.normal(0, 1, (n, 10))
    signal = truth[:, None] * 2.5 + rng.normal(0, 0.5, (n, 1))
    x = np.concatenate([noise, signal], axis=1)

    def agreement(labels: np.ndarray) -> float:
        return max(np.mean(labels == truth), np.mean(labels != truth))

    plain = discriminative_kmeans(x, 2, rounds=0, seed=0)
    rounds = discriminative_kmeans(x, 2, rounds=10, seed=0)
    assert rounds.rounds >= 1
    assert agreement(rounds.labels) > 0.95
    assert agreement(rounds.labels) >= agreement(plain.labels)
    kernel, bias = linear_head(rounds)
    np.testing.assert_array_equal((x @ kernel + bias).argmax(1), rounds.labels)


def test_window_means_read_box_means_at_scattered_pixels_borders_included() -> None:
    from xr_ktextures.initialise import window_means
    from xr_ktextures.layers import box_mean

    rng = np.random.default_rng(0)
    col = rng.normal(3, 2, (37, 53, 5)).astype(np.float32)
    ys = np.concatenate([[0, 36, 0, 36], rng.integers(0, 37, 200)])
    xs = np.concatenate([[0, 52, 52, 0], rng.integers(0, 53, 200)])
    got = window_means(col, ys, xs, (0, 1, 3, 8, 20, 40))
    for r, means in got.items():
        assert means.dtype == np.float32 and means.shape == (len(ys), 5)
        full = np.asarray(box_mean(col[None], r))[0]
        np.testing.assert_allclose(means, full[ys, xs], rtol=0, atol=2e-5)


def test_many_classes_use_one_kmeans_start_and_every_class(monkeypatch: pytest.MonkeyPatch) -> None:
    # restarts cost time in proportion to k: above k = 16 fewer, one from k = 43 (fit time at k = 128)
    from xr_ktextures import cluster

    assert [cluster.restarts(k) for k in (2, 5, 16)] == [cluster.N_INIT] * 3
    assert all(cluster.restarts(a) >= cluster.restarts(b) >= 1 for a, b in zip(range(2, 200), range(3, 201)))
    seen: list[int] = []
    real = cluster.kmeans

    def spy(x: np.ndarray, k: int, rng: np.random.Generator, *, n_init: int = 4, iterations: int = 100):  # type: ignore[no-untyped-def]
        seen.append(n_init)
        return real(x, k, rng, n_init=n_init, iterations=iterations)

    monkeypatch.setattr(cluster, "kmeans", spy)
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (64, 3))
    pooled = {r: np.concatenate([centres + rng.normal(0, 0.1, (64, 3)) for _ in range(20)]) for r in (1, 3)}
    choice = cluster.choose_view(pooled, first=3, k=64, seed=0, rounds=1)
    assert set(seen) == {1}
    assert len(np.unique(choice.labels)) == 64


def _two_textures(n: int = 4, size: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Left half: fine noise; right half: coarse blobs; same mean and std per band."""
    rng = np.random.default_rng(seed)
    fine = rng.normal(0, 1, (n, size, size, 4))
    coarse = rng.normal(0, 1, (n, size // 8, size // 8, 4)).repeat(8, 1).repeat(8, 2)
    x = fine.copy()
    x[:, :, size // 2 :] = coarse[:, :, size // 2 :]
    truth = np.zeros((size, size), int)
    truth[:, size // 2 :] = 1
    return (100 + 10 * x).astype(np.float32), truth


def test_cluster_init_separates_textures_with_equal_colour_statistics() -> None:
    x, truth = _two_textures()
    model = xk.KTextures(k=2, seed=0, mask={"cluster_rounds": 5}).fit(x, steps=0, patch_size=32, verbose=0)
    labels = model.predict(x[0])
    h = model.halo
    keep = np.zeros_like(truth, bool)
    keep[h:-h, h : 64 - h] = True  # away from the image edge and the texture boundary
    keep[h:-h, 64 + h : -h] = True
    acc = np.mean(labels[keep] == truth[keep])
    assert max(acc, 1 - acc) > 0.95


def test_hard_sigmoid_refuses_cluster_init_and_defaults_to_training_from_scratch() -> None:
    with pytest.raises(xk.InputError, match="cluster_init needs quantizer='straight_through'"):
        xk.KTextures(k=3, mask=xk.MaskOptions(quantizer="hard_sigmoid", cluster_init=True))
    model = xk.KTextures(k=3, mask={"quantizer": "hard_sigmoid"})
    assert not model.mask.cluster_init and model.network.ablation.finetune_masks


def test_configs_saved_before_the_pooled_head_load_with_their_architecture() -> None:
    from xr_ktextures.network import KTexturesNet

    old = {k: v for k, v in xk.KTextures(k=3).network.get_config().items()}
    for key in ("pool", "zero_mean", "cluster_init", "cluster_rounds", "finetune_masks", "multiscale"):
        old.pop(key)
    old["frontend"] = True
    model = KTexturesNet.from_config(old)
    assert model.pool == 0 and not model.mask_options.cluster_init and model.halo == 16 + 7


def test_configs_saved_by_0_2_0_keep_their_single_view_head() -> None:
    from xr_ktextures.network import KTexturesNet

    saved = xk.KTextures(k=3).network.get_config()
    saved.pop("multiscale")  # 0.2.0 had one pooled view, chosen at fit and saved with the model
    saved.update(pool=8, view="colour", fitted=True)
    model = KTexturesNet.from_config(saved)
    assert not model.multiscale and model.encoder.scales == () and (model.view, model.pool) == ("colour", 8)
    config = {**xk.KTextures(k=3).network.get_config(), "pool": 20, "view": "both", "fitted": True}
    new = KTexturesNet.from_config(config)
    assert new.multiscale and new.encoder.scales == (0, 1, 3, 8, 20) and new.halo == 20 + 7


def test_multiscale_configs_saved_before_the_pixel_scale_keep_their_radii_and_id() -> None:
    from xr_ktextures.network import KTexturesNet

    config = xk.KTextures(k=3).network.get_config()
    assert config["scales"] == [0, 1, 3, 8, 20]
    legacy = {key: v for key, v in config.items() if key != "scales"}  # multi-scale head of 0.2.0 pre-releases
    old = KTexturesNet.from_config(legacy)
    assert old.encoder.scales == (1, 3, 8, 20) and "scales" not in old.get_config()
    assert old.encoder.head.kernel.shape[-1] == 3 * 4  # k logits per radius: the saved weights fit
    again = KTexturesNet.from_config(old.get_config())
    assert again.encoder.scales == (1, 3, 8, 20) and again.model_id == old.model_id
    new = KTexturesNet.from_config(config)
    assert new.encoder.scales == (0, 1, 3, 8, 20) and new.get_config()["scales"] == [0, 1, 3, 8, 20]
    assert new.encoder.head.kernel.shape[-1] == 3 * 5


def test_multiscale_head_sums_one_pooled_linear_map_per_radius() -> None:
    from xr_ktextures.layers import MaskEncoder, box_mean

    enc = MaskEncoder(outputs=3, filters=4, dilations=(1, 2), pool=1, zero_mean=True, scales=(0, 2, 5))
    x = np.random.default_rng(0).normal(size=(1, 24, 24, 4)).astype("float32")
    enc.build(x.shape)
    rng = np.random.default_rng(1)
    enc.head.kernel.assign(rng.normal(size=enc.head.kernel.shape).astype("float32"))
    enc.head.bias.assign(rng.normal(size=enc.head.bias.shape).astype("float32"))
    enc.head_scale.assign(rng.uniform(0.5, 2, size=enc.head_scale.shape).astype("float32"))
    col = np.asarray(enc.hypercolumn(x))
    kernel = np.asarray(enc.head.kernel)[0, 0] * np.repeat(np.asarray(enc.head_scale), 3, axis=1)
    bias = np.asarray(enc.head.bias)
    want = sum(
        np.asarray(box_mean(col @ kernel[:, 3 * s : 3 * s + 3] + bias[3 * s : 3 * s + 3], r))
        for s, r in enumerate((0, 2, 5))
    )
    np.testing.assert_allclose(np.asarray(enc(x)), want, rtol=1e-4, atol=1e-4)
    assert enc.halo == 1 + 2 + 5


def test_spatial_refinement_cleans_noisy_labels_and_keeps_every_class() -> None:
    from xr_ktextures.refine import spatial_refine

    rng = np.random.default_rng(0)
    truth = (np.arange(60)[:, None] // 20 + 0 * np.arange(60)[None]).astype(int)[None]  # 3 bands of rows
    f = rng.normal(0, 1, (1, 60, 60, 4))
    f[..., 0] += 4.0 * truth  # clean evidence; the initial labels are the noisy part
    noisy = np.where(rng.random(truth.shape) < 0.3, rng.integers(0, 3, truth.shape), truth)
    w, b, lab, rounds = spatial_refine(f, noisy, 3, radius=3, seed=0)
    assert rounds >= 1 and set(np.unique(lab)) == {0, 1, 2}
    np.testing.assert_array_equal(lab, (f.reshape(-1, 4) @ w + b).argmax(1).reshape(lab.shape))
    assert (lab == truth).mean() > (noisy == truth).mean() + 0.1
    with pytest.raises(ValueError, match="every class"):
        spatial_refine(f, np.zeros_like(truth), 3, radius=3)


def test_a_class_of_scattered_pixels_neither_stops_the_refinement_nor_is_lost() -> None:
    from xr_ktextures.refine import spatial_refine

    rng = np.random.default_rng(1)
    halves = (np.arange(60)[None, None, :] >= 30).repeat(60, 1).astype(int)  # (1, 60, 60)
    dots = np.zeros(halves.shape, bool)
    dots[:, 3::10, 3::10] = True  # isolated pixels: outvoted by their neighbours everywhere
    truth = np.where(dots, 2, halves)
    f = rng.normal(0, 1, (1, 60, 60, 4))
    f[..., 0] += 4.0 * (truth == 1)
    f[..., 1] += 6.0 * (truth == 2)
    noisy = np.where(~dots & (rng.random(truth.shape) < 0.3), 1 - halves, truth)
    _, _, lab, rounds = spatial_refine(f, noisy, 3, radius=3, seed=0)
    # before, the round that would leave class 2 out of the fit was never run (rounds == 0,
    # the noisy labels kept)
    assert rounds >= 1
    assert (lab[dots] == 2).all() and set(np.unique(lab)) == {0, 1, 2}
    assert (lab == truth).mean() > (noisy == truth).mean() + 0.1


@pytest.mark.parametrize("edges", [False, True])
def test_normalized_cut_gradient_matches_finite_differences(edges: bool) -> None:
    from xr_ktextures.refine import _box, _cut_loss_grad, _edge_weights, _neighbour_sum

    rng = np.random.default_rng(0)
    f = rng.normal(0, 1, (2, 9, 11, 3)).astype(np.float32)
    z = np.ascontiguousarray(f.reshape(-1, 3).T)
    kernel, bias = rng.normal(0, 1, (3, 4)), rng.normal(0, 1, 4)
    if edges:
        weights = _edge_weights(f[..., :2], 2)
        total = float(sum(w.sum() for w in weights.values()))

        def neighbours(p: np.ndarray) -> np.ndarray:
            return _neighbour_sum(p, weights)
    else:
        total = float(z.shape[1])

        def neighbours(p: np.ndarray) -> np.ndarray:
            return _box(p, 2)

    def loss(kern: np.ndarray, b: np.ndarray) -> float:
        return _cut_loss_grad(z, (2, 9, 11), kern, b, neighbours, total)[0]

    _, gk, gb = _cut_loss_grad(z, (2, 9, 11), kernel, bias, neighbours, total)
    eps = 1e-3
    for i, j in [(0, 0), (1, 2), (2, 3)]:
        d = np.zeros_like(kernel)
        d[i, j] = eps
        numeric = (loss(kernel + d, bias) - loss(kernel - d, bias)) / (2 * eps)
        assert abs(numeric - gk[i, j]) < 2e-3 * max(1.0, abs(numeric)), (i, j, numeric, gk[i, j])
    for j in range(4):
        d = np.zeros(4)
        d[j] = eps
        numeric = (loss(kernel, bias + d) - loss(kernel, bias - d)) / (2 * eps)
        assert abs(numeric - gb[j]) < 2e-3 * max(1.0, abs(numeric))


def test_edge_weights_tie_a_pixel_to_neighbours_of_its_colour_only() -> None:
    from xr_ktextures.refine import _edge_weights

    rng = np.random.default_rng(0)
    colour = rng.normal(0, 0.1, (1, 20, 20, 2)).astype(np.float32)
    colour[:, :, 10:, 0] += 3.0  # a sharp edge between columns 9 and 10
    weights = _edge_weights(colour, 4)
    assert set(weights) == {(dy, dx) for dy in (-4, -2, 0, 2, 4) for dx in (-4, -2, 0, 2, 4)} - {(0, 0)}
    across, along = weights[(0, 2)], weights[(2, 0)]
    assert across[0, 5, 8] < 1e-3 < 0.2 < along[0, 5, 8]  # (5, 8) -> (5, 10) crosses the edge
    assert np.all(along[0, -2:] == 0) and np.all(across[0, :, -2:] == 0)  # no neighbour outside the map
    np.testing.assert_allclose(weights[(2, 2)][0, 3, 3], weights[(-2, -2)][0, 5, 5])  # symmetric pairs


def test_the_threaded_neighbour_sum_is_the_single_pass_to_the_bit(monkeypatch) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from xr_ktextures import refine

    rng = np.random.default_rng(0)
    weights = refine._edge_weights(rng.normal(0, 1, (2, 15, 17, 2)).astype(np.float32), 3)
    p = rng.random((7, 2, 15, 17), dtype=np.float32)
    single = refine._neighbour_sum(p, weights)
    # the direct sum, offset by offset, for one pixel of class 3
    want = sum(wt[1, 6, 8] * p[3, 1, 6 + dy, 8 + dx] for (dy, dx), wt in weights.items())
    np.testing.assert_allclose(single[3, 1, 6, 8], want, rtol=1e-5)
    monkeypatch.setattr(refine, "_BLOCK_BYTES", 2 * p[0].nbytes)  # blocks of 2 classes: 4 blocks, the last of 1
    with ThreadPoolExecutor(2) as pool:
        assert np.array_equal(refine._neighbour_sum(p, weights, pool), single)


@pytest.mark.parametrize("edges", [0, 1])
def test_refinement_and_cut_do_not_read_the_gaps(edges: int) -> None:
    # the gaps' features are made up (filled pixels): whatever they hold, the refined and
    # the trained heads are the same, and so are the labels of the valid pixels
    from xr_ktextures.refine import normalized_cut, spatial_refine

    rng = np.random.default_rng(7)
    truth = np.zeros((2, 40, 40), int)
    truth[:, :, 20:] = 1
    f = rng.normal(0, 1, (2, 40, 40, 3))
    f[..., 0] += 3.0 * truth
    labels = np.where(rng.random(truth.shape) < 0.2, 1 - truth, truth)
    valid = rng.random(truth.shape) > 0.3
    other, other_labels = f.copy(), labels.copy()
    other[~valid] = rng.normal(5, 3, (int((~valid).sum()), 3))  # other made-up values in the gaps
    other_labels[~valid] = 0
    w1, b1, lab1, _ = spatial_refine(f, labels, 2, radius=3, seed=0, valid=valid)
    w2, b2, lab2, _ = spatial_refine(other, other_labels, 2, radius=3, seed=0, valid=valid)
    np.testing.assert_allclose(w1, w2, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(b1, b2, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(lab1[valid], lab2[valid])
    assert (lab1[valid] == truth[valid]).mean() > 0.9
    k1, c1, _ = normalized_cut(f, w1, b1, radius=3, steps=20, edges=edges, valid=valid)
    k2, c2, _ = normalized_cut(other, w1, b1, radius=3, steps=20, edges=edges, valid=valid)
    np.testing.assert_allclose(k1, k2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c1, c2, rtol=1e-5, atol=1e-6)
    k3, _, _ = normalized_cut(other, w1, b1, radius=3, steps=20, edges=edges)  # the gaps read: another head
    assert np.abs(k3 - k1).max() > 1e-3


def test_normalized_cut_learns_to_read_the_smoother_feature() -> None:
    from scipy.ndimage import uniform_filter

    from xr_ktextures.refine import normalized_cut

    rng = np.random.default_rng(0)
    truth = (np.arange(48)[None, :, None] // 16 + 0 * np.arange(48)[None, None]).astype(int)  # 3 bands of rows
    f = rng.normal(0, 1, (1, 48, 48, 3))
    f[..., 0] += 1.5 * truth  # weak, noisy evidence per pixel
    f[..., 1] = uniform_filter(f[..., 0], (1, 5, 5), mode="reflect")  # the same, averaged: a wider scale
    kernel = np.array([[0.0, 1.5, 3.0], [0, 0, 0], [0, 0, 0]])  # the start reads the pixel only
    bias = np.array([0.0, -1.125, -4.5])
    start = (f.reshape(-1, 3) @ kernel + bias).argmax(1).reshape(truth.shape)
    kern, b, losses = normalized_cut(f, kernel, bias, radius=3)
    lab = (f.reshape(-1, 3) @ kern + b).argmax(1).reshape(truth.shape)
    assert losses[-1] < losses[0] - 0.1  # the classes of neighbours came to share more information
    assert (lab == truth).mean() > (start == truth).mean() + 0.08
    assert np.abs(kern[1]).sum() > 2 * np.abs(kern[2]).sum()  # weight on the smooth feature, not the noise
    assert set(np.unique(lab)) == {0, 1, 2}


def test_normalized_cut_works_on_a_centre_crop_beyond_its_budget() -> None:
    from xr_ktextures.refine import normalized_cut

    rng = np.random.default_rng(0)
    f = rng.normal(0, 1, (2, 40, 40, 3))
    kernel, bias = rng.normal(0, 1, (3, 2)), np.zeros(2)
    small = normalized_cut(f, kernel, bias, radius=2, steps=5, budget=2 * 2 * 20 * 20)
    crop = normalized_cut(f[:, 10:30, 10:30], kernel, bias, radius=2, steps=5)
    whole = normalized_cut(f, kernel, bias, radius=2, steps=5)
    np.testing.assert_allclose(small[0], crop[0])
    assert not np.allclose(small[0], whole[0])


def _parcels_with_roads(size: int = 160, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two land covers of clear colour in parcels with their own brightness, crossed by 1 px roads."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    pts = rng.uniform(0, size, (40, 2))
    parcel = np.argmin((yy[..., None] - pts[:, 0]) ** 2 + (xx[..., None] - pts[:, 1]) ** 2, axis=-1)
    truth = (np.arange(40) % 2)[parcel]
    truth[(yy % 40 == 19) | (xx % 40 == 19)] = 1  # one-pixel roads of class 1 through every parcel
    spectra = np.array([[60.0, 90.0, 50.0, 160.0], [150.0, 140.0, 130.0, 120.0]])
    img = spectra[truth] + rng.normal(0, 4.0, 40)[parcel][..., None] + rng.normal(0, 6.0, (size, size, 4))
    return img.astype(np.float32), truth


def test_the_head_reads_the_pixel_itself_so_one_pixel_roads_keep_their_class() -> None:
    # every window of the ladder straddles a 1 px road (at radius 1 it is a third of the
    # window): without the pixel's own scale the roads took their parcels' class
    img, truth = _parcels_with_roads()
    model = xk.KTextures(k=2, seed=0).fit(img[None], steps=0, patch_size=64, verbose=0)
    assert model.network.encoder.scales[0] == 0
    labels = model.predict(img)
    acc = np.mean(labels == truth)
    flip = acc < 0.5
    roads = np.zeros_like(truth, bool)
    roads[19::40] = True
    roads[:, 19::40] = True
    assert max(acc, 1 - acc) > 0.98
    assert np.mean((labels[roads] == 1) != flip) > 0.9


def _two_striped_textures() -> tuple[np.ndarray, np.ndarray]:
    # two textures side by side, each drawn as two looks in 4 px stripes: four clusters,
    # where the left texture's second look lies nearer the right texture's first look
    # (3.0 and 4.5) than its own first look (0.0) in feature space
    look = np.tile(np.repeat([0, 1], 4), 8)[None, None, :].repeat(64, 1)  # (1, 64, 64)
    labels = np.where(np.arange(64) >= 32, 2 + look, look)
    centres = np.array([[0.0, 0.0], [3.0, 0.0], [4.5, 0.0], [7.0, 0.0]])
    feats = centres[labels] + np.random.default_rng(0).normal(0, 0.3, (*labels.shape, 2))
    return feats, labels


def test_context_merge_joins_the_pieces_that_surround_each_other_where_ward_joins_the_nearest() -> None:
    from xr_ktextures.refine import context_merge, ward_merge

    feats, labels = _two_striped_textures()
    ward = ward_merge(feats, labels, 2)
    assert len(np.unique(ward[..., :32])) == 2  # Ward's order joins the two nearest looks across textures
    merged = context_merge(feats, labels, 2, radius=3)
    assert len(np.unique(merged[..., :32])) == 1 and len(np.unique(merged[..., 32:])) == 1
    assert merged[0, 0, 0] != merged[0, 0, -1]
    with pytest.raises(ValueError, match="every cluster"):
        context_merge(feats, np.where(labels == 3, 4, labels), 2, radius=3)


def test_piece_context_spans_every_date_and_leaves_gaps_out() -> None:
    from xr_ktextures.refine import piece_context

    # one place, two dates: the land cover is cluster 0 on the first date, cluster 1 on the second
    by_date = np.stack([np.zeros((16, 16), int), np.ones((16, 16), int)])[None]  # (1, 2, 16, 16)
    ctx = piece_context(by_date, 2, radius=2)
    np.testing.assert_allclose(ctx / ctx.sum(1, keepdims=True), 0.5)  # each look's place holds the other
    apart = piece_context(by_date.reshape(2, 16, 16), 2, radius=2)  # the same maps as two patches
    np.testing.assert_allclose(apart, np.diag([256.0, 256.0]))  # nothing around them but themselves
    # a gap (False) neither counts as a pixel of its cluster nor as a neighbour
    labels = np.zeros((1, 8, 8), int)
    labels[0, :, 4:] = 1
    valid = np.ones(labels.shape, bool)
    valid[0, :, 6:] = False
    ctx = piece_context(labels, 2, radius=7, valid=valid)  # the window covers every map
    np.testing.assert_allclose(ctx.sum(1), [32, 16])
    np.testing.assert_allclose(ctx[0] / 32, [32 / 48, 16 / 48])


def test_ward_merge_joins_whole_clusters_in_wards_order() -> None:
    # equal-size clusters: weighted Ward on their centroids merges in the order of SciPy's
    # Ward linkage of the centroids (its sizes are then proportional to the weights)
    import warnings

    from scipy.cluster.hierarchy import fcluster, linkage
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.metrics import adjusted_rand_score

    from xr_ktextures.refine import ward_merge

    rng = np.random.default_rng(7)  # a draw on which centroid, single and average linkage differ from Ward's
    centres = rng.normal(0, 4, (7, 3))
    over = np.repeat(np.arange(7), 300)
    x = centres[over] + rng.normal(0, 1, (len(over), 3)) * [1.0, 0.5, 2.0]
    merged = ward_merge(x, over, 3)
    assert sorted(np.unique(merged).tolist()) == [0, 1, 2]
    assert all(len(np.unique(merged[over == j])) == 1 for j in range(7))  # whole clusters only
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z = LinearDiscriminantAnalysis(solver="eigen", shrinkage=1e-3).fit(x, over).transform(x)
    reference = fcluster(linkage(np.stack([z[over == j].mean(0) for j in range(7)]), "ward"), 3, "maxclust")
    assert adjusted_rand_score(reference, merged[::300]) == 1.0
    with pytest.raises(ValueError, match="every cluster"):
        ward_merge(x, np.where(over == 6, 7, over), 3)  # cluster 6 absent


def test_the_merges_leave_the_gaps_made_up_values_out_of_the_centres() -> None:
    from xr_ktextures.refine import context_merge, ward_merge

    # two blobs, each in two clusters; cluster 1 (of the blob at 0) also holds gap pixels
    # whose filled values lie at the other blob
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2, 3], 200)
    labels = np.concatenate([labels, np.ones(600, int)])
    centre = np.array([0.0, 0.5, 8.0, 8.5])[labels]
    centre[800:] = 8.2
    feats = (centre[:, None] + rng.normal(0, 0.2, (len(labels), 2)))[None, None]  # (1, 1, 1400, 2)
    labels, valid = labels[None, None], (np.arange(1400) < 800)[None, None]
    for merge in (ward_merge, lambda f, lab, k, **kw: context_merge(f, lab, k, radius=1, **kw)):
        with_gaps = merge(feats, labels, 2)[0, 0, :800]
        assert with_gaps[200] == with_gaps[400]  # cluster 1's centre pulled to the other blob
        kept = merge(feats, labels, 2, valid=valid)[0, 0, :800]
        assert kept[0] == kept[200] != kept[400] == kept[600]
