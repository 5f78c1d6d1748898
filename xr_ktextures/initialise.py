"""The initialisation of a model from a clustering of its training sample.

:func:`initialise_masks` sets the mask head from :func:`~xr_ktextures.cluster.choose_view`
(and, for the multi-scale head, :func:`~xr_ktextures.refine.spatial_refine`) and the
textures' mean colours from the classes. numpy; Keras is imported when called.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .cluster import POOL_LADDER, ViewChoice, choose_view, discriminative_kmeans, linear_head
from .refine import (
    MODE_RADIUS,
    OVERCLUSTER,
    OVERCLUSTER_MAX,
    context_merge,
    multiscale_space,
    normalized_cut,
    region_width,
    spatial_refine,
    ward_merge,
)

__all__ = ["HEAD_STEP", "initialise_masks", "seed_texture_colours", "window_means"]


HEAD_STEP = 0.02
"""Step size of the mask head relative to the textures' (see :func:`initialise_masks`)."""


def initialise_masks(
    encoder: Any,
    textures: Any,
    scaled: np.ndarray,
    rng: np.random.Generator,
    *,
    k: int,
    seed: int,
    rounds: int,
    auto_context: bool,
    pixels: int = 60_000,
    cut: bool = True,
    over: bool = False,
    merge: str = "ward",
    valid: np.ndarray | None = None,
    dates: int = 1,
) -> tuple[dict[str, float] | None, str]:
    """Set the mask head (and, with ``auto_context``, its radius and view) from a clustering of the sample.

    The hypercolumn of the patches is averaged over every candidate radius and read at
    the same pixels, at least the largest context from a patch edge when the patches are
    large enough (so they see the same context as at inference); :func:`choose_view`
    picks the view and fits the head; a multi-scale head (``encoder.scales``) is then
    fitted from that view's labels by :func:`spatial_refine`, then trained by gradient
    descent on :func:`normalized_cut` with colour-weighted neighbours
    (:func:`_refine_multiscale`; ``cut=False`` skips that, an ablation).
    The head's weights are stored in units of each
    input channel's spread over the sample, times :data:`HEAD_STEP` (Adam's steps, about
    the learning rate per weight, then move each channel's share of the logits alike, at
    ``HEAD_STEP`` times the textures' pace). The textures' mean colours are set from the
    clusters.

    Parameters
    ----------
    encoder : MaskEncoder
        The mask branch; its head (and ``pool``/``view``) are set in place.
    textures : TextureBank
        The texture branch; its last bias (mean colours) is set in place.
    scaled : numpy.ndarray
        ``(N, H, W, bands)`` standardised training patches.
    rng : numpy.random.Generator
        Draws the sampled pixels.
    k, seed, rounds : int
        Classes, k-means seed, discriminant rounds.
    auto_context : bool
        Choose the radius and view among :data:`POOL_LADDER` (else keep the encoder's).
    pixels : int
        Pixels sampled over all patches.
    cut : bool
        Train the multi-scale head by gradient descent on :func:`normalized_cut` after
        :func:`spatial_refine` (False: the ablation without it).
    over : bool
        For a multi-scale head, cluster the chosen view into :data:`OVERCLUSTER` times
        ``k`` clusters, refine them over every radius and merge them to ``k`` by
        ``merge`` before the refinement at ``k`` (the default's ablation switch
        ``overcluster``; ``docs/quality.md``), while that is at most
        :data:`~xr_ktextures.refine.OVERCLUSTER_MAX` clusters.
    merge : str
        How ``over`` merges: ``"ward"`` (:func:`ward_merge`) or ``"context"``
        (:func:`context_merge`, its window as wide as the regions of the chosen view's k
        clusters refined, :func:`region_width`, at most the head's widest).
    valid : numpy.ndarray, optional
        ``(N, H, W)`` bool: False at pixels that were gaps (filled before scaling); they
        are left out of the sampled pixels, and out of the refinement's votes, fits and
        cut (its label maps still hold them, filled from their neighbours, as context).
    dates : int
        The patches are places at ``dates`` dates, in runs of ``dates`` consecutive
        patches (the same pixels on each): the context merge's window spans the dates.

    Returns
    -------
    scores : dict or None
        :attr:`ViewChoice.scores` of the candidates (None for an unpooled head).
    first : str
        ``"view@radius"`` of the first clustering ("" for an unpooled head).
    """
    import keras

    enc = encoder
    n, h, w, bands = scaled.shape
    if not enc.pool:  # the head reads the last hidden layer, unpooled (0.1 models)
        radii: tuple[int, ...] = (0,)
    else:
        radii = tuple(sorted({*POOL_LADDER, *enc.scales})) if auto_context else (enc.pool,)
    reach = max(radii) + int(sum(enc.dilations)) + (enc.frontend.radius if enc.frontend is not None else 0)
    m = reach if min(h, w) - 2 * reach >= 8 else 0
    per = max(1, -(-pixels // n))
    pooled: dict[int, list[np.ndarray]] = {r: [] for r in radii}
    colours: list[np.ndarray] = []
    # the hypercolumn is ~100 floats per pixel: a few patches per call bounds memory
    step = max(1, (1 << 18) // (h * w))
    for i in range(0, n, step):
        batch = scaled[i : i + step]
        col = keras.ops.convert_to_numpy(enc.hypercolumn(batch) if enc.pool else enc.features(batch))
        for j in range(len(batch)):
            ys, xs = rng.integers(m, h - m, per), rng.integers(m, w - m, per)
            if valid is not None:  # gaps dropped: the same draws, so gap-free fits are unchanged
                keep = valid[i + j, ys, xs]
                ys, xs = ys[keep], xs[keep]
            for r, f in window_means(col[j], ys, xs, radii).items():
                pooled[r].append(f)
            colours.append(batch[j, ys, xs])
    x = {r: np.concatenate(v) for r, v in pooled.items()}
    scores, start = None, ""
    if enc.pool:
        first = enc.head_channels(bands)[0]
        candidates = None if auto_context else [(enc.view, enc.pool)]
        choice = choose_view(x, first, k, seed=seed, rounds=rounds, candidates=candidates)
        scores, start = choice.scores, f"{choice.view}@{choice.pool}"
        if enc.scales:
            finer = None
            if over and OVERCLUSTER * k <= OVERCLUSTER_MAX:  # the same view, more clusters: merged to k below
                same = [(choice.view, choice.pool)]
                finer = choose_view(x, first, OVERCLUSTER * k, seed=seed, rounds=rounds, candidates=same)
            kernel, bias, labels = _refine_multiscale(
                enc, scaled, x, first, choice, k, seed, cut, finer, valid, merge, dates
            )
        else:
            enc.pool, enc.view = choice.pool, choice.view
            kernel, bias, labels = choice.kernel, choice.bias, choice.labels
    else:
        c = discriminative_kmeans(x[0], k, rounds=rounds, seed=seed)
        (kernel, bias), labels = linear_head(c), c.labels
    if enc.scales and enc.scaled_head:  # as below, per (channel, radius)
        spread = np.stack([x[r].std(0) for r in enc.scales], 1) + 1e-6
        enc.head_scale.assign((HEAD_STEP / spread).astype(np.float32))
        kernel = kernel * np.repeat(spread / HEAD_STEP, k, axis=1)
    elif enc.pool and enc.scaled_head:
        spread = x[enc.pool].std(0) + 1e-6
        enc.head_scale.assign((HEAD_STEP / spread).astype(np.float32))
        kernel = kernel * (spread / HEAD_STEP)[:, None]
    enc.head.kernel.assign(kernel[None, None])
    enc.head.bias.assign(bias)
    col = np.concatenate(colours)
    means = np.stack([col[labels == j].mean(0) if (labels == j).any() else col.mean(0) for j in range(k)])
    textures.mix_biases[-1].assign(means.astype(np.float32))
    return scores, start


def window_means(col: np.ndarray, ys: np.ndarray, xs: np.ndarray, radii: Sequence[int]) -> dict[int, np.ndarray]:
    """Means of ``col`` over the ``(2 r + 1)`` square around each pixel ``(ys, xs)``, for every radius.

    The values of :func:`~xr_ktextures.layers.box_mean` at those pixels (borders average
    the valid pixels only), from one summed-area table of the ``(h, w, d)`` map: four
    lookups per pixel and radius instead of averaging the whole map at every radius.
    Written here because the libraries' summed-area tables (e.g. scikit-image's
    ``integral_image``) return whole maps, not windows read at scattered pixels, and
    Keras offers none.

    Parameters
    ----------
    col : numpy.ndarray
        ``(h, w, d)`` map.
    ys, xs : numpy.ndarray
        Row and column of each pixel to read.
    radii : sequence of int
        Window half-widths; 0 reads the pixel itself.

    Returns
    -------
    dict of int to numpy.ndarray
        ``(len(ys), d)`` float32 means per radius.

    Examples
    --------
    >>> import numpy as np
    >>> col = np.arange(25.0).reshape(5, 5, 1)
    >>> means = window_means(col, np.array([0, 2]), np.array([0, 2]), (0, 1))
    >>> means[0][:, 0].tolist(), means[1][:, 0].tolist()
    ([0.0, 12.0], [3.0, 12.0])
    """
    h, w, d = col.shape
    table = np.zeros((h + 1, w + 1, d))  # float64: sums of up to h * w values stay exact enough
    np.cumsum(col, axis=0, dtype=np.float64, out=table[1:, 1:])
    np.cumsum(table[1:, 1:], axis=1, out=table[1:, 1:])
    out: dict[int, np.ndarray] = {}
    for r in radii:
        if not r:
            out[r] = col[ys, xs].astype(np.float32)
            continue
        y0, y1 = np.maximum(ys - r, 0), np.minimum(ys + r + 1, h)
        x0, x1 = np.maximum(xs - r, 0), np.minimum(xs + r + 1, w)
        total = table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]
        out[r] = (total / ((y1 - y0) * (x1 - x0))[:, None]).astype(np.float32)
    return out


def _refine_multiscale(
    enc: Any,
    scaled: np.ndarray,
    x: dict[int, np.ndarray],
    first: int,
    choice: ViewChoice,
    k: int,
    seed: int,
    cut: bool = True,
    finer: ViewChoice | None = None,
    valid: np.ndarray | None = None,
    merge: str = "ward",
    dates: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The multi-scale head: :func:`spatial_refine` from the chosen view's labels, then
    (``cut``) gradient descent on :func:`normalized_cut`, neighbours weighed by the
    similarity of their bands (the first ``first`` features of the space).

    With ``finer`` (the same view clustered into more than ``k`` clusters), those clusters
    are refined first, over every radius, and merged to ``k`` by :func:`ward_merge`; the
    refinement at ``k`` starts from the merged labels. A k-means of one view tends to split
    one broad class and lump two close ones; with more clusters the close classes fall
    apart, the refinement over every radius finds what separates them, and Ward's merges
    in that discriminant space join the pieces of the broad class. Ward's criterion alone
    makes small clusters cheap to merge, and on mosaics whose classes cover uneven areas
    it merged small classes (``docs/quality.md``); ``merge="context"`` weighs its cost by
    how differently the pieces' surroundings are made up (:func:`context_merge`), in a
    window as wide as the regions of the view's k clusters refined (:func:`region_width`,
    at most the head's widest: parcels smaller than a wider window lose).

    The patches' hypercolumns are averaged at every radius of the head and read on a grid
    of every second pixel (label maps, for the neighbourhood vote), in the space of
    :func:`multiscale_space`; the classifier found there is written back as weights on the
    raw hypercolumn, one block of k logits per radius. Returns the ``(channels, k *
    scales)`` kernel, its bias and the labels of the sampled pixels ``x``. ``valid``
    (``(N, H, W)``, False at gaps) leaves the gaps out of the refinement and the cut;
    ``dates`` > 1: runs of that many patches are one place's dates, seen together by the
    context merge.
    """
    import keras

    from .layers import box_mean

    n, h, w, _ = scaled.shape
    stride = 2 if min(h, w) >= 64 else 1
    spaces = multiscale_space({r: x[r] for r in enc.scales}, first)
    feats, init, init_finer = [], [], []
    step = max(1, (1 << 18) // (h * w))  # as in initialise_masks: a few patches per call
    for i in range(0, n, step):
        col = keras.ops.convert_to_numpy(enc.hypercolumn(scaled[i : i + step]))
        parts = []
        # a window mean is linear (and keeps constants), so the ~100-channel hypercolumn is
        # projected first and the few projected channels are averaged: the same values,
        # about 6x less pooling than averaging the hypercolumn at every radius
        for r in enc.scales:
            mm, o = spaces[r]
            f = box_mean(col @ mm.astype(np.float32) + o.astype(np.float32), r)
            parts.append(keras.ops.convert_to_numpy(f)[:, ::stride, ::stride])
            if r == choice.pool:
                logits = box_mean(col @ choice.kernel + choice.bias, r)
                init.append(keras.ops.convert_to_numpy(logits)[:, ::stride, ::stride].argmax(-1))
                if finer is not None:
                    logits = box_mean(col @ finer.kernel + finer.bias, r)
                    init_finer.append(keras.ops.convert_to_numpy(logits)[:, ::stride, ::stride].argmax(-1))
        feats.append(np.concatenate(parts, -1))
    d = x[enc.scales[0]].shape[1]
    kernel = np.zeros((d, k * len(enc.scales)))
    bias = np.zeros(k * len(enc.scales))
    labels0 = np.concatenate(init)
    feats_all = np.concatenate(feats)
    # the gaps' features are made up (filled values): they neither vote, nor are fitted to,
    # nor tie pixels in the cut (with them in, a fifth of the maps under clouds moved the
    # refinement: docs/quality.md, *Images with gaps*)
    on = None if valid is None or valid.all() else valid[:, ::stride, ::stride]
    radius = max(1, MODE_RADIUS // stride)
    if finer is not None:
        try:
            many = np.concatenate(init_finer)
            _, _, refined, _ = spatial_refine(
                feats_all, many, finer.kernel.shape[1], radius=radius, seed=seed, valid=on
            )
            if merge == "context":  # a window as wide as the classes' regions, at most the head's widest
                _, _, plain, _ = spatial_refine(feats_all, labels0, k, radius=radius, seed=seed, valid=on)
                across = region_width(plain, on)
                wide = int(np.clip(int(across) // 2, 1, max(1, max(enc.scales) // stride)))
                places = (len(refined) // dates, dates, *refined.shape[1:])  # a place's dates side by side
                together = context_merge(
                    feats_all.reshape(*places, -1),
                    refined.reshape(places),
                    k,
                    radius=wide,
                    valid=None if on is None else on.reshape(places),
                    seed=seed,
                )
                labels0 = together.reshape(refined.shape)
            else:
                labels0 = ward_merge(feats_all, refined, k, valid=on, seed=seed)
        except ValueError:  # a cluster absent from the grid or the pixels drawn to fit: start from the k clusters
            pass
    if len(np.unique(labels0 if on is None else labels0[on])) < k:  # a class too rare to show: the view's head
        s = enc.scales.index(choice.pool)
        kernel[:, s * k : (s + 1) * k], bias[:k] = choice.kernel, choice.bias
    else:
        weights, b, _, _ = spatial_refine(feats_all, labels0, k, radius=radius, seed=seed, valid=on)
        if cut:
            trained, tb, _ = normalized_cut(feats_all, weights, b, radius=radius, edges=first, valid=on)
            scores = feats_all if on is None else feats_all[on]
            if len(np.unique((scores.reshape(-1, trained.shape[0]) @ trained + tb).argmax(1))) == k:
                weights, b = trained, tb  # else (a class emptied) the refined head stays
        bias[:k] = b
        offset = 0
        for s, r in enumerate(enc.scales):
            mm, o = spaces[r]
            wr = weights[offset : offset + mm.shape[1]]
            offset += mm.shape[1]
            kernel[:, s * k : (s + 1) * k] = mm @ wr
            bias[:k] += o @ wr
    logits = sum(x[r] @ kernel[:, s * k : (s + 1) * k] for s, r in enumerate(enc.scales)) + bias[:k]
    return kernel.astype(np.float32), bias.astype(np.float32), np.asarray(logits).argmax(1)


def seed_texture_colours(textures: Any, scaled: np.ndarray, k: int, rng: np.random.Generator) -> None:
    """k-means++ seeding of the textures' mean colours on 8x8-block colour means (an ablation).

    Generated textures otherwise start alike, so every class starts at the same place in
    feature space and the assignment has nothing to grip. The cluster initialisation
    overwrites these colours.
    """
    n, h, w, c = scaled.shape
    hb, wb = h // 8, w // 8
    blocks = scaled[:, : hb * 8, : wb * 8].reshape(n, hb, 8, wb, 8, c).mean(axis=(2, 4)).reshape(-1, c)
    centres = [blocks[rng.integers(len(blocks))]]
    for _ in range(1, k):
        d2 = np.min([((blocks - ctr) ** 2).sum(-1) for ctr in centres], axis=0)
        p = d2 / d2.sum() if d2.sum() > 0 else None
        centres.append(blocks[rng.choice(len(blocks), p=p)])
    textures.mix_biases[-1].assign(np.stack(centres).astype(np.float32))
