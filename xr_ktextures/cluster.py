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

from dataclasses import dataclass

import numpy as np

__all__ = ["Clustering", "discriminative_kmeans", "kmeans", "linear_head"]


def _sq_dist(x: np.ndarray, c: np.ndarray, xx: np.ndarray | None = None) -> np.ndarray:
    xx = (x * x).sum(1) if xx is None else xx
    return np.maximum(xx[:, None] - 2.0 * x @ c.T + (c * c).sum(1)[None, :], 0.0)


def _means(x: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Mean of each cluster's rows (one matrix product, not k masked means); empty clusters give 0."""
    onehot = np.zeros((len(x), k))
    onehot[np.arange(len(x)), labels] = 1.0
    return (onehot.T @ x) / np.maximum(onehot.sum(0), 1.0)[:, None]


def kmeans(
    x: np.ndarray, k: int, rng: np.random.Generator, *, n_init: int = 4, iterations: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means with k-means++ seeding and restarts; returns (centroids, labels).

    Empty clusters are re-seeded at the point farthest from its centroid, so all k
    clusters are always in use when ``x`` has at least k distinct rows.

    Parameters
    ----------
    x : numpy.ndarray
        ``(n, d)`` points.
    k : int
        Number of clusters.
    rng : numpy.random.Generator
        Source of the k-means++ seeding.
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
    x = np.asarray(x, np.float64)
    n = len(x)
    xx = (x * x).sum(1)
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for _ in range(n_init):
        centres = [x[rng.integers(n)]]
        d2 = _sq_dist(x, centres[0][None], xx)[:, 0]
        for _ in range(1, k):
            p = d2 / d2.sum() if d2.sum() > 0 else None
            centres.append(x[rng.choice(n, p=p)])
            d2 = np.minimum(d2, _sq_dist(x, centres[-1][None], xx)[:, 0])
        c = np.stack(centres)
        labels = np.zeros(n, np.int64)
        for it in range(iterations):
            d = _sq_dist(x, c, xx)
            new = d.argmin(1)
            counts = np.bincount(new, minlength=k)
            for j in np.flatnonzero(counts == 0):  # re-seed an empty cluster at the worst-fitted point
                far = int(d[np.arange(n), new].argmax())
                new[far] = j
                d[far] = 0.0
            if it and np.array_equal(new, labels):
                break
            labels = new
            c = _means(x, labels, k)
        inertia = float(_sq_dist(x, c, xx)[np.arange(n), labels].sum())
        if best is None or inertia < best[0]:
            best = (inertia, c, labels)
    assert best is not None
    return best[1], best[2]


def _lda(x: np.ndarray, labels: np.ndarray, k: int, shrink: float = 1e-3) -> np.ndarray:
    """Discriminant directions ``W`` (d, k-1): ``x @ W`` has unit within-class covariance."""
    d = x.shape[1]
    mean = x.mean(0)
    sw = np.zeros((d, d))
    sb = np.zeros((d, d))
    for j in range(k):
        xj = x[labels == j]
        if len(xj) == 0:
            continue
        mj = xj.mean(0)
        sw += (xj - mj).T @ (xj - mj)
        sb += len(xj) * np.outer(mj - mean, mj - mean)
    sw /= len(x)
    sb /= len(x)
    sw += shrink * np.trace(sw) / d * np.eye(d)
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
