"""The model's options, grouped per branch in frozen dataclasses (odc-stac's ``loader/types.py`` habit).

* :class:`MaskOptions` – the mask branch: how each pixel gets its class.
* :class:`TextureOptions` – the texture branch: k small CNNs that turn noise into textures.
* :class:`LossOptions` – the feature extractor and the weights of the loss terms.

Pass them to :class:`~xr_ktextures.KTextures` or :func:`~xr_ktextures.fit` as
``mask=MaskOptions(pool=8)`` or as a plain mapping, ``mask={"pool": 8}``. The switches
that exist only to reproduce ablation rows live in a private configuration
(``xr_ktextures._ablation``) used by ``benchmarks/``.

:data:`FLAT_NAMES` says where each option of the 0.2 constructor lives now; saved
models keep that flat layout in their config, so files written by 0.2.0 load unchanged.
Nothing here imports Keras.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal, TypeVar

import numpy as np

from ._errors import InputError
from ._validate import check_int

__all__ = [
    "FLAT_NAMES",
    "MAX_K",
    "VIEWS",
    "LossOptions",
    "MaskOptions",
    "TextureOptions",
    "check_k",
]

MAX_K = 128
"""The largest number of classes (labels are ``uint8``; 255 is :data:`~xr_ktextures.NODATA`)."""

VIEWS = ("colour", "texture", "both")
"""What the pooled mask head reads: the input bands, the hidden texture maps, or both."""

QUANTIZERS = ("straight_through", "hard_sigmoid")

QuantizerName = Literal["straight_through", "hard_sigmoid"]
ViewName = Literal["colour", "texture", "both"]


def check_k(k: Any) -> int:
    """``k`` as an int; :class:`~xr_ktextures.InputError` unless it is an integer from 2 to :data:`MAX_K`.

    >>> check_k(6)
    6
    """
    return check_int("k", k, 2, MAX_K)


def _dilations(name: str, value: Any, *, allow_empty: bool = False) -> tuple[int, ...]:
    try:
        out = tuple(value)
    except TypeError:
        out = (None,)
    ok = all(isinstance(d, (int, np.integer)) and not isinstance(d, (bool, np.bool_)) and d >= 1 for d in out)
    if not ok or not (out or allow_empty):
        raise InputError(
            f"{name} must be a {'' if allow_empty else 'non-empty '}sequence of integers >= 1, got {value!r}."
        )
    return tuple(int(d) for d in out)


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)  # a frozen dataclass normalising its own fields


@dataclass(frozen=True)
class MaskOptions:
    """Options of the mask branch (the default architecture; the paper preset fixes its own).

    Parameters
    ----------
    quantizer : {"straight_through", "hard_sigmoid"}
        ``"straight_through"``: k logits, one-hot forward, softmax gradient.
        ``"hard_sigmoid"``: the paper's one value per pixel cut by k-1 hard sigmoids (no
        cluster initialisation).
    filters : int
        Channels of each hidden 3x3 convolution of the mask CNN.
    dilations : sequence of int
        Dilations of the mask CNN's 3x3 convolutions (their sum is the CNN's context radius).
    pool : int, optional
        Radius of the window the hypercolumn is averaged over before the 1x1 head (0: the
        head reads the last hidden layer, unpooled). None: chosen from the data at fit,
        with the view (:func:`~xr_ktextures.cluster.choose_view`, radii 1, 3, 8, 20 px).
    view : {"colour", "texture", "both"}, optional
        What the pooled head reads: the bands, the hidden maps, or both. None: chosen
        with ``pool``; ``"both"`` when ``pool`` is given.
    zero_mean : bool
        Zero-mean random 3x3 kernels (texture responses, not brightness).
    cluster_init : bool, optional
        Set the mask head from a discriminative k-means of the pooled hypercolumn of the
        training patches before gradient training. None: on for the straight-through
        quantizer.
    multiscale : bool
        With ``pool=None`` (the default), the head reads the pixel's own hypercolumn and
        its averages at every radius of the ladder (0, 1, 3, 8, 20 px;
        :data:`~xr_ktextures.cluster.HEAD_SCALES`, :class:`~xr_ktextures.layers.MaskEncoder`
        ``scales``): the view chosen from the data gives the first clustering, then
        :func:`~xr_ktextures.refine.spatial_refine` fits the head over all radii to the
        pixels that agree with their neighbourhood, until the labels settle. False keeps
        the single chosen view (the 0.2.0 design).
    cluster_rounds : int
        Most discriminant rounds of the cluster initialisation.

    Raises
    ------
    InputError
        For a value out of range (quoted), or ``cluster_init`` with the hard-sigmoid quantizer.

    Examples
    --------
    >>> MaskOptions(pool=8, view="colour").dilations
    (1, 2, 4)
    """

    quantizer: QuantizerName = "straight_through"
    filters: int = 32
    dilations: tuple[int, ...] = (1, 2, 4)
    pool: int | None = None
    view: ViewName | None = None
    zero_mean: bool = True
    cluster_init: bool | None = None
    cluster_rounds: int = 6
    multiscale: bool = True

    def __post_init__(self) -> None:
        if self.quantizer not in QUANTIZERS:
            raise InputError(f"quantizer must be 'straight_through' or 'hard_sigmoid', got {self.quantizer!r}.")
        _set(self, "filters", check_int("filters", self.filters, 1))
        _set(self, "dilations", _dilations("dilations", self.dilations))
        if self.pool is not None:
            _set(self, "pool", check_int("pool", self.pool, 0))
        if self.view is not None and self.view not in VIEWS:
            raise InputError(f"view must be one of {VIEWS}, got {self.view!r}.")
        _set(self, "zero_mean", bool(self.zero_mean))
        if self.cluster_init is not None:
            _set(self, "cluster_init", bool(self.cluster_init))
        _set(self, "cluster_rounds", check_int("cluster_rounds", self.cluster_rounds, 0))
        _set(self, "multiscale", bool(self.multiscale))
        if self.cluster_init and self.quantizer != "straight_through":
            raise InputError(
                "cluster_init needs quantizer='straight_through' (k logits per pixel); the hard-sigmoid "
                "quantizer has one value per pixel. Pass cluster_init=False."
            )


@dataclass(frozen=True)
class TextureOptions:
    """Options of the texture branch: k independent separable CNNs that turn noise into textures.

    Parameters
    ----------
    filters : int
        Hidden channels of each texture CNN.
    noise : int
        Noise channels of each texture CNN.
    dilations : sequence of int
        Dilations of each texture CNN's depthwise 3x3 convolutions.

    Examples
    --------
    >>> TextureOptions().noise
    4
    """

    filters: int = 8
    noise: int = 4
    dilations: tuple[int, ...] = (1, 2, 4)

    def __post_init__(self) -> None:
        _set(self, "filters", check_int("filters", self.filters, 1))
        _set(self, "noise", check_int("noise", self.noise, 1))
        _set(self, "dilations", _dilations("dilations", self.dilations, allow_empty=True))


@dataclass(frozen=True)
class LossOptions:
    """The loss: its frozen feature extractor and the weights of its terms.

    The loss is ``MSE(F(x), F(sim))`` + ``texture_match * sum_j frac_j MSE(F(x), F(texture_j))``
    + ``balance * KL(mean class usage ‖ uniform)`` (``docs/design.md``).

    Parameters
    ----------
    extractor : {"filterbank", "vgg16"} or keras.Model, optional
        The frozen feature extractor (:mod:`xr_ktextures.features`); ``"vgg16"`` never
        downloads. None: ``"filterbank"``; the paper preset uses VGG16 when its weights are
        in the Keras cache.
    extractor_weights : path, optional
        Weights file for ``extractor="vgg16"``.
    texture_match : float
        Weight of the per-texture matching term (each texture's features against the
        image's, weighted by the class's mask fraction). 0 gives the paper's loss alone.
    balance : float
        Weight of the class-usage term (KL divergence of the batch's mean soft class usage
        from uniform). It reaches the mask head, which is trained by gradient descent
        after the cluster initialisation. 0 disables it.

    Examples
    --------
    >>> LossOptions(balance=0.5).texture_match
    1.0
    """

    extractor: Any = None
    extractor_weights: str | os.PathLike[str] | None = None
    texture_match: float = 1.0
    balance: float = 1.0

    def __post_init__(self) -> None:
        for name in ("texture_match", "balance"):
            v = getattr(self, name)
            if (
                isinstance(v, (bool, np.bool_))
                or not isinstance(v, (int, float, np.integer, np.floating))
                or not v >= 0
            ):
                raise InputError(f"{name} must be a number >= 0, got {v!r}.")
            _set(self, name, float(v))


FLAT_NAMES: dict[str, tuple[str, str]] = {
    "quantizer": ("mask", "quantizer"),
    "encoder_filters": ("mask", "filters"),
    "dilations": ("mask", "dilations"),
    "pool": ("mask", "pool"),
    "view": ("mask", "view"),
    "zero_mean": ("mask", "zero_mean"),
    "cluster_init": ("mask", "cluster_init"),
    "cluster_rounds": ("mask", "cluster_rounds"),
    "multiscale": ("mask", "multiscale"),
    "texture_filters": ("textures", "filters"),
    "texture_noise": ("textures", "noise"),
    "texture_dilations": ("textures", "dilations"),
    "extractor": ("loss", "extractor"),
    "extractor_weights": ("loss", "extractor_weights"),
    "balance": ("loss", "balance"),
    "texture_match": ("loss", "texture_match"),
    "frontend": ("ablation", "frontend"),
    "finetune_masks": ("ablation", "finetune_masks"),
    "paper_loss": ("ablation", "paper_loss"),
    "seed_textures": ("ablation", "seed_textures"),
    "scaled_head": ("ablation", "scaled_head"),
    "normalized_cut": ("ablation", "normalized_cut"),
    "overcluster": ("ablation", "overcluster"),
    "context_merge": ("ablation", "context_merge"),
}
"""Where each flat option of the 0.2 ``KTextures`` constructor lives now: ``(group, field)``.

Saved configs keep these flat names. ``"ablation"`` fields are experiment switches, not
public options (``benchmarks/quality.py --option NAME=VALUE`` still reaches them)."""

_GROUP_CLASS = {"mask": "MaskOptions", "textures": "TextureOptions", "loss": "LossOptions"}


def group_flat(options: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Split flat 0.2-style options into per-group field dicts and the rest.

    Returns
    -------
    (dict, dict)
        ``{"mask": {...}, "textures": {...}, "loss": {...}, "ablation": {...}}`` and the
        options that are not in :data:`FLAT_NAMES`, as given.

    Examples
    --------
    >>> group_flat({"pool": 8, "balance": 0.5, "steps": 0})
    ({'mask': {'pool': 8}, 'textures': {}, 'loss': {'balance': 0.5}, 'ablation': {}}, {'steps': 0})
    """
    groups: dict[str, dict[str, Any]] = {"mask": {}, "textures": {}, "loss": {}, "ablation": {}}
    rest: dict[str, Any] = {}
    for name, value in options.items():
        if name in FLAT_NAMES:
            group, field = FLAT_NAMES[name]
            groups[group][field] = value
        else:
            rest[name] = value
    return groups, rest


def new_place(name: str) -> str:
    """Where the 0.2 constructor option ``name`` lives now, in words.

    >>> new_place("encoder_filters"), new_place("paper_loss")
    ('mask=MaskOptions(filters=...)', 'an experiment switch, no longer a model option')
    """
    group, field = FLAT_NAMES[name]
    if group == "ablation":
        return "an experiment switch, no longer a model option"
    return f"{group}={_GROUP_CLASS[group]}({field}=...)"


def moved_option_message(names: Sequence[str]) -> str:
    """The error message for 0.2 constructor options passed flat: where each one lives now."""
    return "; ".join(f"{name!r} is now {new_place(name)}" for name in names) + " (see the changelog, 0.2.0)."


OptionsT = TypeVar("OptionsT", MaskOptions, TextureOptions, LossOptions)


def as_options(cls: type[OptionsT], value: Any, name: str) -> OptionsT:
    """``value`` as a ``cls``: None gives the defaults, a mapping its fields; anything else is refused.

    >>> as_options(MaskOptions, {"pool": 3}, "mask").pool
    3
    """
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        known = [f.name for f in fields(cls)]
        for key in value:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise InputError(f"{name}= got an unknown field {key!r}.{hint} {cls.__name__} has {known}.")
        return cls(**value)
    raise InputError(f"{name} must be a {cls.__name__} or a mapping of its fields, got {type(value).__name__}.")
