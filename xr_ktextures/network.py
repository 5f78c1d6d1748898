"""The k-textures network: a pure ``keras.Model`` (layers, ``call``, loss, config).

Masks from a quantized CNN, textures from noise, a feature loss. It knows nothing of
xarray, of patches or of padding: :class:`~xr_ktextures.model.KTextures`, the estimator
a user holds, trains it on patches and predicts with it. It is registered for Keras
serialization under the name ``xr_ktextures>KTextures``, the name 0.2.0 saved it under,
and its config keeps 0.2.0's flat keys, so files saved by 0.2.0 load unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import keras
import numpy as np
from keras import ops

from ._ablation import Ablation
from ._errors import InputError, NotFittedError
from ._validate import check_int
from .cluster import HEAD_SCALES, LEGACY_SCALES, POOL_LADDER
from .devices import seed_backend
from .features import make_extractor
from .layers import MaskEncoder
from .options import FLAT_NAMES, LossOptions, MaskOptions, TextureOptions, check_k, group_flat
from .paper import PaperMaskEncoder
from .quantizers import make_quantizer
from .textures import BandScaler, TextureBank

__all__ = ["KTexturesNet"]

_OTHER_KEYS = ("name", "k", "bands", "architecture", "band_names", "seed", "fitted", "scales")


class _Unsaved:
    """Holds training-only state out of Keras' tracking (not saved with the model)."""

    def __init__(self) -> None:
        self.extractor: Any = None
        self.feature_scale: Any = None


def _resolve(
    architecture: str, bands: int, mask: MaskOptions, loss: LossOptions, ablation: Ablation
) -> tuple[MaskOptions, LossOptions, Ablation]:
    """The options in effect: the paper preset's overrides and the defaults that depend on others."""
    if architecture not in ("default", "paper"):
        raise InputError(f"architecture must be 'default' or 'paper', got {architecture!r}.")
    if architecture == "paper":
        # the paper's design: 1x1 mask CNN, hard-sigmoid staircase, trained from random
        # weights by gradient descent on the feature loss alone
        mask = replace(mask, quantizer="hard_sigmoid", cluster_init=False)
        ablation = replace(ablation, finetune_masks=True)
        extractor = loss.extractor
        if extractor is None:
            from .features import VGG16_WEIGHTS_FILE, _keras_cache_dir

            cached = (_keras_cache_dir() / VGG16_WEIGHTS_FILE).is_file() and bands >= 3
            extractor = "vgg16" if cached or loss.extractor_weights is not None else "filterbank"
        loss = replace(loss, extractor=extractor, texture_match=0.0, balance=0.0)
    if loss.extractor is None:
        loss = replace(loss, extractor="filterbank")
    if mask.cluster_init is None:
        mask = replace(mask, cluster_init=mask.quantizer == "straight_through")
    if ablation.finetune_masks is None:
        ablation = replace(ablation, finetune_masks=True)
    return mask, loss, ablation


@keras.saving.register_keras_serializable(package="xr_ktextures", name="KTextures")
class KTexturesNet(keras.Model):
    """The k-textures network: band scaling, mask branch, quantizer, texture bank, loss.

    Built by :class:`~xr_ktextures.model.KTextures` (whose parameters these are, already
    checked and grouped); a user seldom makes one directly.

    Parameters
    ----------
    k : int
        Number of classes, 2 to 128.
    bands : int
        Number of bands of the images (last axis).
    architecture : {"default", "paper"}
        The paper's preset overrides the quantizer, the cluster initialisation and the
        loss weights (see :class:`~xr_ktextures.model.KTextures`).
    band_names : sequence of str, optional
        Names of the bands.
    mask, textures, loss : MaskOptions, TextureOptions, LossOptions
        The options of each branch (:mod:`xr_ktextures.options`).
    ablation : Ablation
        Experiment switches (``xr_ktextures._ablation``).
    seed : int
        Seed for weights and training noise.
    fitted : bool
        Whether the scaler holds fitted statistics.
    scales : sequence of int, optional
        Radii of the multi-scale head (default :data:`~xr_ktextures.cluster.HEAD_SCALES`);
        saved with the model, so files written with another ladder load as they were.
    **kwargs
        Passed to ``keras.Model`` (e.g. ``name``).
    """

    def __init__(
        self,
        k: int,
        bands: int = 4,
        *,
        architecture: str = "default",
        band_names: Any = None,
        mask: MaskOptions | None = None,
        textures: TextureOptions | None = None,
        loss: LossOptions | None = None,
        ablation: Ablation | None = None,
        seed: int = 0,
        fitted: bool = False,
        scales: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        k = check_k(k)
        bands = check_int("bands", bands, 1)
        if band_names is not None:
            band_names = [str(b) for b in band_names]
            if len(band_names) != int(bands) or len(set(band_names)) != len(band_names):
                raise InputError(f"band_names must be {int(bands)} distinct names, got {band_names!r}.")
        mask, loss, ablation = _resolve(
            architecture, int(bands), mask or MaskOptions(), loss or LossOptions(), ablation or Ablation()
        )
        textures = textures or TextureOptions()
        kwargs.setdefault("name", "ktextures")
        super().__init__(**kwargs)
        self.k, self.bands = k, int(bands)
        # a tuple: Keras wraps list attributes in TrackedList, which leaks into get_config and cannot be unpickled
        self._band_names = None if band_names is None else tuple(band_names)
        self.architecture = architecture
        self.mask_options, self.texture_options, self.loss_options, self.ablation = mask, textures, loss, ablation
        # pool None: chosen from the data at fit (cluster.choose_view); the encoder holds the current value
        self.auto_context = mask.pool is None
        pool, view = mask.pool, mask.view
        if not self.auto_context or not mask.cluster_init:
            pool = 20 if pool is None else pool
            view = "both" if view is None else view
            self.auto_context = False
        pool = int(pool if pool is not None else max(POOL_LADDER))
        self.multiscale = mask.multiscale and self.auto_context and architecture == "default"
        self.context_scores: dict[str, float] = {}
        self.init_view = ""  # "view@radius" of the first clustering (set at fit)
        self.seed = int(seed)
        self.fitted = bool(fitted)
        extractor = loss.extractor
        self.extractor_spec = extractor if isinstance(extractor, str) else "custom"

        seed_backend(self.seed)  # initializers draw their seeds when layers are created
        self.scaler = BandScaler(self.bands, name="scaler")
        self.quantizer = make_quantizer(mask.quantizer, self.k)
        self.encoder: Any
        if architecture == "paper":
            self.encoder = PaperMaskEncoder(name="encoder")
        else:
            self.encoder = MaskEncoder(
                self.quantizer.encoder_outputs,
                mask.filters,
                mask.dilations,
                ablation.frontend,
                pool=pool,
                zero_mean=mask.zero_mean,
                view=view or "both",
                scaled_head=ablation.scaled_head,
                scales=(HEAD_SCALES if scales is None else tuple(scales)) if self.multiscale else (),
                name="encoder",
            )
        self.textures = TextureBank(
            self.k, self.bands, textures.filters, textures.noise, textures.dilations, name="textures"
        )
        self.noise_seed = keras.random.SeedGenerator(self.seed, name="noise_seed")
        self._unsaved = _Unsaved()
        self._extractor_arg = (extractor, loss.extractor_weights)
        if not isinstance(extractor, str) or (extractor == "vgg16" and not fitted):
            # resolve now: a missing weights file or a bad model fails before any data is read
            self._unsaved.extractor = make_extractor(extractor, bands=self.bands, weights=loss.extractor_weights)
        elif extractor not in ("filterbank", "vgg16", "custom"):
            make_extractor(extractor, bands=self.bands)  # raises the clear error now
        self.encoder.build((None, None, None, self.bands))
        self.textures.build((None, None, None, self.k * textures.noise))
        self.built = True

    # ------------------------------------------------------------------ properties
    @property
    def band_names(self) -> list[str] | None:
        """Names of the bands the model was fitted on, in order (None when unnamed)."""
        return None if self._band_names is None else list(self._band_names)

    @property
    def pool(self) -> int:
        """Context radius of the mask head's window mean (chosen from the data at fit by default)."""
        return int(getattr(self.encoder, "pool", 0))

    @property
    def view(self) -> str:
        """What the mask head reads: ``"colour"``, ``"texture"`` or ``"both"`` (``"pixel"`` for the paper's)."""
        return str(getattr(self.encoder, "view", "pixel"))

    @property
    def halo(self) -> int:
        """Exact context radius in pixels: a label depends on the input within this distance only."""
        return int(self.encoder.halo)

    @property
    def model_id(self) -> str:
        """Short hash of the configuration and weights: equal ids mean equal labels."""
        h = hashlib.sha1(repr(sorted(self.get_config().items())).encode())
        for w in self.weights:
            h.update(np.ascontiguousarray(keras.ops.convert_to_numpy(w)).tobytes())
        return h.hexdigest()[:12]

    # ------------------------------------------------------------------ forward
    def render(self, masks: Any, noise: Any) -> tuple[Any, Any]:
        """The simulated image ``sum_j mask_j * texture_j`` (scaled units) and the textures.

        Parameters
        ----------
        masks : tensor
            ``(B, H, W, k)`` one-hot masks.
        noise : tensor
            ``(B, H, W, k * noise)`` texture noise, or ``(1, H, W, k * noise)``: one canvas
            of textures shared by the ``B`` images.

        Returns
        -------
        (tensor, tensor)
            The simulation ``(B, H, W, bands)`` and the textures ``(B, H, W, k, bands)``
            (batch 1 for shared noise).
        """
        tex = self.textures(noise)  # (B or 1, H, W, k, C)
        return ops.sum(ops.expand_dims(masks, -1) * tex, axis=3), tex

    def call(self, x: Any, training: bool = False) -> dict[str, Any]:
        xs = self.scaler(x)
        z = self.encoder(xs, training=training) if self.architecture == "paper" else self.encoder(xs)
        masks = self.quantizer(z)
        shape = ops.shape(xs)
        # one canvas of the k textures per call, shared by the batch's images: a texture is
        # a stationary random field, so each image's simulation is distributed as with its
        # own noise, and the texture bank and the texture-match term's extractor run on 1
        # canvas instead of B (4x less work per step; it dominates at large k)
        noise = keras.random.normal((1, shape[1], shape[2], self.k * self.texture_options.noise), seed=self.noise_seed)
        sim, tex = self.render(masks, noise)
        return {"scaled": xs, "logits": z, "masks": masks, "simulated": sim, "textures": tex}

    def labels(self, x: Any) -> Any:
        """Class labels of ``x``: the mask branch alone, as the layers compute it (the engine's graph).

        Parameters
        ----------
        x : tensor
            ``(B, H, W, bands)`` images in band units.

        Returns
        -------
        tensor
            ``(B, H, W)`` ``uint8`` labels.
        """
        return ops.cast(self.quantizer.labels(self.encoder(self.scaler(x), phased=True)), "uint8")

    def label_flops_per_pixel(self) -> dict[str, float]:
        """Operations per output pixel of :meth:`labels`, from the layers' own counts.

        Returns
        -------
        dict
            FLOPs per pixel by layer (``"scaler"``, ``"conv0"``, ..., ``"head"``, ``"pool"``)
            and their ``"total"``.
        """
        out = {"scaler": self.scaler.flops_per_pixel(), **self.encoder.flops_per_pixel(self.bands)}
        out["total"] = sum(out.values())
        return out

    def label_bytes_per_pixel(self) -> int:
        """Peak working memory per input pixel of :meth:`labels` (the mask branch's own estimate).

        Returns
        -------
        int
            Bytes per input pixel.
        """
        return int(self.encoder.bytes_per_pixel(self.bands))

    # ------------------------------------------------------------------ loss
    def extractor(self) -> Any:
        """The frozen feature extractor of the loss (built on first use; never saved)."""
        if self._unsaved.extractor is None:
            spec, weights = self._extractor_arg
            if spec == "custom":
                raise NotFittedError(
                    "this model was trained with a custom feature extractor, which is not saved; "
                    "pass loss=LossOptions(extractor=YOUR_MODEL) to KTextures to train it again."
                )
            self._unsaved.extractor = make_extractor(spec, bands=self.bands, weights=weights)
        return self._unsaved.extractor

    def fit_feature_scale(self, probe: np.ndarray) -> None:
        """Divide each feature channel of the loss by its std over ``probe`` (raw patches, band units)."""
        feats = keras.ops.convert_to_numpy(self.extractor()(self.scaler(probe)))
        fstd = feats.reshape(-1, feats.shape[-1]).std(axis=0)
        self._unsaved.feature_scale = ops.convert_to_tensor(
            np.maximum(fstd, 1e-3 * max(float(fstd.max()), 1e-6)).astype(np.float32)
        )

    def compute_loss(
        self, x: Any = None, y: Any = None, y_pred: Any = None, sample_weight: Any = None, training: bool = True
    ) -> Any:
        ext = self.extractor()
        scale = self._unsaved.feature_scale
        f_true = ops.stop_gradient(ext(y_pred["scaled"]))
        f_sim = ext(y_pred["simulated"])
        loss = self.ablation.paper_loss * ops.mean(ops.square((f_true - f_sim) / scale))
        if self.loss_options.texture_match > 0:
            loss = loss + self.loss_options.texture_match * self._texture_match_loss(ext, f_true, y_pred, scale)
        if self.loss_options.balance > 0:
            usage = ops.mean(self.quantizer.soft(y_pred["logits"]), axis=(0, 1, 2))
            kl = ops.sum(usage * ops.log(usage * self.k + 1e-8))
            loss = loss + self.loss_options.balance * kl
        return loss

    def _texture_match_loss(self, ext: Any, f_true: Any, y_pred: Any, scale: Any) -> Any:
        """Per-cell cost of each texture, weighted by the mask fraction of each class.

        ``sum_j frac_j(cell) * mean((F(x) - F(texture_j)) / scale)**2`` over feature cells.
        It bounds the paper's loss from above when features mix linearly with mask
        fractions, and gives every pixel a direct, low-variance pull towards the class
        whose texture matches its neighbourhood (a k-means step in feature space).
        """
        tex = y_pred["textures"]  # (1, H, W, k, C): one canvas shared by the batch (call)
        f_k = ext(ops.transpose(tex[0], (2, 0, 1, 3)))  # (k, fh, fw, F)
        dist = ops.mean(ops.square((ops.expand_dims(f_true, 1) - f_k[None]) / scale), axis=-1)  # (B, k, fh, fw)
        stride = int(tex.shape[1]) // int(f_k.shape[1])
        frac = ops.average_pool(y_pred["masks"], stride, stride, padding="valid")  # (B, fh, fw, k)
        return ops.mean(ops.sum(ops.transpose(frac, (0, 3, 1, 2)) * dist, axis=1))

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        """The config in 0.2.0's flat layout (:data:`~xr_ktextures.options.FLAT_NAMES`).

        Returns
        -------
        dict
            Plain Python values (JSON-serialisable, picklable).
        """
        m, t, lo, a = self.mask_options, self.texture_options, self.loss_options, self.ablation
        scales = tuple(getattr(self.encoder, "scales", ()))
        return {
            "name": self.name,
            "k": self.k,
            "bands": self.bands,
            "architecture": self.architecture,
            "band_names": self.band_names,
            "quantizer": m.quantizer,
            "encoder_filters": m.filters,
            "dilations": list(m.dilations),
            "frontend": a.frontend,
            "pool": None if self.auto_context and not self.fitted else self.pool,
            "view": None if self.auto_context and not self.fitted else self.view,
            "auto_context": self.auto_context,
            "zero_mean": m.zero_mean,
            "scaled_head": bool(getattr(self.encoder, "scaled_head", False)),
            "cluster_init": m.cluster_init,
            "cluster_rounds": m.cluster_rounds,
            "finetune_masks": a.finetune_masks,
            "texture_filters": t.filters,
            "texture_noise": t.noise,
            "texture_dilations": list(t.dilations),
            "extractor": self.extractor_spec,
            "balance": float(lo.balance),
            "texture_match": float(lo.texture_match),
            "paper_loss": float(a.paper_loss),
            "seed_textures": a.seed_textures,
            "seed": self.seed,
            "fitted": self.fitted,
            # written only when on: a single-view model's config (and model_id) stay as 0.2.0 wrote them
            **({"multiscale": True} if self.multiscale else {}),
            # written only when not the pre-release ladder, so those models keep their model_id
            **({"scales": list(scales)} if self.multiscale and scales != LEGACY_SCALES else {}),
            # written only when off (an ablation), so the default's config and model_id stay as before
            **({"normalized_cut": False} if not a.normalized_cut else {}),
            **({"overcluster": False} if not a.overcluster else {}),
            **({"context_merge": False} if a.overcluster and not a.merges_by_context else {}),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> KTexturesNet:
        """Rebuild from :meth:`get_config` output, including configs saved by 0.1 and 0.2.0.

        Parameters
        ----------
        config : dict
            A config as :meth:`get_config` writes it (or an older one).

        Returns
        -------
        KTexturesNet

        Raises
        ------
        InputError
            If the config has keys this version does not know (a model saved by a newer
            xr_ktextures); the message names this version.
        """
        from . import __version__

        config = dict(config)
        if "pool" not in config:  # saved by 0.1 (no pooled hypercolumn, no cluster initialisation)
            config.update(
                pool=0, zero_mean=False, cluster_init=False, finetune_masks=True, frontend=config.get("frontend", True)
            )
        auto = config.pop("auto_context", False)
        if "view" not in config:  # saved by 0.2 pre-releases: the head read the whole hypercolumn, unscaled
            config.update(view="both", scaled_head=False)
        config.setdefault("multiscale", False)  # saved by 0.2.0: one pooled view
        if config["multiscale"]:  # the ladder is fixed: the saved pool/view are its own
            config.update(pool=None, view=None)
            config.setdefault("scales", list(LEGACY_SCALES))  # saved before the pixel scale
        unknown = sorted(set(config) - set(FLAT_NAMES) - set(_OTHER_KEYS))
        if unknown:
            raise InputError(
                f"this k-textures model was saved by another version of xr_ktextures: its config has "
                f"{unknown}, which xr_ktextures {__version__} does not know. Load it with the version "
                "that saved it, or fit the model again."
            )
        groups, rest = group_flat(config)
        if groups["mask"].get("view") == "pixel":  # the paper's encoder reports "pixel": no view to choose
            groups["mask"]["view"] = None
        if isinstance(groups["mask"].get("dilations"), list):
            groups["mask"]["dilations"] = tuple(groups["mask"]["dilations"])
        model = cls(
            mask=MaskOptions(**groups["mask"]),
            textures=TextureOptions(**groups["textures"]),
            loss=LossOptions(**groups["loss"]),
            ablation=Ablation(**groups["ablation"]),
            **rest,
        )
        model.auto_context = bool(auto)
        return model
