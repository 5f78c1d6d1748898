"""The multi-scale mask head's fit: self-training with a spatial prior (numpy + scikit-learn).

A clustering of features pooled at one radius (:func:`~xr_ktextures.cluster.choose_view`)
is the start; :func:`spatial_refine` turns it into a linear classifier over the
hypercolumn at every radius (:func:`multiscale_space`), fitted to the pixels that agree
with their neighbourhood. Measured in ``docs/quality.md``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .cluster import TEXTURE_DIMS, _standardiser, _whitened_pca

__all__ = [
    "CUT_BUDGET",
    "CUT_STEPS",
    "MODE_RADIUS",
    "OVERCLUSTER",
    "OVERCLUSTER_MAX",
    "context_merge",
    "multiscale_space",
    "normalized_cut",
    "piece_context",
    "region_width",
    "spatial_refine",
    "ward_merge",
]


def multiscale_space(pooled: dict[int, np.ndarray], first: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per radius, ``(M, o)`` with ``x @ M + o`` the standardised bands and the whitened texture components.

    The space the multi-scale head is fitted in (:func:`spatial_refine`): at every radius
    the ``first`` input bands standardised, then :data:`TEXTURE_DIMS` whitened principal
    components of the hidden maps, so that no block weighs by its channel count.

    Parameters
    ----------
    pooled : dict of int to numpy.ndarray
        For each radius, ``(n, d)`` sampled hypercolumns averaged over that window.
    first : int
        Number of input (colour) channels at the start of the hypercolumn.

    Returns
    -------
    dict of int to (numpy.ndarray, numpy.ndarray)
        ``M`` of shape ``(d, m)`` and ``o`` of shape ``(m,)`` per radius.
    """
    out = {}
    for r, x in pooled.items():
        a, b = _standardiser(x[:, :first])
        d = x.shape[1]
        if d > first:
            ta, tb = _whitened_pca(x[:, first:], TEXTURE_DIMS)
            m = np.zeros((d, first + ta.shape[1]))
            m[:first, :first], m[first:, first:] = a, ta
            out[r] = (m, np.concatenate([b, tb]))
        else:
            out[r] = (a, b)
    return out


MODE_RADIUS = 8
"""Radius (px) of the neighbourhood vote that gives :func:`spatial_refine` its targets: the
middle rung of :data:`POOL_LADDER` (a 17 px window)."""


def _majority(labels: np.ndarray, k: int, radius: int, valid: np.ndarray | None = None) -> np.ndarray:
    """Most frequent class in the ``(2 radius + 1)`` square around each pixel of ``(n, h, w)`` maps
    (among the ``valid`` pixels only, where given)."""
    # scipy's separable box filter, class by class: no library offers a windowed mode of
    # label maps directly, and k box filters of one-hot maps are exact and fast
    from scipy.ndimage import uniform_filter

    size = (1, 2 * radius + 1, 2 * radius + 1)

    def votes_for(j: int) -> np.ndarray:
        hits = labels == j if valid is None else (labels == j) & valid
        return uniform_filter(hits.astype(np.float32), size, mode="reflect")

    votes = np.stack([votes_for(j) for j in range(k)])
    return votes.argmax(0)


def spatial_refine(
    features: np.ndarray,
    labels: np.ndarray,
    k: int,
    *,
    radius: int,
    rounds: int = 8,
    pixels: int = 60_000,
    seed: int = 0,
    tol: float = 1e-3,
    valid: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Self-training with a spatial prior: a linear classifier of the features, fitted to the
    majority label of each pixel's neighbourhood, re-applied until the labels settle.

    A clustering of features pooled at one radius makes two kinds of error: noise (pixels
    whose window happens to look like another class) and boundary bands (a window that
    straddles two regions has mixed features, often nearest a third class). Each round
    keeps the pixels whose label is also the majority of their neighbourhood (neighbours
    mostly share a class: the spatial prior), fits scikit-learn's linear discriminant
    analysis to them on *all* the features (every radius, colour and texture) and
    relabels every pixel. Pixels outvoted by their neighbours are left out of the fit,
    not relabelled: a small object keeps its own class when its own features say so
    (relabelling them to the majority erased parcels smaller than the window:
    ``docs/quality.md``). A class outvoted at every one of its pixels keeps all of them as
    its targets, so it stays in the fit. The classifier learns which radius and which
    features tell the classes apart, including the fine ones that place a boundary where
    it is; the result is one linear map of the features, so the model's multi-scale head
    holds it exactly.

    Parameters
    ----------
    features : numpy.ndarray
        ``(n, h, w, d)`` features of ``n`` sampled maps.
    labels : numpy.ndarray
        ``(n, h, w)`` initial classes in ``0..k-1``.
    k : int
        Number of classes.
    radius : int
        Radius of the neighbourhood vote, in pixels of the maps.
    rounds : int
        Most rounds; stops early when fewer than ``tol`` of the labels change, or before a
        round that would leave a class with no pixel.
    pixels : int
        Pixels drawn (without replacement) to fit the classifier in each round.
    seed : int
        Seed of the draws.
    tol : float
        Fraction of changed labels below which the rounds stop.
    valid : numpy.ndarray, optional
        ``(n, h, w)`` bool, False at gaps (filled pixels of an image with nodata): they
        neither vote nor are fitted to (their features are made up).

    Returns
    -------
    weights : numpy.ndarray
        ``(d, k)``: class ``j``'s score is ``features @ weights[:, j] + bias[j]``.
    bias : numpy.ndarray
        ``(k,)``.
    labels : numpy.ndarray
        ``(n, h, w)`` final classes (the argmax of the scores).
    rounds : int
        Rounds run (0: the initial labels were kept, with a classifier fitted to them).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> truth = np.zeros((1, 40, 40), int); truth[:, :, 20:] = 1
    >>> f = rng.normal(0, 1, (1, 40, 40, 3)); f[..., 0] += 1.5 * truth
    >>> noisy = np.where(rng.random(truth.shape) < 0.25, 1 - truth, truth)
    >>> w, b, lab, n = spatial_refine(f, noisy, 2, radius=3, seed=0)
    >>> bool((lab == truth).mean() > (noisy == truth).mean())
    True
    """
    import warnings

    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    rng = np.random.default_rng(seed)
    flat = features.reshape(-1, features.shape[-1]).astype(np.float64)
    labels = np.asarray(labels)
    on = np.ones(labels.shape, bool) if valid is None else np.asarray(valid, bool)

    def fit(targets: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        t = targets.ravel()
        pool = np.flatnonzero(keep.ravel())
        idx = rng.choice(pool, min(pixels, len(pool)), replace=False)
        if len(np.unique(t[idx])) < k:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # collinear features: the shrinkage handles them
            lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=1e-3).fit(flat[idx], t[idx])
        coef, icpt = lda.coef_.T, lda.intercept_
        if k == 2:  # scikit-learn gives one score for two classes: class 1 iff it is positive
            coef, icpt = np.concatenate([np.zeros_like(coef), coef], 1), np.concatenate([[0.0], icpt])
        return coef, icpt

    head = fit(labels, on)
    if head is None:
        raise ValueError("spatial_refine needs every class among the initial labels.")
    done = 0
    while done < rounds:
        majority = _majority(labels, k, radius, valid)
        keep = (majority == labels) & on
        # a class outvoted at every one of its pixels (scattered pixels, no region of its
        # own) keeps them as its targets: left out, it would drop from the fit, and the
        # refinement stopped there (at k >= 32 on the shipped sample, before its first round)
        alone = np.bincount(labels[keep], minlength=k) == 0
        if alone.any():
            stray = alone[labels] & on
            majority, keep = np.where(stray, labels, majority), keep | stray
        new_head = fit(majority, keep)
        if new_head is None:
            break
        new = (flat @ new_head[0] + new_head[1]).argmax(1).reshape(labels.shape)
        if len(np.unique(new[on])) < k:
            break
        changed = float(np.mean((new != labels)[on]))
        head, labels = new_head, new
        done += 1
        if changed < tol:
            break
    return head[0], head[1], labels, done


CUT_BUDGET = 1 << 22
"""Most pixels x classes :func:`normalized_cut` works on per step (larger samples are
centre-cropped map by map): its cost grows as pixels x k; at k = 128 on a 512² image
the fit took 146 s with the whole sample (every neighbour alike) and 83 s with this cap
(colour weights). Up to k = 50 the default sample (about 80 000 pixels on the
half-resolution grid) is used whole."""

CUT_STEPS = 200
"""Adam steps of :func:`normalized_cut` (not tuned for it: the mutual-information variant
gave the same ARI within 0.12 per 28 mosaic runs with 100, 200 or 400; ``docs/quality.md``)."""


def _box(p: np.ndarray, radius: int) -> np.ndarray:
    """Mean of ``(k, n, h, w)`` maps over the ``(2 radius + 1)`` square, zero outside the maps.

    Zero padding makes the filter its own adjoint, which :func:`normalized_cut`'s
    gradient relies on.
    """
    from scipy.ndimage import uniform_filter

    return uniform_filter(p, (1, 1, 2 * radius + 1, 2 * radius + 1), mode="constant")


def _edge_weights(colour: np.ndarray, radius: int, spacing: int = 2) -> dict[tuple[int, int], np.ndarray]:
    """Per offset of the window (every ``spacing``-th), ``(n, h, w)`` weights ``exp(-|c(p) - c(p + o)|^2 / s^2)``.

    ``s^2`` is the median squared colour difference over all the pairs (the usual scale of
    Shi & Malik's intensity affinity, chosen by the data); pairs reaching outside the
    maps weigh 0. The weights are symmetric: ``w_o(p) = w_-o(p + o)``.
    """
    _, h, w, _ = colour.shape
    spacing = spacing if radius >= spacing else 1
    r = radius - radius % spacing
    padded = np.pad(colour.astype(np.float32), ((0, 0), (r, r), (r, r), (0, 0)), constant_values=np.nan)
    offsets = [(dy, dx) for dy in range(-r, r + 1, spacing) for dx in range(-r, r + 1, spacing) if dy or dx]
    dist = {
        (dy, dx): ((colour - padded[:, r + dy : r + dy + h, r + dx : r + dx + w]) ** 2).sum(-1) for dy, dx in offsets
    }
    scale = float(np.nanmedian(np.concatenate([d.ravel() for d in dist.values()]))) or 1.0
    return {o: np.nan_to_num(np.exp(-d / scale), nan=0.0).astype(np.float32) for o, d in dist.items()}


def _neighbour_sum(
    p: np.ndarray, weights: dict[tuple[int, int], np.ndarray], pool: ThreadPoolExecutor | None = None
) -> np.ndarray:
    """``q(p) = sum_o w_o(p) p(p + o)`` over ``(k, n, h, w)`` maps, zero outside them.

    With ``pool``, the classes go in blocks of about :data:`_BLOCK_BYTES` to its threads:
    each class's sum is computed alone and in the same order, so the result is the same to
    the bit; a block stays in the core's cache across the offsets, and numpy's ufuncs
    release the GIL. On 2 cores the whole cut of a fit of the shipped sample was 1.25x
    faster at k = 16 and as fast at k = 5 (``docs/scaling.md``).
    """
    if pool is None or len(p) < 2:
        return _neighbour_sum_block(p, weights)
    per = max(1, _BLOCK_BYTES // max(1, p[0].nbytes))
    q = np.empty_like(p)

    def block(a: int) -> None:
        q[a : a + per] = _neighbour_sum_block(p[a : a + per], weights)

    list(pool.map(block, range(0, len(p), per)))
    return q


_BLOCK_BYTES = 1 << 20
"""Bytes of class maps per block of :func:`_neighbour_sum` (about a core's L2 cache)."""


def _neighbour_sum_block(p: np.ndarray, weights: dict[tuple[int, int], np.ndarray]) -> np.ndarray:
    """:func:`_neighbour_sum` of one block of classes, in one thread."""
    h, w = p.shape[-2:]
    q = np.zeros_like(p)
    tmp = np.empty_like(p)
    for (dy, dx), wt in weights.items():
        # the pixels whose neighbour at (dy, dx) is inside the maps, and those neighbours
        ty, sy = slice(max(0, -dy), h - max(0, dy)), slice(max(0, dy), h + min(0, dy))
        tx, sx = slice(max(0, -dx), w - max(0, dx)), slice(max(0, dx), w + min(0, dx))
        out = tmp[..., ty, tx]
        np.multiply(wt[None, :, ty, tx], p[..., sy, sx], out=out)
        q[..., ty, tx] += out
    return q


def _cut_loss_grad(
    zt: np.ndarray,
    shape: tuple[int, int, int],
    kernel: np.ndarray,
    bias: np.ndarray,
    neighbours: Callable[[np.ndarray], np.ndarray],
    total: float,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Minus the soft normalised association of the classes, and its gradient in ``kernel`` and ``bias``.

    ``zt`` holds the features as ``(d, n h w)`` columns (classes first throughout: the
    neighbour sums then run over contiguous maps, 3x faster than pixel-major).
    ``neighbours`` is a symmetric (self-adjoint) linear map of ``(k, n, h, w)`` maps: the
    affinity-weighted sum over each pixel's neighbours; ``total`` the sum of all affinities.
    """
    n, h, w = shape
    k = kernel.shape[1]
    s = kernel.T.astype(np.float32) @ zt + bias.astype(np.float32)[:, None]
    s -= s.max(0, keepdims=True)
    p = np.exp(s)
    p /= p.sum(0, keepdims=True)
    q = neighbours(p.reshape(k, n, h, w)).reshape(k, -1)
    # joint[i, j]: the affinity between pixels of class i and pixels of class j, as a share
    joint = (p.astype(np.float64) @ q.T) / total
    joint = np.maximum((joint + joint.T) / 2, 1e-12)
    degree, inner = joint.sum(1), np.diag(joint)
    loss = -float((inner / degree).sum())
    g = -np.diag(1.0 / degree) + (inner / degree**2)[:, None]  # d loss / d joint[i, j]
    g = ((g + g.T) / 2).astype(np.float32)
    dp = 2.0 * (g @ q) / total  # the affinity is symmetric: both ends of a pair give the same term
    dlogits = p * (dp - (dp * p).sum(0, keepdims=True))  # through the softmax
    return loss, (zt @ dlogits.T).astype(np.float64), dlogits.sum(1).astype(np.float64)


def normalized_cut(
    features: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray,
    *,
    radius: int,
    steps: int = CUT_STEPS,
    learning_rate: float = 0.01,
    budget: int = CUT_BUDGET,
    edges: int = 0,
    valid: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Train a linear head by gradient descent on the soft normalised cut of the pixel grid.

    The soft classes are ``softmax(features @ kernel + bias)``. In the graph that joins
    each pixel to the pixels of its ``(2 radius + 1)`` square, the normalised
    association of the classes, ``sum_j assoc(j, j) / assoc(j, all)`` (Shi & Malik, 2000;
    ``k`` minus the normalised cut), is the mean over classes of the chance that a
    neighbour of a pixel of that class is of the same class; Adam moves the head to
    raise it, so each class covers whole regions and its boundaries fall where the
    features change. Classes are weighed alike whatever their area, and a class cannot
    shrink to nothing without losing its term, so neither a dominant land cover nor a
    rare one is pushed to a size. :func:`spatial_refine` fits hard targets; this weighs
    every pixel by how sure its class is and lets the head trade one radius against
    another where that makes the regions cleaner. The start should be a calibrated
    classifier (:func:`spatial_refine`'s discriminant scores are class log-posteriors
    up to a constant).

    :func:`~xr_ktextures.initialise.initialise_masks` calls it with ``edges`` set to the
    bands, after :func:`spatial_refine` (``_ablation={"normalized_cut": False}`` skips
    it). Measured in ``docs/quality.md`` (*Ablations*): with every neighbour alike
    (``edges=0``) it erased roads one to five pixels wide, whose pixels' neighbours are
    mostly of other classes; with colour weights it keeps them, and it raised the
    initialisation's ARI on the mosaics also where classes cover uneven areas (unlike
    the mutual information of neighbours' classes, which forces even sizes).

    The gradient is written out in numpy (the head is linear, the loss a few lines):
    it keeps the initialisation backend-agnostic, deterministic and off the device.

    Parameters
    ----------
    features : numpy.ndarray
        ``(n, h, w, d)`` features of ``n`` sampled maps.
    kernel : numpy.ndarray
        ``(d, k)`` starting head.
    bias : numpy.ndarray
        ``(k,)`` starting offsets.
    radius : int
        Radius of the neighbourhood, in pixels of the maps.
    steps : int
        Adam steps.
    learning_rate : float
        Adam's step size.
    budget : int
        Most pixels x classes per step: beyond it each map is centre-cropped to fit.
    edges : int
        0: every pair in the window weighs alike (a box). Otherwise the first ``edges``
        feature channels (the pixel's own bands) weigh each pair by their similarity,
        ``exp(-|c(p) - c(q)|^2 / s^2)`` with ``s^2`` the median over the pairs (Shi &
        Malik's intensity affinity), on every second offset of the window: a pixel
        whose colour differs from its neighbours' (a road through fields) is barely
        tied to them, so the cut does not pull it into their class.
    valid : numpy.ndarray, optional
        ``(n, h, w)`` bool, False at gaps: pairs with a gap pixel weigh 0 (its features are
        made up).

    Returns
    -------
    kernel : numpy.ndarray
        ``(d, k)`` the trained head.
    bias : numpy.ndarray
        ``(k,)``.
    losses : list of float
        The loss (minus the normalised association, between ``-k`` and 0) before each step.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> truth = np.zeros((1, 40, 40), int); truth[:, :, 20:] = 1
    >>> f = rng.normal(0, 1, (1, 40, 40, 2)); f[..., 0] += 2.0 * truth
    >>> kern, b, losses = normalized_cut(f, np.array([[-1.0, 1.0], [0.0, 0.0]]), np.zeros(2), radius=3)
    >>> bool(losses[-1] < losses[0])
    True
    """
    n, h, w, d = features.shape
    k = kernel.shape[1]
    if n * h * w * k > budget:
        side = max(2 * radius + 1, int(np.sqrt(budget / (n * k))))
        y0, x0 = max(0, (h - side) // 2), max(0, (w - side) // 2)
        features = features[:, y0 : y0 + side, x0 : x0 + side]
        if valid is not None:
            valid = valid[:, y0 : y0 + side, x0 : x0 + side]
        n, h, w, d = features.shape
    zt = np.ascontiguousarray(features.reshape(-1, d).T, dtype=np.float32)
    # most of a step with edges: the threads' blocks of classes give the same sums (see
    # _neighbour_sum); a pool's threads start at its first task, so the other cuts start none
    threads = ThreadPoolExecutor(max(1, min(k, os.cpu_count() or 1)))
    if edges:
        colour = features[..., :edges]
        if valid is not None:  # a pair with a gap pixel reaches outside the data: weight 0
            colour = np.where(valid[..., None], colour, np.nan)
        weights = _edge_weights(colour, radius)
        total = float(sum(wt.sum(dtype=np.float64) for wt in weights.values()))

        def neighbours(p: np.ndarray) -> np.ndarray:
            return _neighbour_sum(p, weights, threads)
    elif valid is None:
        total = float(zt.shape[1])

        def neighbours(p: np.ndarray) -> np.ndarray:
            return _box(p, radius)
    else:
        on = valid.astype(np.float32)[None]
        total = float((on * _box(on, radius)).sum(dtype=np.float64))

        def neighbours(p: np.ndarray) -> np.ndarray:
            return on * _box(on * p, radius)

    params = [np.array(kernel, np.float64), np.array(bias, np.float64)]
    first = [np.zeros_like(a) for a in params]
    second = [np.zeros_like(a) for a in params]
    losses = []
    # Adam by hand: two arrays, a few lines, and no framework's optimiser state to manage
    with threads:
        for t in range(1, steps + 1):
            loss, *grads = _cut_loss_grad(zt, (n, h, w), params[0], params[1], neighbours, total)
            losses.append(loss)
            for a, g, m1, m2 in zip(params, grads, first, second):
                m1 *= 0.9
                m1 += 0.1 * g
                m2 *= 0.999
                m2 += 0.001 * g * g
                a -= learning_rate * (m1 / (1 - 0.9**t)) / (np.sqrt(m2 / (1 - 0.999**t)) + 1e-8)
    return params[0], params[1], losses


OVERCLUSTER = 2
"""The first clustering of the multi-scale head finds this many times k clusters in the
chosen view; they are refined over every radius and merged to k by :func:`context_merge`
(the default; ``_ablation={"overcluster": False}`` clusters into k, as before; measured
in ``docs/quality.md``), while ``OVERCLUSTER * k <= OVERCLUSTER_MAX``."""

OVERCLUSTER_MAX = 64
"""The most clusters the over-clustering makes; above (k > 32) the first clustering is
into k, as before. A compute bound, not a quality setting: at k = 128 the 256 pieces'
clustering, refinements and merge took the initialisation of a 512² fit from about a
minute to 15 (on 2 shared cores), past the 3-minute goal at k = 128 (``docs/scaling.md``);
every measured quality case has k <= 8."""


def _centres(
    features: np.ndarray, labels: np.ndarray, pixels: int, seed: int, valid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Sizes and centres of the clusters among ``pixels`` pixels drawn (where ``valid``), in
    the space of scikit-learn's linear discriminant analysis fitted to the clusters
    (distances in units of the pooled within-cluster spread, so no feature weighs by its scale)."""
    import warnings

    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    x = features.reshape(-1, features.shape[-1]).astype(np.float64)
    y = np.asarray(labels).ravel()
    big = int(y.max()) + 1
    pool = np.arange(len(y)) if valid is None else np.flatnonzero(np.asarray(valid).ravel())
    idx = pool[np.random.default_rng(seed).choice(len(pool), min(pixels, len(pool)), replace=False)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # collinear features: the shrinkage handles them
        lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage=1e-3).fit(x[idx], y[idx])
    z, yi = lda.transform(x[idx]), y[idx]
    n = np.bincount(yi, minlength=big).astype(np.float64)
    if (n == 0).any():
        raise ValueError("merging needs every cluster among the drawn pixels.")
    return n, np.stack([z[yi == j].mean(0) for j in range(big)])


def _merge(n: np.ndarray, mu: np.ndarray, labels: np.ndarray, k: int, context: np.ndarray | None = None) -> np.ndarray:
    """Agglomerate the clusters to ``k``, each step joining the pair of least Ward cost
    ``n_a n_b / (n_a + n_b) |m_a - m_b|^2``, times ``|c_a - c_b|^2`` with ``context`` (rows:
    per cluster, summed over its pixels, the share of each cluster around them)."""
    big = len(n)
    n, mu = n.copy(), mu.copy()
    ctx = None if context is None else context.astype(np.float64).copy()
    group = np.arange(big)
    alive = np.ones(big, bool)

    def squared_distances(a: np.ndarray) -> np.ndarray:  # |a_i - a_j|^2 from the Gram matrix: K^2 memory, BLAS
        sq = (a * a).sum(1)
        return np.maximum(sq[:, None] + sq[None] - 2.0 * (a @ a.T), 0.0)

    for _ in range(big - k):
        live = np.flatnonzero(alive)
        d2 = squared_distances(mu[live])
        cost = n[live, None] * n[None, live] / (n[live, None] + n[None, live]) * d2
        if ctx is not None:
            rows = ctx[np.ix_(live, live)]
            rows /= np.maximum(rows.sum(1, keepdims=True), 1e-12)
            cost = cost * squared_distances(rows)
        cost[np.diag_indices(len(live))] = np.inf
        a, b = np.unravel_index(np.argmin(cost), cost.shape)
        i, j = live[min(a, b)], live[max(a, b)]
        mu[i] = (n[i] * mu[i] + n[j] * mu[j]) / (n[i] + n[j])
        n[i] += n[j]
        if ctx is not None:  # the union's surroundings, and its share around every other cluster
            ctx[i] += ctx[j]
            ctx[:, i] += ctx[:, j]
        alive[j] = False
        group[group == j] = i
    lut = np.searchsorted(np.flatnonzero(alive), group)
    return lut[np.asarray(labels).ravel()].reshape(np.shape(labels))


def ward_merge(
    features: np.ndarray,
    labels: np.ndarray,
    k: int,
    *,
    valid: np.ndarray | None = None,
    pixels: int = 60_000,
    seed: int = 0,
) -> np.ndarray:
    """Merge clusters to ``k`` by Ward's criterion in the discriminant space of the clusters.

    The space is that of scikit-learn's linear discriminant analysis fitted to the
    clusters (distances in units of the pooled within-cluster spread, so no feature weighs
    by its scale); each merge joins the pair whose union raises the within-cluster sum of
    squares least, ``n_a n_b / (n_a + n_b) |m_a - m_b|^2``. Written by hand because
    scikit-learn's and SciPy's Ward clusterings take the points themselves (here 60 000,
    quadratic in memory), while merging K weighted centroids is a few lines.

    Parameters
    ----------
    features : numpy.ndarray
        ``(..., d)`` features.
    labels : numpy.ndarray
        Cluster of each pixel, ``0..K-1`` with every cluster present, same leading shape.
    k : int
        Number of clusters after merging (``<= K``).
    valid : numpy.ndarray, optional
        Same shape as ``labels``, False at gaps: left out of the drawn pixels.
    pixels : int
        Pixels drawn (among the valid ones) to fit the discriminant space and the centroids.
    seed : int
        Seed of the draw.

    Returns
    -------
    numpy.ndarray
        Labels in ``0..k-1``, same shape as ``labels``; merged clusters keep the lowest id's order.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(0, 1, (200, 2)), rng.normal(8, 1, (200, 2))])
    >>> over = np.repeat([0, 1, 2, 3], 100)  # two clusters per blob
    >>> np.unique(ward_merge(x, over, 2).reshape(2, 200), axis=1).tolist()
    [[0], [1]]
    """
    n, mu = _centres(features, labels, pixels, seed, valid)
    return _merge(n, mu, labels, k)


def region_width(labels: np.ndarray, valid: np.ndarray | None = None) -> float:
    """How wide the regions of a label map are: the mean length of the runs of one label
    along its rows and its columns (the mean of the two), in pixels of the maps.

    A run ends where the label changes or the map ends; pixels next to a gap (False in
    ``valid``) neither end a run nor count.

    Parameters
    ----------
    labels : numpy.ndarray
        ``(..., h, w)`` label maps.
    valid : numpy.ndarray, optional
        Same shape, False at gaps.

    Returns
    -------
    float
        The mean run length.

    Examples
    --------
    >>> import numpy as np
    >>> stripes = np.repeat(np.arange(4), 8)[None, :].repeat(32, 0)  # 8 px wide columns
    >>> region_width(stripes)  # 8 along the rows, 32 down the columns
    20.0
    """
    lab = np.asarray(labels).reshape(-1, *np.shape(labels)[-2:])
    on = np.ones(lab.shape, bool) if valid is None else np.asarray(valid, bool).reshape(lab.shape)
    widths = []
    for axis in (1, 2):
        both = np.diff(on.astype(np.int8), axis=axis) == 0
        both &= np.delete(on, -1, axis=axis)
        ends = int(((np.diff(lab, axis=axis) != 0) & both).sum())
        lines = lab.shape[0] * lab.shape[3 - axis]
        widths.append(int(on.sum()) / (ends + lines))
    return float(np.mean(widths))


def piece_context(labels: np.ndarray, clusters: int, radius: int, valid: np.ndarray | None = None) -> np.ndarray:
    """How each cluster's surroundings are made up: row ``a`` sums, over the pixels of
    cluster ``a``, the share of every cluster in the ``(2 radius + 1)`` square around them.

    ``labels`` is ``(n, h, w)`` (one map per sampled patch) or ``(n, t, h, w)`` (the same
    place at ``t`` dates): there the square spans every date at that place, so a land
    cover that two dates show in two looks is each look's surroundings on the other date.
    scipy's box filter per cluster, as in :func:`_majority`.

    Parameters
    ----------
    labels : numpy.ndarray
        ``(n, h, w)`` or ``(n, t, h, w)`` clusters in ``0..clusters-1``.
    clusters : int
        Number of clusters.
    radius : int
        Radius of the window, in pixels of the maps.
    valid : numpy.ndarray, optional
        Same shape as ``labels``, False at gaps: left out of both the rows and the shares.

    Returns
    -------
    numpy.ndarray
        ``(clusters, clusters)``; row ``a`` sums to the number of (valid) pixels of ``a``.
    """
    from scipy.ndimage import uniform_filter

    lab = labels if labels.ndim == 4 else labels[:, None]
    if valid is None:
        on = np.ones(lab.shape)
    else:
        on = (valid if valid.ndim == 4 else valid[:, None]).astype(np.float64)
    size = (1, 1, 2 * radius + 1, 2 * radius + 1)

    def around(m: np.ndarray) -> np.ndarray:  # summed over the square and over the dates
        return uniform_filter(m, size, mode="constant").sum(1, keepdims=True)

    present = np.maximum(around(on), 1e-12)
    flat = lab.ravel()
    weight = on.ravel()
    out = np.zeros((clusters, clusters))
    for b in range(clusters):
        share = np.broadcast_to(around((lab == b) * on) / present, lab.shape).ravel()
        out[:, b] = np.bincount(flat, weights=share * weight, minlength=clusters)[:clusters]
    return out


def context_merge(
    features: np.ndarray,
    labels: np.ndarray,
    k: int,
    *,
    radius: int,
    valid: np.ndarray | None = None,
    pixels: int = 60_000,
    seed: int = 0,
) -> np.ndarray:
    """Merge clusters to ``k`` by Ward's cost times how differently their surroundings are made up.

    Pieces of one class lie in the same regions: a texture seen in two looks puts both
    looks around each other, a land cover split by date has the other look at the same
    place on the other date. Pieces of two classes lie in regions of their own. The cost
    of joining ``a`` and ``b`` is Ward's (:func:`ward_merge`) times ``|c_a - c_b|^2``, ``c_a``
    the mean share of every cluster in the window around a pixel of ``a``
    (:func:`piece_context`, window radius ``radius``): pieces that surround each other
    join first, whatever their size, and where no pieces share their surroundings Ward's
    order stands. Parcels smaller than the window do share them, and there a 41 px window
    merged wrong classes: the fit's window (``radius``) is as wide as the regions of the
    refined k-clustering (:func:`region_width`), at most the head's widest. The default's
    merge (``_ablation={"context_merge": False}``: :func:`ward_merge`), measured in
    ``docs/quality.md``.

    Parameters
    ----------
    features : numpy.ndarray
        ``(..., d)`` features, leading shape that of ``labels``.
    labels : numpy.ndarray
        ``(n, h, w)`` or ``(n, t, h, w)`` clusters ``0..K-1``, every cluster present.
    k : int
        Number of clusters after merging.
    radius : int
        Radius of the window, in pixels of the maps.
    valid : numpy.ndarray, optional
        False at gaps: left out of the centres and of the surroundings.
    pixels, seed : int
        As in :func:`ward_merge`.

    Returns
    -------
    numpy.ndarray
        Labels in ``0..k-1``, same shape as ``labels``.

    Examples
    --------
    Two textures, each drawn as two looks in alternating stripes, four clusters; the
    looks of the left texture are nearer the right one's than each other in feature
    space, but only their own looks surround them:

    >>> import numpy as np
    >>> look = np.tile(np.repeat([0, 1], 4), 4)[None, None, :].repeat(32, 1)  # (1, 32, 32) stripes
    >>> side = np.arange(32)[None, None, :] >= 16
    >>> labels = np.where(side, 2 + look, look)
    >>> centres = np.array([[0.0], [3.0], [4.5], [7.0]])
    >>> feats = centres[labels] + np.random.default_rng(0).normal(0, 0.3, labels.shape + (1,))
    >>> merged = context_merge(feats, labels, 2, radius=3)
    >>> sorted(np.unique(merged[:, :, :16]).tolist()), sorted(np.unique(merged[:, :, 16:]).tolist())
    ([0], [1])
    """
    n, mu = _centres(features, labels, pixels, seed, valid)
    return _merge(n, mu, labels, k, piece_context(labels, len(n), radius, valid))
