"""Experiment switches that exist to reproduce the ablation rows of ``docs/quality.md``.

Private: not part of the public options, and free to change. ``benchmarks/quality.py
--option NAME=VALUE`` reaches them by their flat names (:data:`~xr_ktextures.options.FLAT_NAMES`);
in code, pass ``KTextures(..., _ablation=Ablation(...))`` or ``fit(..., _ablation={...})``.
Saved models keep them in their config (the 0.2 layout), so a model trained with one
loads and labels alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ._errors import InputError

__all__ = ["Ablation", "as_ablation"]


@dataclass(frozen=True)
class Ablation:
    """The switches; the defaults are the library's behaviour.

    Parameters
    ----------
    frontend : bool
        Start the mask CNN with the fixed multi-scale Gabor-energy front end (radius 16 px).
    finetune_masks : bool, optional
        Train the masks by gradient descent through the quantizer (None: True). After the
        cluster initialisation only the head trains; False keeps the initialisation.
    paper_loss : float
        Weight of the paper's loss, MSE(F(image), F(simulated image)).
    seed_textures : bool
        Seed the textures' mean colours by k-means++ on 8x8 block means. With the cluster
        initialisation (the default) its colours are overwritten straight after; only the
        random draws it made remain. It acts only with ``cluster_init=False``.
    scaled_head : bool
        Scale the mask head's weights per input channel (False only for 0.2 pre-release models).
    normalized_cut : bool
        Train the multi-scale head's initialisation by gradient descent on
        :func:`~xr_ktextures.refine.normalized_cut` after
        :func:`~xr_ktextures.refine.spatial_refine`, pairs of pixels weighed by their
        colours' similarity (False: the refined head, as before 0.2.0's last change).
    overcluster : bool
        Start the multi-scale head from :data:`~xr_ktextures.refine.OVERCLUSTER` times k
        clusters of the chosen view, refined over every radius and merged to k (True, the
        default since 0.2.0's last change; False: k clusters, as before).
    context_merge : bool, optional
        With ``overcluster``, merge by :func:`~xr_ktextures.refine.context_merge` (Ward's
        cost times how differently the clusters' surroundings are made up; None: True
        with ``overcluster``); False: by :func:`~xr_ktextures.refine.ward_merge`, Ward's
        criterion alone, which lost on mosaics of uneven class areas. Measured in
        ``docs/quality.md``.

    Examples
    --------
    >>> Ablation().paper_loss
    1.0
    """

    frontend: bool = False
    finetune_masks: bool | None = None
    paper_loss: float = 1.0
    seed_textures: bool = False
    scaled_head: bool = True
    normalized_cut: bool = True
    overcluster: bool = True
    context_merge: bool | None = None

    def __post_init__(self) -> None:
        for name in ("frontend", "seed_textures", "scaled_head", "normalized_cut", "overcluster"):
            object.__setattr__(self, name, bool(getattr(self, name)))
        if self.finetune_masks is not None:
            object.__setattr__(self, "finetune_masks", bool(self.finetune_masks))
        if self.context_merge is not None:
            object.__setattr__(self, "context_merge", bool(self.context_merge))
        if self.context_merge and not self.overcluster:
            raise InputError("context_merge merges the over-clustering: leave overcluster on (True) with it.")
        object.__setattr__(self, "paper_loss", float(self.paper_loss))

    @property
    def merges_by_context(self) -> bool:
        """Whether the over-clustering is merged by :func:`~xr_ktextures.refine.context_merge`.

        ``context_merge`` as given (None: the same as ``overcluster``), so that
        ``dataclasses.replace(Ablation(), overcluster=False)`` stays valid.

        Examples
        --------
        >>> import dataclasses
        >>> Ablation().merges_by_context, dataclasses.replace(Ablation(), overcluster=False).merges_by_context
        (True, False)
        """
        return self.overcluster if self.context_merge is None else self.context_merge


def as_ablation(value: Any) -> Ablation:
    """``value`` (None, an :class:`Ablation` or a mapping of its fields) as an :class:`Ablation`."""
    if value is None:
        return Ablation()
    if isinstance(value, Ablation):
        return value
    if isinstance(value, Mapping):
        known = {f.name for f in fields(Ablation)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise InputError(f"unknown ablation switch(es) {unknown}; known: {sorted(known)}.")
        return Ablation(**value)
    raise InputError(f"_ablation must be an Ablation or a mapping, got {type(value).__name__}.")
