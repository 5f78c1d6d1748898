"""The multi-scale mask head's fit: self-training with a spatial prior (numpy + scikit-learn).

A clustering of features pooled at one radius (:func:`~xr_ktextures.cluster.choose_view`)
is the start; :func:`spatial_refine` turns it into a linear classifier over the
hypercolumn at every radius (:func:`multiscale_space`), fitted to the pixels that agree
with their neighbourhood. Measured in ``docs/quality.md``.
"""

from __future__ import annotations

import numpy as np

from .cluster import TEXTURE_DIMS, _standardiser, _whitened_pca

__all__ = ["MODE_RADIUS", "multiscale_space", "spatial_refine"]


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


def _majority(labels: np.ndarray, k: int, radius: int) -> np.ndarray:
    """Most frequent class in the ``(2 radius + 1)`` square around each pixel of ``(n, h, w)`` maps."""
    # scipy's separable box filter, class by class: no library offers a windowed mode of
    # label maps directly, and k box filters of one-hot maps are exact and fast
    from scipy.ndimage import uniform_filter

    size = (1, 2 * radius + 1, 2 * radius + 1)
    votes = np.stack([uniform_filter((labels == j).astype(np.float32), size, mode="reflect") for j in range(k)])
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
    ``docs/quality.md``). The classifier learns which radius and which features tell the classes apart,
    including the fine ones that place a boundary where it is; the result is one linear
    map of the features, so the model's multi-scale head holds it exactly.

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

    def fit(targets: np.ndarray, keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        t = targets.ravel()
        pool = np.arange(len(t)) if keep is None else np.flatnonzero(keep.ravel())
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

    head = fit(labels)
    if head is None:
        raise ValueError("spatial_refine needs every class among the initial labels.")
    done = 0
    while done < rounds:
        majority = _majority(labels, k, radius)
        new_head = fit(majority, majority == labels)
        if new_head is None:
            break
        new = (flat @ new_head[0] + new_head[1]).argmax(1).reshape(labels.shape)
        if len(np.unique(new)) < k:
            break
        changed = float(np.mean(new != labels))
        head, labels = new_head, new
        done += 1
        if changed < tol:
            break
    return head[0], head[1], labels, done
