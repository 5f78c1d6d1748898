"""The k-textures Keras model: masks from a quantized CNN, textures from noise, feature loss.

:class:`KTextures` is a ``keras.Model``. It knows nothing of xarray: it takes numpy
arrays shaped ``(..., H, W, bands)`` and returns numpy labels. Training uses Keras'
own ``fit`` loop (any backend) on random crops of a patch batch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import keras
import numpy as np
from keras import ops

from ._errors import InputError, NotFittedError
from .cluster import (
    MODE_RADIUS,
    POOL_LADDER,
    ViewChoice,
    choose_view,
    discriminative_kmeans,
    linear_head,
    multiscale_space,
    spatial_refine,
)
from .features import make_extractor
from .geo import invalid_pixels
from .layers import BandScaler, MaskEncoder, PaperMaskEncoder, TextureBank, make_quantizer

__all__ = ["NODATA", "KTextures", "position_noise"]

_log = logging.getLogger("xr_ktextures")

NODATA = 255
"""Label written where a pixel has no valid data (any band NaN/inf or equal to the input's nodata)."""

MAX_K = 128

HEAD_STEP = 0.02
"""Step size of the mask head relative to the textures' (see ``KTextures._cluster_init``)."""
QuantizerName = Literal["straight_through", "hard_sigmoid"]


def _timing(stage: str, t0: float) -> None:
    """A debug record of a fit stage's wall time (``extra``: ``stage``, ``seconds``; see benchmarks/fit.py)."""
    dt = time.perf_counter() - t0
    _log.debug("%s took %.1f s", stage, dt, extra={"stage": stage, "seconds": dt})


class _Unsaved:
    """Holds training-only state out of Keras' tracking (not saved with the model)."""

    def __init__(self) -> None:
        self.extractor: Any = None
        self.feature_scale: Any = None


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def position_noise(offset: tuple[int, int], shape: tuple[int, int], channels: int, seed: int) -> np.ndarray:
    """Standard normal noise that is a pure function of global pixel position and seed.

    Parameters
    ----------
    offset : (int, int)
        Global (row, col) of the first pixel.
    shape : (int, int)
        Rows and columns.
    channels : int
        Noise channels per pixel.
    seed : int
        Seed; other seeds give independent noise.

    Two windows that overlap get the same values where they overlap, so simulated
    images are identical whatever the chunking.

    Returns
    -------
    numpy.ndarray
        ``float32`` array of shape ``(*shape, channels)``.

    Examples
    --------
    >>> import numpy as np
    >>> a = position_noise((0, 0), (8, 8), 2, seed=0)
    >>> b = position_noise((4, 4), (4, 4), 2, seed=0)
    >>> a.shape, bool(np.array_equal(a[4:, 4:], b))
    ((8, 8, 2), True)
    """
    y0, x0 = offset
    h, w = shape
    with np.errstate(over="ignore"):
        ys = np.arange(y0, y0 + h, dtype=np.int64).astype(np.uint64)[:, None, None]
        xs = np.arange(x0, x0 + w, dtype=np.int64).astype(np.uint64)[None, :, None]
        cs = np.arange(2 * channels, dtype=np.uint64)[None, None, :]
        base = _mix64(np.uint64(seed & 0xFFFFFFFFFFFFFFFF) + np.zeros(1, np.uint64))
        z = _mix64(_mix64(_mix64(base ^ ys) ^ xs) ^ cs)
    u = ((z >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 2**53)
    u1, u2 = u[..., :channels], u[..., channels:]
    return (np.sqrt(-2.0 * np.log(u1)) * np.cos(2 * np.pi * u2)).astype(np.float32)


@keras.saving.register_keras_serializable(package="xr_ktextures")
class KTextures(keras.Model):
    """k-textures: self-supervised hard clustering of images by texture.

    A mask CNN with context radius :attr:`halo` gives each pixel one of ``k``
    classes through a quantizer inside the model; k texture CNNs turn noise into
    k textures; masks × textures, summed, simulate the image; the loss is the MSE
    between frozen deep features of the image and of the simulation, plus a
    class-usage term that keeps all k classes alive.

    Parameters
    ----------
    k : int
        Number of classes, 2 to 128.
    bands : int
        Number of bands of the images (last axis).
    architecture : {"default", "paper"}
        ``"paper"``: the paper's own design (Wagner et al. 2022): a 1x1 mask CNN
        (:class:`~xr_ktextures.layers.PaperMaskEncoder`, halo 0), the hard-sigmoid
        staircase, trained from random weights by gradient descent on the feature loss
        alone (VGG16 ``block5_conv3`` when its weights are in the Keras cache or given,
        else the filterbank). It overrides ``quantizer``, ``cluster_init``,
        ``finetune_masks``, ``texture_match`` and ``balance``.
    band_names : sequence of str, optional
        Names of the bands, remembered so data with other bands is refused later.
    quantizer : {"straight_through", "hard_sigmoid"}
        ``"straight_through"`` (default): k logits, one-hot forward, softmax gradient.
        ``"hard_sigmoid"``: the paper's one value per pixel cut by k-1 hard sigmoids.
    encoder_filters : int
        Channels of the mask CNN.
    dilations : sequence of int
        Dilations of the mask CNN's learned 3x3 convolutions.
    frontend : bool
        Start the mask CNN with the fixed multi-scale Gabor-energy front end
        (:class:`~xr_ktextures.layers.TextureFrontEnd`, radius 16 px; off by default).
    pool : int, optional
        Radius of the window over which the mask CNN's hypercolumn (input and every
        hidden layer) is averaged before its 1x1 head; 0 reads the last layer unpooled.
        Default None: chosen from the data at fit, with the view, by
        :func:`~xr_ktextures.cluster.choose_view` (radii 1, 3, 8, 20 px).
        :attr:`halo` is ``pool`` for the colour view, ``sum(dilations) + pool`` otherwise
        (+16 with the front end).
    view : {"colour", "texture", "both"}, optional
        What the pooled head reads (see :class:`~xr_ktextures.layers.MaskEncoder`). Default:
        chosen from the data with ``pool``; ``"both"`` when ``pool`` is given.
    multiscale : bool
        With ``pool=None`` (the default), the head reads the hypercolumn at every radius of
        the ladder (1, 3, 8, 20 px; :class:`~xr_ktextures.layers.MaskEncoder` ``scales``):
        the view chosen from the data gives the first clustering, then
        :func:`~xr_ktextures.cluster.spatial_refine` fits the head to the neighbourhood
        majority of the labels over all radii, until they settle. False keeps the single
        chosen view (the 0.2.0 design).
    zero_mean : bool
        Zero-mean random 3x3 kernels in the mask CNN (texture responses, not brightness).
    scaled_head : bool
        Scale each head weight by its input channel's spread (set by the cluster
        initialisation), so gradient steps on the head are matched to its inputs.
        False only for models saved by 0.2.0 pre-releases.
    cluster_init : bool, optional
        Before gradient training, set the mask head from a discriminative k-means of the
        pooled hypercolumn of the training patches (:mod:`xr_ktextures.cluster`), and the
        textures' mean colours from the clusters. Default: on for the straight-through
        quantizer; the paper's hard-sigmoid quantizer (one value per pixel) cannot hold a
        k-way nearest-centroid rule, so it trains from random weights.
    cluster_rounds : int
        Most discriminant rounds of the cluster initialisation.
    finetune_masks : bool, optional
        Train the masks by gradient descent through the quantizer with the k-textures loss
        (default True). After the cluster initialisation the head is trained (the random
        texture filters stay as drawn), at :data:`HEAD_STEP` times the textures' step
        size in units of each input channel's spread; without it the whole mask CNN is
        trained from random weights, as in the paper. False: the masks stay as
        initialised and only the textures train (``docs/quality.md`` compares both).
    texture_filters, texture_noise : int
        Hidden channels and noise channels of each texture CNN.
    texture_dilations : sequence of int
        Dilations of each texture CNN.
    extractor : {"filterbank", "vgg16"} or keras.Model
        Frozen feature extractor of the loss (see :mod:`xr_ktextures.features`).
    extractor_weights : path, optional
        Weights file for ``extractor="vgg16"``.
    balance : float
        Weight of the class-usage term (KL divergence of the batch's mean soft
        class usage from uniform). 0 disables it.
    texture_match : float
        Weight of the per-texture matching term: each texture's own features against
        the image's, weighted by the class's mask fraction in each feature cell. 0 gives
        the paper's loss alone (which did not organise masks by texture in our runs;
        see ``docs/quality.md``).
    paper_loss : float
        Weight of the paper's loss, MSE(F(image), F(simulated image)).
    seed_textures : bool
        Seed the textures' mean colours by k-means++ on the training patches.
    seed : int
        Seed for weights, noise and batch sampling: CPU runs are reproducible.
    fitted : bool
        Internal: whether the scaler holds fitted statistics (set by :meth:`fit`).
    **kwargs
        Passed to ``keras.Model`` (e.g. ``name``).

    Examples
    --------
    >>> import numpy as np
    >>> from xr_ktextures import KTextures
    >>> rng = np.random.default_rng(0)
    >>> patches = rng.random((4, 32, 32, 4), dtype=np.float32)
    >>> model = KTextures(k=3, seed=0)
    >>> model.fit(patches, steps=2, batch_size=2, patch_size=32, verbose=0)  # doctest: +ELLIPSIS
    <...KTextures...>
    >>> model.predict(patches[0]).shape
    (32, 32)
    """

    def __init__(
        self,
        k: int,
        bands: int = 4,
        *,
        architecture: Literal["default", "paper"] = "default",
        band_names: Sequence[str] | None = None,
        quantizer: QuantizerName = "straight_through",
        encoder_filters: int = 32,
        dilations: Sequence[int] = (1, 2, 4),
        frontend: bool = False,
        pool: int | None = None,
        view: str | None = None,
        multiscale: bool = True,
        zero_mean: bool = True,
        scaled_head: bool = True,
        cluster_init: bool | None = None,
        cluster_rounds: int = 6,
        finetune_masks: bool | None = None,
        texture_filters: int = 8,
        texture_noise: int = 4,
        texture_dilations: Sequence[int] = (1, 2, 4),
        extractor: Any = None,
        extractor_weights: str | os.PathLike[str] | None = None,
        balance: float = 1.0,
        texture_match: float = 1.0,
        paper_loss: float = 1.0,
        seed_textures: bool = False,
        seed: int = 0,
        fitted: bool = False,
        **kwargs: Any,
    ) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= int(k) <= MAX_K:
            raise ValueError(f"k must be an integer from 2 to {MAX_K}, got {k!r}.")
        if isinstance(bands, bool) or not isinstance(bands, (int, np.integer)) or int(bands) < 1:
            raise ValueError(f"bands must be a positive integer, got {bands!r}.")
        if band_names is not None:
            band_names = [str(b) for b in band_names]
            if len(band_names) != int(bands) or len(set(band_names)) != len(band_names):
                raise ValueError(f"band_names must be {int(bands)} distinct names, got {band_names!r}.")
        if not (isinstance(balance, (int, float)) and balance >= 0):
            raise ValueError(f"balance must be a number >= 0, got {balance!r}.")
        if architecture not in ("default", "paper"):
            raise ValueError(f"architecture must be 'default' or 'paper', got {architecture!r}.")
        if architecture == "paper":
            # the paper's design: 1x1 mask CNN, hard-sigmoid staircase, trained from random
            # weights by gradient descent on the feature loss alone
            quantizer, cluster_init, finetune_masks = "hard_sigmoid", False, True
            texture_match, balance = 0.0, 0.0
            if extractor is None:
                from .features import VGG16_WEIGHTS_FILE, _keras_cache_dir

                cached = (_keras_cache_dir() / VGG16_WEIGHTS_FILE).is_file() and int(bands) >= 3
                extractor = "vgg16" if cached or extractor_weights is not None else "filterbank"
        if extractor is None:
            extractor = "filterbank"
        if cluster_init is None:
            cluster_init = quantizer == "straight_through"
        if cluster_init and quantizer != "straight_through":
            raise ValueError(
                "cluster_init needs quantizer='straight_through' (k logits per pixel); the hard-sigmoid "
                "quantizer has one value per pixel. Pass cluster_init=False."
            )
        if isinstance(cluster_rounds, bool) or not isinstance(cluster_rounds, (int, np.integer)) or cluster_rounds < 0:
            raise ValueError(f"cluster_rounds must be an integer >= 0, got {cluster_rounds!r}.")
        kwargs.setdefault("name", "ktextures")
        super().__init__(**kwargs)
        self.k, self.bands = int(k), int(bands)
        # a tuple: Keras wraps list attributes in TrackedList, which leaks into get_config and cannot be unpickled
        self._band_names = None if band_names is None else tuple(band_names)
        self.quantizer_name = quantizer
        self.encoder_filters = int(encoder_filters)
        self.dilations = tuple(int(d) for d in dilations)
        self.frontend = bool(frontend)
        # None: chosen from the data at fit (cluster.choose_view); the encoder holds the current value
        self.auto_context = pool is None
        if not self.auto_context or not cluster_init:
            pool = 20 if pool is None else pool
            view = "both" if view is None else view
            self.auto_context = False
        pool = int(pool if pool is not None else max(POOL_LADDER))
        self.multiscale = bool(multiscale) and self.auto_context and architecture == "default"
        self.context_scores: dict[str, float] = {}
        self.init_view = ""  # "view@radius" of the first clustering (set at fit)
        self.zero_mean = bool(zero_mean)
        self.cluster_init = bool(cluster_init)
        self.cluster_rounds = int(cluster_rounds)
        self.finetune_masks = True if finetune_masks is None else bool(finetune_masks)
        self.texture_filters, self.texture_noise = int(texture_filters), int(texture_noise)
        self.texture_dilations = tuple(int(d) for d in texture_dilations)
        self.extractor_spec = extractor if isinstance(extractor, str) else "custom"
        self.balance = float(balance)
        self.texture_match = float(texture_match)
        self.paper_loss = float(paper_loss)
        self.seed_textures = bool(seed_textures)
        self.seed = int(seed)
        self.fitted = bool(fitted)

        keras.utils.set_random_seed(self.seed)  # initializers draw their seeds when layers are created
        self.scaler = BandScaler(self.bands, name="scaler")
        self.architecture = architecture
        self.quantizer = make_quantizer(quantizer, self.k)
        self.encoder: Any
        if architecture == "paper":
            self.encoder = PaperMaskEncoder(name="encoder")
        else:
            self.encoder = MaskEncoder(
                self.quantizer.encoder_outputs,
                self.encoder_filters,
                self.dilations,
                self.frontend,
                pool=pool,
                zero_mean=self.zero_mean,
                view=view or "both",
                scaled_head=scaled_head,
                scales=POOL_LADDER if self.multiscale else (),
                name="encoder",
            )
        self.textures = TextureBank(
            self.k, self.bands, self.texture_filters, self.texture_noise, self.texture_dilations, name="textures"
        )
        self.noise_seed = keras.random.SeedGenerator(self.seed, name="noise_seed")
        self._unsaved = _Unsaved()
        self._extractor_arg = (extractor, extractor_weights)
        if not isinstance(extractor, str) or (extractor == "vgg16" and not fitted):
            # resolve now: a missing weights file or a bad model fails before any data is read
            self._unsaved.extractor = make_extractor(extractor, bands=self.bands, weights=extractor_weights)
        elif extractor not in ("filterbank", "vgg16", "custom"):
            make_extractor(extractor, bands=self.bands)  # raises the clear error now
        self.encoder.build((None, None, None, self.bands))
        self.textures.build((None, None, None, self.k * self.texture_noise))
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
        """What the mask head reads: ``"colour"``, ``"texture"`` or ``"both"`` (chosen at fit by default)."""
        return str(getattr(self.encoder, "view", "pixel"))

    @property
    def halo(self) -> int:
        """Exact context radius in pixels: a label depends on the input within this distance only."""
        return self.encoder.halo

    @property
    def model_id(self) -> str:
        """Short hash of the configuration and weights: equal ids mean equal labels."""
        h = hashlib.sha1(repr(sorted(self.get_config().items())).encode())
        for w in self.weights:
            h.update(np.ascontiguousarray(keras.ops.convert_to_numpy(w)).tobytes())
        return h.hexdigest()[:12]

    # ------------------------------------------------------------------ forward
    def _simulate(self, masks: Any, noise: Any) -> tuple[Any, Any]:
        tex = self.textures(noise)  # (B, H, W, k, C)
        return ops.sum(ops.expand_dims(masks, -1) * tex, axis=3), tex

    def call(self, x: Any, training: bool = False) -> dict[str, Any]:
        xs = self.scaler(x)
        z = self.encoder(xs, training=training) if self.architecture == "paper" else self.encoder(xs)
        masks = self.quantizer(z)
        shape = ops.shape(xs)
        noise = keras.random.normal((shape[0], shape[1], shape[2], self.k * self.texture_noise), seed=self.noise_seed)
        sim, tex = self._simulate(masks, noise)
        return {"scaled": xs, "logits": z, "masks": masks, "simulated": sim, "textures": tex}

    def _extractor(self) -> Any:
        if self._unsaved.extractor is None:
            spec, weights = self._extractor_arg
            if spec == "custom":
                raise NotFittedError(
                    "this model was trained with a custom feature extractor, which is not saved; "
                    "pass extractor=YOUR_MODEL to KTextures to train it again."
                )
            self._unsaved.extractor = make_extractor(spec, bands=self.bands, weights=weights)
        return self._unsaved.extractor

    def compute_loss(
        self, x: Any = None, y: Any = None, y_pred: Any = None, sample_weight: Any = None, training: bool = True
    ) -> Any:
        ext = self._extractor()
        scale = self._unsaved.feature_scale
        f_true = ops.stop_gradient(ext(y_pred["scaled"]))
        f_sim = ext(y_pred["simulated"])
        loss = self.paper_loss * ops.mean(ops.square((f_true - f_sim) / scale))
        if self.texture_match > 0:
            loss = loss + self.texture_match * self._texture_match_loss(ext, f_true, y_pred, scale)
        if self.balance > 0:
            usage = ops.mean(self.quantizer.soft(y_pred["logits"]), axis=(0, 1, 2))
            kl = ops.sum(usage * ops.log(usage * self.k + 1e-8))
            loss = loss + self.balance * kl
        return loss

    def _texture_match_loss(self, ext: Any, f_true: Any, y_pred: Any, scale: Any) -> Any:
        """Per-cell cost of each texture, weighted by the mask fraction of each class.

        ``sum_j frac_j(cell) * mean((F(x) - F(texture_j)) / scale)**2`` over feature cells.
        It bounds the paper's loss from above when features mix linearly with mask
        fractions, and gives every pixel a direct, low-variance pull towards the class
        whose texture matches its neighbourhood (a k-means step in feature space).
        """
        tex = y_pred["textures"]  # (B, H, W, k, C)
        shape = ops.shape(tex)
        b, h, w = shape[0], shape[1], shape[2]
        per_k = ops.reshape(ops.transpose(tex, (0, 3, 1, 2, 4)), (-1, h, w, self.bands))
        f_k = ext(per_k)  # (B*k, fh, fw, F)
        fshape = ops.shape(f_k)
        f_k = ops.reshape(f_k, (b, self.k, fshape[1], fshape[2], fshape[3]))
        dist = ops.mean(ops.square((ops.expand_dims(f_true, 1) - f_k) / scale), axis=-1)  # (B, k, fh, fw)
        stride = int(tex.shape[1]) // int(f_k.shape[2])
        frac = ops.average_pool(y_pred["masks"], stride, stride, padding="valid")  # (B, fh, fw, k)
        return ops.mean(ops.sum(ops.transpose(frac, (0, 3, 1, 2)) * dist, axis=1))

    # ------------------------------------------------------------------ training
    def fit(  # type: ignore[override]
        self,
        patches: np.ndarray,
        *,
        steps: int = 60,
        batch_size: int = 4,
        patch_size: int = 64,
        learning_rate: float = 3e-3,
        augment: bool = True,
        verbose: int | str = "auto",
        callbacks: Sequence[keras.callbacks.Callback] | None = None,
    ) -> KTextures:
        """Train on a batch of image patches; returns the model itself.

        Each step draws ``batch_size`` random ``patch_size`` crops (with random flips
        and quarter turns when ``augment``) from ``patches``. Per-band scaling is
        fitted on ``patches`` first and stored in the model. The global Keras, numpy and
        Python random seeds are set from the model's ``seed`` (reproducibility on CPU).

        Parameters
        ----------
        patches : numpy.ndarray
            ``(N, H, W, bands)`` finite values, ``H, W >= patch_size``.
        steps : int
            Optimisation steps of the textures and the mask head (0: the cluster
            initialisation only). Measured fit times against k: ``docs/scaling.md``
            (``benchmarks/fit.py``).
        batch_size, patch_size : int
            Crops per step and their size (a multiple of 16, >= 32).
        learning_rate : float
            Adam learning rate (cosine-decayed to 5 % over ``steps``).
        augment : bool
            Random flips and quarter turns of each crop.
        verbose : int or "auto"
            Keras progress display (0 silent, 1 progress bar, 2 one line).
        callbacks : list of keras.callbacks.Callback, optional
            Passed to Keras' fit.

        Returns
        -------
        KTextures
            ``self``, trained.

        Raises
        ------
        InputError
            If ``patches`` has the wrong shape, band count, or non-finite values.
        """
        patches = self._check_patches(patches, patch_size)
        for name, v, low in (("steps", steps, 0), ("batch_size", batch_size, 1)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {v!r}.")
        keras.utils.set_random_seed(self.seed)
        data = patches.astype(np.float32, copy=False)
        mean = data.mean(axis=(0, 1, 2), dtype=np.float64)
        std = data.std(axis=(0, 1, 2), dtype=np.float64)
        std = np.where(std > 1e-6 * np.maximum(np.abs(mean), 1.0), std, 1.0)
        self.scaler.set_statistics(mean, std)

        rng = np.random.default_rng(self.seed)
        if self.seed_textures or self.cluster_init:
            t0 = time.perf_counter()
            _log.info("initialising the %d classes from %d sampled patches", self.k, len(data))
            scaled = ((data - mean) / std).astype(np.float32)  # once, for both initialisations
            if self.seed_textures:
                self._seed_texture_colours(scaled, rng)
            if self.cluster_init:
                self._cluster_init(scaled, rng)
                _log.info("first clustering: the %s view", self.init_view or f"{self.view}@{self.pool}")
            _timing("init", t0)
        batches = _crops(data, batch_size, patch_size, augment, rng)
        ext = self._extractor()
        probe = np.concatenate([next(batches) for _ in range(4)])
        feats = keras.ops.convert_to_numpy(ext(self.scaler(probe)))
        fstd = feats.reshape(-1, feats.shape[-1]).std(axis=0)
        self._unsaved.feature_scale = ops.convert_to_tensor(
            np.maximum(fstd, 1e-3 * max(float(fstd.max()), 1e-6)).astype(np.float32)
        )
        if not steps:  # the cluster initialisation alone (textures untrained)
            self.fitted = True
            return self
        schedule = keras.optimizers.schedules.CosineDecay(learning_rate, int(steps), alpha=0.05)
        self.encoder.trainable = self.finetune_masks
        if self.cluster_init and self.architecture == "default":
            for conv in self.encoder.convs:  # random texture filters stay as drawn: the head learns
                conv.trainable = False
        t0 = time.perf_counter()
        _log.info("training for %d steps", int(steps))
        try:
            self.compile(optimizer=keras.optimizers.Adam(schedule), jit_compile="auto")
            super().fit(
                _as_x(batches),
                steps_per_epoch=int(steps),
                epochs=1,
                shuffle=False,  # the generator already draws random crops
                verbose=verbose,
                callbacks=list(callbacks or []),
            )
        finally:
            self.encoder.trainable = True
            for layer in getattr(self.encoder, "convs", []):
                layer.trainable = True
        _timing("train", t0)
        self.fitted = True
        return self

    def _cluster_init(self, scaled: np.ndarray, rng: np.random.Generator, pixels: int = 60_000) -> None:
        """Mask head (and, with ``pool=None``, its context radius and view) from a clustering of the sample.

        The hypercolumn of the patches is averaged over every candidate radius and read
        at the same pixels, at least the largest context from a patch edge when the
        patches are large enough (so they see the same context as at inference);
        :func:`~xr_ktextures.cluster.choose_view` picks the view and fits the head. The
        textures' mean colours are set from the clusters.
        """
        from .layers import box_mean

        enc = self.encoder
        n, h, w, _ = scaled.shape
        if not enc.pool:  # the head reads the last hidden layer, unpooled (0.1 models)
            radii: tuple[int, ...] = (0,)
        else:
            radii = tuple(POOL_LADDER) if self.auto_context else (enc.pool,)
        reach = max(radii) + int(sum(enc.dilations)) + (enc.frontend.radius if enc.frontend is not None else 0)
        m = reach if min(h, w) - 2 * reach >= 8 else 0
        per = max(1, -(-pixels // n))
        pooled: dict[int, list[np.ndarray]] = {r: [] for r in radii}
        colours: list[np.ndarray] = []
        # the hypercolumn is ~100 floats per pixel: a few patches per call bounds memory
        step = max(1, (1 << 18) // (h * w))
        for i in range(0, n, step):
            batch = scaled[i : i + step]
            col = enc.hypercolumn(batch) if enc.pool else enc.features(batch)
            at = [(rng.integers(m, h - m, per), rng.integers(m, w - m, per)) for _ in range(len(batch))]
            for r in radii:
                f = keras.ops.convert_to_numpy(box_mean(col, r))
                pooled[r].extend(f[j, ys, xs] for j, (ys, xs) in enumerate(at))
            colours.extend(batch[j, ys, xs] for j, (ys, xs) in enumerate(at))
        x = {r: np.concatenate(v) for r, v in pooled.items()}
        if enc.pool:
            first = enc.head_channels(self.bands)[0]
            candidates = None if self.auto_context else [(enc.view, enc.pool)]
            choice = choose_view(x, first, self.k, seed=self.seed, rounds=self.cluster_rounds, candidates=candidates)
            self.context_scores = choice.scores
            self.init_view = f"{choice.view}@{choice.pool}"
            if enc.scales:
                kernel, bias, labels = self._refine(scaled, x, first, choice)
            else:
                enc.pool, enc.view = choice.pool, choice.view
                kernel, bias, labels = choice.kernel, choice.bias, choice.labels
        else:
            c = discriminative_kmeans(x[0], self.k, rounds=self.cluster_rounds, seed=self.seed)
            (kernel, bias), labels = linear_head(c), c.labels
        if enc.scales and enc.scaled_head:  # as below, per (channel, radius)
            spread = np.stack([x[r].std(0) for r in enc.scales], 1) + 1e-6
            enc.head_scale.assign((HEAD_STEP / spread).astype(np.float32))
            kernel = kernel * np.repeat(spread / HEAD_STEP, self.k, axis=1)
        elif enc.pool and enc.scaled_head:
            # weights in units of each input channel's spread over the sample, times HEAD_STEP:
            # Adam's steps (about the learning rate per weight) then move each channel's share
            # of the logits alike, at HEAD_STEP times the textures' pace
            spread = x[enc.pool].std(0) + 1e-6
            enc.head_scale.assign((HEAD_STEP / spread).astype(np.float32))
            kernel = kernel * (spread / HEAD_STEP)[:, None]
        enc.head.kernel.assign(kernel[None, None])
        enc.head.bias.assign(bias)
        col = np.concatenate(colours)
        means = np.stack([col[labels == j].mean(0) if (labels == j).any() else col.mean(0) for j in range(self.k)])
        self.textures.mix_biases[-1].assign(means.astype(np.float32))

    def _refine(
        self, scaled: np.ndarray, x: dict[int, np.ndarray], first: int, choice: ViewChoice
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The multi-scale head: :func:`~xr_ktextures.cluster.spatial_refine` from the chosen view's labels.

        The patches' hypercolumns are averaged at every radius of the head and read on a
        grid of every second pixel (label maps, for the neighbourhood vote); the features
        are the bands standardised and the texture maps' whitened components
        (:func:`~xr_ktextures.cluster.multiscale_space`), and the classifier found there
        is written back as weights on the raw hypercolumn, one block of k logits per radius.
        Returns the ``(channels, k * scales)`` kernel, its bias and the labels of the
        sampled pixels ``x``.
        """
        from .layers import box_mean

        enc, k = self.encoder, self.k
        n, h, w, _ = scaled.shape
        stride = 2 if min(h, w) >= 64 else 1
        spaces = multiscale_space({r: x[r] for r in enc.scales}, first)
        feats, init = [], []
        step = max(1, (1 << 18) // (h * w))
        for i in range(0, n, step):
            col = enc.hypercolumn(scaled[i : i + step])
            parts = []
            for r in enc.scales:
                f = keras.ops.convert_to_numpy(box_mean(col, r))[:, ::stride, ::stride]
                if r == choice.pool:
                    init.append((f @ choice.kernel + choice.bias).argmax(-1))
                mm, o = spaces[r]
                parts.append((f @ mm + o).astype(np.float32))
            feats.append(np.concatenate(parts, -1))
        d = x[enc.scales[0]].shape[1]
        kernel = np.zeros((d, k * len(enc.scales)))
        bias = np.zeros(k * len(enc.scales))
        labels0 = np.concatenate(init)
        if len(np.unique(labels0)) < k:  # a class too rare to show on the grid: keep the view's head
            s = enc.scales.index(choice.pool)
            kernel[:, s * k : (s + 1) * k], bias[:k] = choice.kernel, choice.bias
        else:
            weights, b, _, rounds = spatial_refine(
                np.concatenate(feats), labels0, k, radius=max(1, MODE_RADIUS // stride), seed=self.seed
            )
            _log.info("refined the %s clustering over radii %s in %d rounds", self.init_view, enc.scales, rounds)
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

    def _seed_texture_colours(self, scaled: np.ndarray, rng: np.random.Generator) -> None:
        """k-means++ seeding of the textures' mean colours on 8x8-block colour means.

        Generated textures otherwise start alike, so every class starts at the same
        place in feature space and the assignment has nothing to grip.
        """
        n, h, w, c = scaled.shape
        hb, wb = h // 8, w // 8
        blocks = scaled[:, : hb * 8, : wb * 8].reshape(n, hb, 8, wb, 8, c).mean(axis=(2, 4)).reshape(-1, c)
        centres = [blocks[rng.integers(len(blocks))]]
        for _ in range(1, self.k):
            d2 = np.min([((blocks - ctr) ** 2).sum(-1) for ctr in centres], axis=0)
            p = d2 / d2.sum() if d2.sum() > 0 else None
            centres.append(blocks[rng.choice(len(blocks), p=p)])
        self.textures.mix_biases[-1].assign(np.stack(centres).astype(np.float32))

    def _check_patches(self, patches: Any, patch_size: int) -> np.ndarray:
        if (
            isinstance(patch_size, bool)
            or not isinstance(patch_size, (int, np.integer))
            or patch_size < 32
            or patch_size % 16
        ):
            raise ValueError(f"patch_size must be a multiple of 16 and >= 32, got {patch_size!r}.")
        a = np.asarray(patches)
        if a.ndim != 4 or a.shape[-1] != self.bands:
            raise InputError(
                f"patches must be shaped (N, H, W, {self.bands}) for a {self.bands}-band model, got {a.shape}."
            )
        if a.shape[1] < patch_size or a.shape[2] < patch_size:
            raise InputError(
                f"patches of {a.shape[1]}x{a.shape[2]} px are smaller than patch_size={patch_size}; "
                "pass larger patches or a smaller patch_size."
            )
        if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
            raise InputError(f"patches must be real numbers, got dtype {a.dtype}.")
        if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
            raise InputError("patches contain NaN or inf; drop or fill nodata before fitting.")
        return a

    # ------------------------------------------------------------------ inference
    def _require_fitted(self) -> None:
        if not self.fitted:
            raise NotFittedError("this KTextures model is not fitted yet; call fit(...) or load a saved model.")

    def _prepare(self, x: Any) -> tuple[np.ndarray, np.ndarray, bool]:
        a = np.asarray(x)
        single = a.ndim == 3
        if single:
            a = a[None]
        if a.ndim != 4 or a.shape[-1] != self.bands:
            raise InputError(
                f"expected (H, W, {self.bands}) or (N, H, W, {self.bands}) for a {self.bands}-band model, "
                f"got {np.shape(x)}."
            )
        a = a.astype(np.float32, copy=False)
        invalid = invalid_pixels(a)
        if invalid.any():
            mean = keras.ops.convert_to_numpy(self.scaler.mean).astype(np.float32)
            a = np.where(np.isfinite(a), a, mean)
        return a, invalid, single

    def predict(  # type: ignore[override]
        self,
        x: np.ndarray,
        *,
        pad: bool = True,
        return_simulated: bool = False,
        offset: tuple[int, int] = (0, 0),
        device: str | None = None,
        tile: int | None = None,
        verbose: int = 0,
    ) -> Any:
        """Labels (and optionally the simulated image) for images of any size.

        Parameters
        ----------
        x : numpy.ndarray
            ``(H, W, bands)`` or ``(N, H, W, bands)``. Pixels with any non-finite band
            get :data:`NODATA`; they are filled with the band mean for their neighbours.
        pad : bool
            True: mirror-pad by :attr:`halo` first (whole images). False: ``x`` already
            carries its context (a chunk with overlap); the outer ``halo`` ring of the
            result is then unreliable and meant to be trimmed.
        return_simulated : bool
            Also return the simulated image (band units, float32).
        offset : (int, int)
            Global (row, col) of ``x[..., 0, 0, :]``: the texture noise depends on
            global position only, so simulations agree across chunks.
        device : str, optional
            ``"auto"``/None (the backend's GPU when it sees one, else the CPU), ``"cpu"``,
            ``"gpu"`` or ``"gpu:N"``. Labels are computed by the compiled, tiled engine of
            :mod:`xr_ktextures.engine` on that device.
        tile : int, optional
            Output tile side in pixels (memory is bounded by the tile, not the image);
            default 1024 on a CPU, 2048 on a GPU.
        verbose : int
            Unused; accepted for Keras compatibility.

        Returns
        -------
        numpy.ndarray or (numpy.ndarray, numpy.ndarray)
            ``uint8`` labels shaped like ``x`` without the band axis, and the
            simulated image shaped like ``x`` when ``return_simulated``.

        Raises
        ------
        NotFittedError
            If the model was never fitted.
        InputError
            If ``x`` is not shaped ``(..., H, W, bands)`` or ``device`` is not a device name.
        DeviceUnavailableError
            If ``device`` names a GPU that the Keras backend does not see.
        """
        from .engine import engine_for

        self._require_fitted()
        engine = engine_for(self, device, tile)
        a, invalid, single = self._prepare(x)
        h = self.halo
        if pad:
            a = np.pad(a, ((0, 0), (h, h), (h, h), (0, 0)), mode="symmetric")
            offset = (offset[0] - h, offset[1] - h)
        labels = engine(a, h)
        sim = None
        if return_simulated:
            masks = ops.one_hot(labels.astype(np.int32), self.k)
            noise = position_noise(offset, a.shape[1:3], self.k * self.texture_noise, self.seed)
            noise = np.broadcast_to(noise, (a.shape[0], *noise.shape))
            sim_s = keras.ops.convert_to_numpy(self._simulate(masks, noise)[0])
            mean = keras.ops.convert_to_numpy(self.scaler.mean)
            scale = keras.ops.convert_to_numpy(self.scaler.scale)
            sim = (sim_s * scale + mean).astype(np.float32)
        if pad:
            labels = labels[:, h : -h or None, h : -h or None]
            if sim is not None:
                sim = sim[:, h : -h or None, h : -h or None]
        labels[invalid] = NODATA
        if sim is not None:
            sim[invalid] = np.nan
        if single:
            labels = labels[0]
            sim = None if sim is None else sim[0]
        return (labels, sim) if return_simulated else labels

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "k": self.k,
            "bands": self.bands,
            "architecture": self.architecture,
            "band_names": self.band_names,
            "quantizer": self.quantizer_name,
            "encoder_filters": self.encoder_filters,
            "dilations": list(self.dilations),
            "frontend": self.frontend,
            "pool": None if self.auto_context and not self.fitted else self.pool,
            "view": None if self.auto_context and not self.fitted else self.view,
            "auto_context": self.auto_context,
            "multiscale": self.multiscale,
            "zero_mean": self.zero_mean,
            "scaled_head": bool(getattr(self.encoder, "scaled_head", False)),
            "cluster_init": self.cluster_init,
            "cluster_rounds": self.cluster_rounds,
            "finetune_masks": self.finetune_masks,
            "texture_filters": self.texture_filters,
            "texture_noise": self.texture_noise,
            "texture_dilations": list(self.texture_dilations),
            "extractor": self.extractor_spec,
            "balance": self.balance,
            "texture_match": self.texture_match,
            "paper_loss": self.paper_loss,
            "seed_textures": self.seed_textures,
            "seed": self.seed,
            "fitted": self.fitted,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> KTextures:
        config = dict(config)
        if "pool" not in config:  # saved by 0.1 (no pooled hypercolumn, no cluster initialisation)
            config.update(
                pool=0, zero_mean=False, cluster_init=False, finetune_masks=True, frontend=config.get("frontend", True)
            )
        auto = config.pop("auto_context", False)
        if "view" not in config:  # saved by 0.2: the head read the whole hypercolumn, unscaled
            config.update(view="both", scaled_head=False)
        config.setdefault("multiscale", False)  # saved by 0.2.0: one pooled view
        if config["multiscale"]:  # the ladder is fixed: the saved pool/view are its own
            config.update(pool=None, view=None)
        model = cls(**config)
        model.auto_context = bool(auto)
        return model


def _crops(data: np.ndarray, batch: int, size: int, augment: bool, rng: np.random.Generator) -> Iterator[np.ndarray]:
    n, h, w, _ = data.shape
    while True:
        idx = rng.integers(0, n, batch)
        ys = rng.integers(0, h - size + 1, batch)
        xs = rng.integers(0, w - size + 1, batch)
        out = np.stack([data[i, y : y + size, x : x + size] for i, y, x in zip(idx, ys, xs)])
        if augment:
            for j in range(batch):
                t = out[j]
                if rng.random() < 0.5:
                    t = t[:, ::-1]
                out[j] = np.rot90(t, int(rng.integers(0, 4)))
        yield np.ascontiguousarray(out)


def _as_x(batches: Iterator[np.ndarray]) -> Iterator[tuple[np.ndarray]]:
    for b in batches:
        yield (b,)
