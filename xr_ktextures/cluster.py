"""Discriminative clustering in numpy: the initial assignment of the k-textures masks.

Gradient descent alone moves a hard assignment slowly and lands in poor local optima
(``docs/quality.md``). :func:`discriminative_kmeans` gives the mask head a data-driven
start: k-means on the encoder's pooled features, then alternately a linear discriminant
projection fitted to the current clusters and k-means again in that projection (as in
discriminative clustering, Ding & Li 2007, and DeepCluster, Caron et al. 2018, with a
linear model). Each round re-weights the features by how well they separate the
current clusters, so texture features that k-means on raw standardised features
drowns (many weak, correlated responses) come to dominate.

The result is a nearest-centroid rule in the projected space, which is *exactly* a
linear function of the features (:func:`linear_head`): a 1x1 convolution, so the
model's own head can hold it.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

__all__ = [
    "HEAD_SCALES",
    "LEGACY_SCALES",
    "POOL_LADDER",
    "Clustering",
    "ViewChoice",
    "choose_view",
    "discriminative_kmeans",
    "fisher_score",
    "kmeans",
    "linear_head",
    "restarts",
]


def kmeans(
    x: np.ndarray, k: int, rng: np.random.Generator, *, n_init: int = 4, iterations: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's k-means (k-means++ seeding, restarts); returns (centroids, labels).

    A cluster left empty (fewer than k distinct rows nearby) is re-seeded at the point
    farthest from its centroid, so all k clusters are in use when ``x`` has at least k
    distinct rows.

    Parameters
    ----------
    x : numpy.ndarray
        ``(n, d)`` points.
    k : int
        Number of clusters.
    rng : numpy.random.Generator
        Source of the seed given to scikit-learn.
    n_init : int
        Restarts; the one with the lowest inertia is kept.
    iterations : int
        Most Lloyd iterations per restart.

    Returns
    -------
    centroids : numpy.ndarray
        ``(k, d)`` cluster centres.
    labels : numpy.ndarray
        ``(n,)`` cluster of each point.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(0, 0.1, (50, 2)), rng.normal(5, 0.1, (50, 2))])
    >>> c, lab = kmeans(x, 2, rng)
    >>> sorted(np.bincount(lab).tolist())
    [50, 50]
    """
    import warnings

    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    x = np.asarray(x, np.float64)
    # one OpenMP thread: after a Keras/TensorFlow run its thread pools still spin, and
    # scikit-learn's OpenMP threads beside them ran 2-10x slower on 2 cores (measured)
    with warnings.catch_warnings(), threadpool_limits(1, user_api="openmp"):
        warnings.simplefilter("ignore", ConvergenceWarning)  # duplicate points: handled below
        km = KMeans(k, n_init=n_init, max_iter=iterations, random_state=int(rng.integers(2**31 - 1))).fit(x)
    labels = km.labels_.astype(np.int64)
    centres = km.cluster_centers_
    counts = np.bincount(labels, minlength=k)
    if (counts == 0).any():
        d = ((x - centres[labels]) ** 2).sum(1)
        for j in np.flatnonzero(counts == 0):
            donors = np.flatnonzero(np.bincount(labels, minlength=k)[labels] > 1)
            if not len(donors):
                break
            far = donors[int(d[donors].argmax())]
            labels[far] = j
            d[far] = -1.0
        centres = np.stack([x[labels == j].mean(0) if (labels == j).any() else centres[j] for j in range(k)])
    return centres, labels


def _scatter(x: np.ndarray, labels: np.ndarray, k: int, shrink: float) -> tuple[np.ndarray, np.ndarray]:
    """Within- and between-cluster scatter of ``x`` (per row), the within one ridged by ``shrink``."""
    d = x.shape[1]
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    # a weighted bincount per column: ~20x faster than ``np.add.at`` for these shapes
    sums = np.stack([np.bincount(labels, x[:, j], minlength=k) for j in range(d)], 1)
    means = sums / np.maximum(counts, 1.0)[:, None]
    centred = x - means[labels]
    sw = centred.T @ centred / len(x)
    dev = means - x.mean(0)
    sb = (dev * counts[:, None]).T @ dev / len(x)
    return sw + shrink * np.trace(sw) / d * np.eye(d), sb


def _lda(x: np.ndarray, labels: np.ndarray, k: int, shrink: float = 1e-3) -> np.ndarray:
    """Discriminant directions ``W`` (d, k-1): ``x @ W`` has unit within-class covariance."""
    sw, sb = _scatter(x, labels, k, shrink)
    evals, evecs = np.linalg.eigh(sw)
    white = evecs / np.sqrt(np.maximum(evals, 1e-12))  # sw^{-1/2} up to rotation
    m = white.T @ sb @ white
    _, v = np.linalg.eigh((m + m.T) / 2)
    return white @ v[:, ::-1][:, : max(k - 1, 1)]


@dataclass
class Clustering:
    """Result of :func:`discriminative_kmeans`.

    Parameters
    ----------
    mean, scale : numpy.ndarray
        Standardisation of the features, ``(d,)``.
    projection : numpy.ndarray
        ``(d, m)`` map from standardised features to the discriminant space.
    centroids : numpy.ndarray
        ``(k, m)`` cluster centres in that space.
    labels : numpy.ndarray
        Cluster of each input row.
    rounds : int
        Discriminant rounds run before the labels stopped changing (or the limit).
    """

    mean: np.ndarray
    scale: np.ndarray
    projection: np.ndarray
    centroids: np.ndarray
    labels: np.ndarray
    rounds: int


def discriminative_kmeans(
    x: np.ndarray, k: int, *, rounds: int = 20, seed: int = 0, n_init: int = 4, tol: float = 1e-3
) -> Clustering:
    """k-means, then alternately an LDA projection of the clusters and k-means in it.

    Parameters
    ----------
    x : numpy.ndarray
        ``(n, d)`` features, one row per pixel.
    k : int
        Number of clusters.
    rounds : int
        Most discriminant rounds; stops early when fewer than ``tol`` of the labels change.
    seed : int
        Seed of the k-means++ seeding.
    n_init : int
        k-means restarts in each round.
    tol : float
        Fraction of changed labels below which the rounds stop.

    Returns
    -------
    Clustering

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(0, 1, (300, 5)); a[:150] += 4
    >>> c = discriminative_kmeans(a, 2, seed=0)
    >>> len(set(c.labels[:150].tolist())), len(set(c.labels.tolist()))
    (1, 2)
    """
    x = np.asarray(x, np.float64)
    rng = np.random.default_rng(seed)
    mean = x.mean(0)
    scale = x.std(0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    xs = (x - mean) / scale
    projection = np.eye(x.shape[1])
    centroids, labels = kmeans(xs, k, rng, n_init=n_init)
    done = 0
    while done < rounds:
        w = _lda(xs, labels, k)
        c, new = kmeans(xs @ w, k, rng, n_init=n_init)
        changed = float(np.mean(new != labels))
        projection, centroids, labels = w, c, new
        done += 1
        if changed < tol:
            break
    return Clustering(mean, scale, projection, centroids, labels, done)


def linear_head(c: Clustering, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Kernel ``(d, k)`` and bias ``(k,)`` whose argmax is the nearest centroid.

    ``-|P^T (x - mean) / scale - c_j|^2 / 2`` differs from
    ``x @ kernel[:, j] + bias[j]`` by a term common to all j, so both rank the classes
    alike; ``temperature`` divides both.

    Parameters
    ----------
    c : Clustering
        Result of :func:`discriminative_kmeans` on the head's input features.
    temperature : float
        Divides kernel and bias (softer or sharper logits, same argmax).

    Returns
    -------
    kernel : numpy.ndarray
        ``(d, k)`` float32 weights.
    bias : numpy.ndarray
        ``(k,)`` float32 offsets.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(0, 1, (200, 3)); a[:100] += 3
    >>> c = discriminative_kmeans(a, 2, seed=0)
    >>> kern, bias = linear_head(c)
    >>> bool(np.array_equal((a @ kern + bias).argmax(1), c.labels))
    True
    """
    a = c.projection @ c.centroids.T  # (d, k)
    kernel = a / c.scale[:, None]
    bias = -(c.mean @ kernel) - 0.5 * (c.centroids**2).sum(1)
    return (kernel / temperature).astype(np.float32), (bias / temperature).astype(np.float32)


POOL_LADDER = (1, 3, 8, 20)
"""Context radii (px) of the candidate views: a geometric ladder, from a pixel's close
neighbourhood (noise averaged, parcel edges kept) to a 41 px window (texture)."""

HEAD_SCALES = (0, *POOL_LADDER)
"""Radii (px) of the multi-scale mask head: the pixel itself, then every rung of
:data:`POOL_LADDER`. The pixel's own hypercolumn (radius 0) lets the refined head keep
edges and objects one or two pixels wide where their colour is clear: every window
straddles them (measured in ``docs/quality.md``). The candidate views of the first
clustering stay on :data:`POOL_LADDER`."""

LEGACY_SCALES = POOL_LADDER
"""The multi-scale head's radii in models saved before :data:`HEAD_SCALES` (no pixel scale)."""

TEXTURE_POOLS = (8, 20)
"""Radii at which texture views are tried (texture needs some area to be measured)."""

TEXTURE_DIMS = 12
"""Whitened principal components kept of the hidden (texture) maps in each view."""

N_INIT = 4
"""k-means restarts per candidate view and discriminant round, up to k = 16 (see :func:`restarts`)."""


def restarts(k: int) -> int:
    """k-means restarts for ``k`` clusters: :data:`N_INIT` up to k = 16, then fewer (one from k = 43).

    Restarts guard against a poor local optimum in which one misplaced centre is a large
    share of the clustering; with many clusters one k-means++ start is nearly as good (it
    is scikit-learn's own default), and each restart costs time in proportion to k. At
    k = 128 on 60 000 pixels the four restarts of the eight candidate views took 270 s of
    a 350 s fit (``benchmarks/fit.py``); the work stays about constant in k above k = 16.

    Parameters
    ----------
    k : int
        Number of clusters.

    Returns
    -------
    int
        Restarts per k-means run, at least 1.

    Examples
    --------
    >>> [restarts(k) for k in (2, 16, 24, 32, 64, 128)]
    [4, 4, 3, 2, 1, 1]
    """
    return max(1, min(N_INIT, round(N_INIT * 16 / k)))


def fisher_score(x: np.ndarray, labels: np.ndarray, k: int, shrink: float = 1e-2) -> float:
    """Fisher's criterion ``trace(S_w^-1 S_b)`` of a clustering: between over within scatter.

    Invariant to any invertible linear map of ``x``; for a clustering that merely cuts
    a single Gaussian cloud it stays near a constant whatever the noise level, and it
    grows when the clusters are really apart. :func:`choose_view` compares clusterings
    with it in one common feature space.

    Parameters
    ----------
    x : numpy.ndarray
        ``(n, d)`` features.
    labels : numpy.ndarray
        ``(n,)`` cluster of each row.
    k : int
        Number of clusters.
    shrink : float
        Ridge added to the within-class scatter, as a fraction of its mean eigenvalue.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(0, 1, (400, 2)); truth = np.arange(400) % 2; x[truth == 1] += 4
    >>> fisher_score(x, truth, 2) > fisher_score(x, rng.integers(0, 2, 400), 2)
    True
    """
    sw, sb = _scatter(np.asarray(x, np.float64), labels, k, shrink)
    return float(np.trace(np.linalg.solve(sw, sb)))


@dataclass
class ViewChoice:
    """Result of :func:`choose_view`: the chosen view, its radius and the exact head.

    Parameters
    ----------
    view : str
        ``"colour"``, ``"texture"`` or ``"both"`` (see :class:`~xr_ktextures.layers.MaskEncoder`).
    pool : int
        Context radius in pixels.
    kernel : numpy.ndarray
        ``(d, k)`` head weights over the whole hypercolumn (zero where the view does not read).
    bias : numpy.ndarray
        ``(k,)`` head offsets.
    labels : numpy.ndarray
        Cluster of each sampled pixel.
    scores : dict
        Fisher score of every candidate, keyed ``"view@pool"``.
    """

    view: str
    pool: int
    kernel: np.ndarray
    bias: np.ndarray
    labels: np.ndarray
    scores: dict[str, float]


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(A, a)`` with ``x @ A + a`` zero-mean, unit-variance per column."""
    mean, sd = x.mean(0), x.std(0)
    sd = np.where(sd > 1e-8, sd, 1.0)
    return np.diag(1.0 / sd), -mean / sd


def _whitened_pca(x: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """``(A, a)`` with ``x @ A + a`` the first ``dims`` principal components of the standardised ``x``, whitened."""
    a_std, b_std = _standardiser(x)
    z = x @ a_std + b_std
    evals, evecs = np.linalg.eigh(z.T @ z / len(z))
    order = np.argsort(evals)[::-1][: min(dims, z.shape[1])]
    v = evecs[:, order] / np.sqrt(np.maximum(evals[order], 1e-12))
    return a_std @ v, b_std @ v


def choose_view(
    pooled: dict[int, np.ndarray],
    first: int,
    k: int,
    *,
    seed: int = 0,
    rounds: int = 6,
    candidates: list[tuple[str, int]] | None = None,
) -> ViewChoice:
    """Pick the context radius and the colour/texture mix from the data, and the head for it.

    Each candidate view (by default the input bands pooled at every radius of
    :data:`POOL_LADDER`, and the hidden texture maps, alone and with the bands, at every
    radius of :data:`TEXTURE_POOLS`) is clustered by :func:`discriminative_kmeans`. The
    clusterings are then compared by :func:`fisher_score` in *one* space that holds every
    view (so the scores are comparable), and the most separated one is kept. Colour that
    is clean enough to separate classes wins at a small radius (small parcels keep their
    edges); texture wins where colour cannot separate; a larger radius wins only when the
    classes' regions are larger than the window (it does not blur them into each other).

    Parameters
    ----------
    pooled : dict of int to numpy.ndarray
        For each radius, the ``(n, d)`` hypercolumn (the ``first`` input channels, then
        the hidden maps) averaged over that window, at the *same* ``n`` sampled pixels.
    first : int
        Number of input (colour) channels at the start of the hypercolumn.
    k : int
        Number of clusters.
    seed : int
        Seed of the k-means.
    rounds : int
        Most discriminant rounds of :func:`discriminative_kmeans` per candidate.
    candidates : list of (str, int), optional
        ``(view, radius)`` pairs to try (radii must be keys of ``pooled``); default as above.

    Returns
    -------
    ViewChoice

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> truth = np.arange(600) % 2
    >>> pooled = {r: rng.normal(0, 1, (600, 6)) for r in POOL_LADDER}
    >>> pooled[3][:, 0] += 5 * truth  # one band separates at radius 3
    >>> choice = choose_view(pooled, first=2, k=2, seed=0)
    >>> choice.view, choice.pool, choice.kernel.shape
    ('colour', 3, (6, 2))
    """
    d = next(iter(pooled.values())).shape[1]
    has_texture = d > first
    if candidates is None:
        candidates = [("colour", r) for r in POOL_LADDER if r in pooled]
        if has_texture:
            candidates += [(v, r) for r in TEXTURE_POOLS if r in pooled for v in ("texture", "both")]
    blocks: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}

    def block(part: tuple[str, int]) -> np.ndarray:
        kind, r = part
        x = pooled[r][:, :first] if kind == "colour" else pooled[r][:, first:]
        if part not in blocks:
            blocks[part] = _standardiser(x) if kind == "colour" else _whitened_pca(x, TEXTURE_DIMS)
        a, b = blocks[part]
        return x @ a + b

    def parts(view: str, r: int) -> list[tuple[str, int]]:
        return {"colour": [("colour", r)], "texture": [("texture", r)]}.get(view, [("colour", r), ("texture", r)])

    full = None
    if len(candidates) > 1:  # the common space: every colour and texture block of the candidates
        every = sorted({p for v, r in candidates for p in parts(v, r)}, key=lambda p: (p[0], p[1]))
        full = np.concatenate([block(p) for p in every], axis=1)
    from threadpoolctl import threadpool_limits

    views = [np.concatenate([block(p) for p in parts(v, r)], axis=1) for v, r in candidates]

    def cluster(z: np.ndarray) -> Clustering:
        return discriminative_kmeans(z, k, rounds=rounds, seed=seed, n_init=restarts(k))

    # the candidates are independent (each seeds its own k-means): one thread each, up to
    # the cores, gives the same clusterings in a fraction of the time (scikit-learn's k-means
    # and numpy's products release the GIL), each with one OpenMP and one BLAS thread
    workers = max(1, min(len(views), os.cpu_count() or 1))
    with threadpool_limits(1), ThreadPoolExecutor(workers) as pool:
        clusterings = list(pool.map(cluster, views))
    best: tuple[float, str, int, Clustering] | None = None
    scores = {}
    for (view, r), c in zip(candidates, clusterings):
        score = fisher_score(full, c.labels, k) if full is not None else 0.0
        scores[f"{view}@{r}"] = score
        if best is None or score > best[0]:
            best = (score, view, r, c)
    assert best is not None
    _, view, r, c = best
    kz, bz = linear_head(c)  # over the view's own features z = x @ A + a
    kernel = np.zeros((d, k), np.float64)
    bias = bz.astype(np.float64)
    offset = 0
    for part in parts(view, r):
        a, b = blocks[part]
        m = a.shape[1]
        rows = slice(0, first) if part[0] == "colour" else slice(first, d)
        kernel[rows] += a @ kz[offset : offset + m]
        bias += b @ kz[offset : offset + m]
        offset += m
    return ViewChoice(view, r, kernel.astype(np.float32), bias.astype(np.float32), c.labels, scores)
