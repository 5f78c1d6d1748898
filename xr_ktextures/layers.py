"""Keras 3 layers of the k-textures model, written with ``keras.ops`` only.

* :class:`BandScaler` – per-band standardisation whose statistics live in the model.
* :class:`MaskEncoder` – the mask branch: a dilated CNN with an exact context radius.
* :class:`StraightThroughQuantizer` / :class:`HardSigmoidQuantizer` – turn the
  encoder output into k binary masks *inside* the model, trainable by gradient descent.
* :class:`TextureBank` – k independent small CNNs that turn noise into k textures.

Nothing here knows about xarray or Dask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import layers, ops

__all__ = [
    "BandScaler",
    "HardSigmoidQuantizer",
    "MaskEncoder",
    "PaperMaskEncoder",
    "StraightThroughQuantizer",
    "TextureBank",
    "TextureFrontEnd",
    "ZeroMeanGlorotUniform",
    "box_mean",
    "make_quantizer",
]

_PKG = "xr_ktextures"

VIEWS = ("colour", "texture", "both")
"""What the pooled head reads: the input bands, the hidden texture maps, or both."""


def _check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return value


def box_mean(x: Any, radius: int) -> Any:
    """Mean over a ``(2 radius + 1)`` square window, stride 1, borders averaging valid pixels only.

    Separable: a (w, 1) then a (1, w) mean is the (w, w) mean, also at the borders
    (both count only the valid pixels), at 2 w instead of w**2 additions per pixel.

    Parameters
    ----------
    x : tensor
        ``(batch, height, width, channels)`` input.
    radius : int
        Half-width of the window; 0 returns ``x`` unchanged.

    Returns
    -------
    tensor
        The local means, same shape as ``x``.
    """
    if not radius:
        return x
    w = 2 * radius + 1
    _, h, wd, c = x.shape
    if h is not None and wd is not None and c is not None:
        # the column pass as a pool over (H, 1) with W*C channels: the same sums, over
        # contiguous memory (about 2x faster with TensorFlow on a CPU for a few channels)
        cols = ops.average_pool(ops.reshape(x, (-1, h, 1, wd * c)), (w, 1), 1, padding="same")
        cols = ops.reshape(cols, (-1, h, wd, c))
    else:
        cols = ops.average_pool(x, (w, 1), 1, padding="same")
    return ops.average_pool(cols, (1, w), 1, padding="same")


@keras.saving.register_keras_serializable(package=_PKG)
class ZeroMeanGlorotUniform(keras.initializers.GlorotUniform):
    """Glorot-uniform kernels with the spatial mean of each (input, output) filter removed.

    A zero-mean filter does not respond to a constant input: every random filter of the
    mask CNN then measures texture (local contrast and structure), not brightness, and the
    cluster initialisation sees texture even where colours are alike.

    Parameters
    ----------
    seed : int, optional
        Seed of the random draw, as for :class:`keras.initializers.GlorotUniform`.
    input_axes, output_axes : optional
        Passed to :class:`keras.initializers.GlorotUniform` (fan computation).
    """

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        w = super().__call__(shape, dtype)
        return w - ops.mean(w, axis=(0, 1), keepdims=True) if len(shape) == 4 else w


@keras.saving.register_keras_serializable(package=_PKG)
class BandScaler(layers.Layer):
    """Standardise each band with a mean and scale stored as (non-trainable) weights.

    The statistics are set once, from the training sample (:meth:`set_statistics`),
    and saved with the model, so every chunk and every later image is scaled alike.

    Parameters
    ----------
    bands : int
        Number of bands (last axis of the input).

    Examples
    --------
    >>> import numpy as np
    >>> scaler = BandScaler(2)
    >>> scaler.set_statistics([10.0, 20.0], [2.0, 4.0])
    >>> np.asarray(scaler(np.array([[12.0, 28.0]], "float32"))).tolist()
    [[1.0, 2.0]]
    """

    def __init__(self, bands: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bands = _check_positive_int("bands", bands)
        self.mean = self.add_weight(shape=(bands,), initializer="zeros", trainable=False, name="mean")
        self.scale = self.add_weight(shape=(bands,), initializer="ones", trainable=False, name="scale")

    def set_statistics(self, mean: Any, scale: Any) -> None:
        """Store per-band ``mean`` and ``scale`` (array-likes of length ``bands``; scale > 0)."""
        self.mean.assign(ops.convert_to_tensor([float(v) for v in mean], dtype=self.mean.dtype))
        self.scale.assign(ops.convert_to_tensor([float(v) for v in scale], dtype=self.scale.dtype))

    def call(self, x: Any) -> Any:
        return (x - self.mean) / self.scale

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "bands": self.bands}


@keras.saving.register_keras_serializable(package=_PKG)
class TextureFrontEnd(layers.Layer):
    """Fixed first stage of the mask CNN: Gabor energies at full resolution, stride 1.

    For each dilation ``d`` the band mean is filtered by 7x7 even/odd Gabor kernels at
    ``orientations`` angles (period ``4 d`` px), squared and summed per orientation,
    ``log1p``-compressed and averaged over a ``(2 r + 1)`` square window (``r = pool``).
    Each band's local mean and standard deviation over the same window are appended.
    No weights; everything is stride 1, so the output at a pixel depends only on the
    input within :attr:`radius` and is the same whatever the tiling.

    Parameters
    ----------
    dilations : sequence of int
        Dilations of the 7x7 Gabor kernels (periods ``4 d`` px).
    orientations : int
        Gabor orientations.
    pool : int
        Radius of the averaging window, in pixels.
    **kwargs
        Passed to ``keras.layers.Layer`` (e.g. ``name``).

    Examples
    --------
    >>> import numpy as np
    >>> fe = TextureFrontEnd()
    >>> fe.radius, tuple(fe(np.zeros((1, 40, 40, 4), "float32")).shape), fe.channels(4)
    (16, (1, 40, 40, 20), 20)
    """

    def __init__(
        self, dilations: Sequence[int] = (1, 2, 4), orientations: int = 4, pool: int = 4, **kwargs: Any
    ) -> None:
        super().__init__(trainable=False, **kwargs)
        self.dilations = tuple(int(d) for d in dilations)
        self.orientations = _check_positive_int("orientations", orientations)
        self.pool = _check_positive_int("pool", pool, 0)
        from .features import _gabor_kernels

        self._kernel = _gabor_kernels(7, 0.25, self.orientations)

    @property
    def radius(self) -> int:
        """Context radius of the front end in pixels."""
        return 3 * max(self.dilations) + self.pool

    def channels(self, bands: int) -> int:
        return len(self.dilations) * self.orientations + 2 * bands

    def _box(self, x: Any) -> Any:
        return box_mean(x, self.pool)

    def energy(self, grey: Any, dilation: int) -> Any:
        """``log1p(even**2 + odd**2)`` of the band-mean image per orientation, before pooling."""
        k = ops.convert_to_tensor(self._kernel, dtype=grey.dtype)
        r2 = ops.square(ops.conv(grey, k, padding="same", dilation_rate=dilation))
        # channels alternate even/odd per orientation: a reshape-sum is one pass, strided slices three
        shape = ops.shape(r2)
        return ops.log1p(ops.sum(ops.reshape(r2, (-1, *shape[1:-1], self.orientations, 2)), axis=-1))

    def combine(self, energies: Sequence[Any], x: Any) -> Any:
        """Pool the energies (one per dilation) and append each band's local mean and std."""
        pooled = [self._box(e) for e in energies]
        mean = self._box(x)
        std = ops.sqrt(ops.maximum(self._box(ops.square(x)) - ops.square(mean), 0.0) + 1e-4)
        return ops.concatenate([*pooled, mean, std], axis=-1)  # the one full-size copy

    def call(self, x: Any) -> Any:
        grey = ops.mean(x, axis=-1, keepdims=True)
        return self.combine([self.energy(grey, d) for d in self.dilations], x)

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.pop("trainable", None)
        return {**cfg, "dilations": list(self.dilations), "orientations": self.orientations, "pool": self.pool}


@keras.saving.register_keras_serializable(package=_PKG)
class MaskEncoder(layers.Layer):
    """The mask branch: an optional fixed texture front end, 3x3 dilated convolutions, a 1x1 head.

    With ``pool > 0`` the head reads a *pooled hypercolumn*: the input and every hidden
    layer's activations, averaged over a ``(2 pool + 1)`` square window
    (:meth:`features`). Head and window mean are both linear, so :meth:`call` applies the
    head first and pools only its k output channels (the same values, far cheaper).

    Every output pixel depends on the input inside a square of radius :attr:`halo`
    (front-end radius + sum of the dilations + pool) and on nothing further away. That
    exact radius is what chunked inference uses as overlap.

    Parameters
    ----------
    outputs : int
        Channels of the head (k logits, or 1 value for the hard-sigmoid quantizer).
    filters : int
        Channels of each hidden convolution.
    dilations : sequence of int
        Dilation of each 3x3 convolution, in order.
    frontend : bool
        Start with the fixed :class:`TextureFrontEnd` (multi-scale Gabor energies);
        False feeds the scaled bands straight to the learned convolutions.
    pool : int
        Radius of the window the hypercolumn is averaged over before the head; 0: the
        head reads the last hidden layer only (no pooling).
    zero_mean : bool
        Initialise the 3x3 kernels with :class:`ZeroMeanGlorotUniform` (texture, not
        brightness, responses).
    view : {"both", "colour", "texture"}
        With ``pool > 0``, which part of the hypercolumn the head reads: the input bands
        and every hidden map (``"both"``), the input bands only (``"colour"``: no
        convolution runs and :attr:`halo` is ``pool``), or the hidden maps only.
    scaled_head : bool
        With ``pool > 0``, multiply the head's weights by a per-input-channel, non-trainable
        ``head_scale`` (set by the cluster initialisation to the inverse of each channel's
        spread), so that gradient steps on the head are matched to its inputs' scales.
    scales : sequence of int
        Non-empty: a *multi-scale* head (view ``"both"``). Each radius in ``scales`` gets
        its own k logits over the hypercolumn averaged over that window, and the logits
        of all scales are summed: the head can weigh a pixel's own neighbourhood against
        a wide texture window, so boundaries can be as sharp as the data allows. ``pool``
        is then ``max(scales)``; ``head_scale`` is per (channel, scale).
    **kwargs
        Passed to ``keras.layers.Layer`` (e.g. ``name``).

    Raises
    ------
    ValueError
        If ``outputs`` or ``filters`` is not a positive integer, ``dilations`` is empty
        or ``pool`` is negative.

    Examples
    --------
    >>> import numpy as np
    >>> enc = MaskEncoder(outputs=3, filters=8, dilations=(1, 2), frontend=False)
    >>> enc.halo, tuple(enc(np.zeros((1, 16, 16, 4), "float32")).shape)
    (3, (1, 16, 16, 3))
    >>> enc = MaskEncoder(outputs=3, filters=8, dilations=(1, 2), pool=4)
    >>> enc.halo, tuple(enc.features(np.zeros((1, 16, 16, 4), "float32")).shape)
    (7, (1, 16, 16, 20))
    """

    def __init__(
        self,
        outputs: int,
        filters: int = 32,
        dilations: Sequence[int] = (1, 2, 4, 8),
        frontend: bool = False,
        pool: int = 0,
        zero_mean: bool = False,
        view: str = "both",
        scaled_head: bool = True,
        scales: Sequence[int] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.outputs = _check_positive_int("outputs", outputs)
        self.scales = tuple(_check_positive_int("scales", r, 0) for r in scales)
        if self.scales:
            pool = max(self.scales)
        self.pool = _check_positive_int("pool", pool, 0)
        self.zero_mean = bool(zero_mean)
        if view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {view!r}.")
        self.view = view
        self.scaled_head = bool(scaled_head)
        self.filters = _check_positive_int("filters", filters)
        dilations = tuple(int(d) for d in dilations)
        if not dilations or any(d < 1 for d in dilations):
            raise ValueError(f"dilations must be a non-empty sequence of integers >= 1, got {dilations!r}.")
        self.dilations = dilations
        self.frontend = TextureFrontEnd(name="frontend") if frontend else None
        self.convs = [
            layers.Conv2D(
                filters,
                3,
                padding="same",
                dilation_rate=d,
                activation="relu",
                kernel_initializer=ZeroMeanGlorotUniform() if self.zero_mean else "glorot_uniform",
                name=f"conv{i}",
            )
            for i, d in enumerate(dilations)
        ]
        self.head = layers.Conv2D(outputs * max(len(self.scales), 1), 1, name="head")

    @property
    def halo(self) -> int:
        """Context radius in pixels: the output at a pixel sees exactly this far."""
        convs = int(sum(self.dilations)) if self.reads_hidden else 0
        return convs + self.pool + (self.frontend.radius if self.frontend is not None else 0)

    @property
    def reads_hidden(self) -> bool:
        """Whether the head reads the hidden convolutions (else only the input, the ``"colour"`` view)."""
        return not self.pool or self.view != "colour"

    def head_channels(self, input_channels: int) -> list[int]:
        """Channels the head reads from the input (after any front end) and from each hidden layer."""
        first = self.frontend.channels(input_channels) if self.frontend is not None else input_channels
        return [first, *[self.filters] * len(self.convs)] if self.pool else [self.filters]

    def build(self, input_shape: Any) -> None:
        shape = tuple(input_shape)
        if self.frontend is not None:
            shape = (*shape[:-1], self.frontend.channels(int(shape[-1])))
        for conv in self.convs:
            conv.build(shape)
            shape = (*shape[:-1], self.filters)
        channels = sum(self.head_channels(int(input_shape[-1])))
        self.head.build((*shape[:-1], channels))
        if self.scaled_head and self.pool:
            # per-channel scale of the head's input, set with the head (see call): a step of
            # the optimiser then moves every channel's share of the logits alike
            shape = (channels, len(self.scales)) if self.scales else (channels,)
            self.head_scale = self.add_weight(shape=shape, initializer="ones", trainable=False, name="head_scale")

    def _maps(self, x: Any) -> list[Any]:
        """The input (after any front end) and every hidden map."""
        if self.frontend is not None:
            x = self.frontend(x)
        maps = [x]
        for conv in self.convs:
            x = conv(x)
            maps.append(x)
        return maps

    def _column(self, x: Any) -> list[Any]:
        """The maps the head reads: the input (after any front end) and each hidden layer, or the last one."""
        maps = self._maps(x)
        return maps if self.pool else maps[-1:]

    def head_kernel(self) -> Any:
        """The head's effective ``(1, 1, channels, outputs)`` kernel: its weights times :attr:`head_scale`."""
        if self.scaled_head and self.scales:  # one scale per (channel, radius): output s * k + j
            return self.head.kernel * ops.repeat(self.head_scale, self.outputs, axis=1)[None, None]
        if self.scaled_head and self.pool:
            return self.head.kernel * self.head_scale[None, None, :, None]
        return self.head.kernel

    def hypercolumn(self, x: Any) -> Any:
        """The input (after any front end) and every hidden map, concatenated, unpooled."""
        return ops.concatenate(self._maps(x), axis=-1)

    def features(self, x: Any) -> Any:
        """The head's input: the hypercolumn averaged over the pooling window (or the last hidden layer)."""
        return box_mean(ops.concatenate(self._column(x), axis=-1), self.pool)

    def call(self, x: Any) -> Any:
        if not self.pool:
            return self.head(self._column(x)[-1])
        # head(box(column)) == box(head(column)): both are linear and a window mean keeps
        # constants. Each map's share of the k logits is computed where the map is made,
        # and only the maps of the view are computed at all (the "colour" view reads the
        # input alone: no convolution runs).
        kernel = self.head_kernel()
        if self.frontend is not None:
            x = self.frontend(x)
        first = int(x.shape[-1])
        parts = []
        if self.view != "texture":
            parts.append(ops.conv(x, kernel[:, :, :first], padding="valid"))
        if self.view != "colour":
            start = first
            for conv in self.convs:
                x = conv(x)
                parts.append(ops.conv(x, kernel[:, :, start : start + self.filters], padding="valid"))
                start += self.filters
        # one reduction, not a chain of adds: TensorFlow's graph optimiser rewrites an add
        # chain into an accumulator that fails when two threads run one graph at once
        logits = ops.sum(ops.stack(parts), axis=0) + self.head.bias
        if not self.scales:
            return box_mean(logits, self.pool)
        # multi-scale head: the k logits of scale s read the hypercolumn averaged over radius
        # scales[s]; pooling the k outputs per scale is the same linear map, far cheaper
        k = self.outputs
        return ops.sum(ops.stack([box_mean(logits[..., i * k : (i + 1) * k], r) for i, r in enumerate(self.scales)]), 0)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*tuple(input_shape)[:-1], self.outputs)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "outputs": self.outputs,
            "filters": self.filters,
            "dilations": list(self.dilations),
            "frontend": self.frontend is not None,
            "pool": self.pool,
            "zero_mean": self.zero_mean,
            "view": self.view,
            "scaled_head": self.scaled_head,
            "scales": list(self.scales),
        }


@keras.saving.register_keras_serializable(package=_PKG)
class PaperMaskEncoder(layers.Layer):
    """The paper's mask generator: 1x1 convolutions with batch norm and ELU, one sigmoid value.

    ``Conv1x1(64) → BN → ELU → Conv1x1(64) → BN → ELU → Conv1x1(1) → sigmoid``, returned
    as ``2 sigmoid - 1`` in ``[-1, 1]``, so that :class:`HardSigmoidQuantizer`'s
    thresholds ``-1 + 2 i / k`` are the paper's offsets ``i / k`` on the sigmoid value.
    Every pixel is labelled from its own bands: :attr:`halo` is 0 (context enters through
    the loss only).

    Parameters
    ----------
    filters : sequence of int
        Channels of the hidden 1x1 convolutions.
    **kwargs
        Passed to ``keras.layers.Layer`` (e.g. ``name``).

    Examples
    --------
    >>> import numpy as np
    >>> enc = PaperMaskEncoder()
    >>> enc.halo, tuple(enc(np.zeros((1, 8, 8, 4), "float32")).shape)
    (0, (1, 8, 8, 1))
    """

    halo = 0
    outputs = 1

    def __init__(self, filters: Sequence[int] = (64, 64), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters = tuple(_check_positive_int("filters", int(f)) for f in filters)
        self.convs = [layers.Conv2D(f, 1, name=f"conv{i}") for i, f in enumerate(self.filters)]
        self.norms = [layers.BatchNormalization(name=f"bn{i}") for i in range(len(self.filters))]
        self.head = layers.Conv2D(1, 1, name="head")

    def build(self, input_shape: Any) -> None:
        shape = tuple(input_shape)
        for conv, norm in zip(self.convs, self.norms):
            conv.build(shape)
            shape = (*shape[:-1], conv.filters)
            norm.build(shape)
        self.head.build(shape)

    def call(self, x: Any, training: bool = False) -> Any:
        for conv, norm in zip(self.convs, self.norms):
            x = ops.elu(norm(conv(x), training=training))
        return 2.0 * ops.sigmoid(self.head(x)) - 1.0

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*tuple(input_shape)[:-1], 1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filters": list(self.filters)}


class _Quantizer(layers.Layer):
    """Base of the quantizers: exactly one-hot masks forward, the gradient of :meth:`soft` backward."""

    k: int

    def soft(self, z: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def labels(self, z: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def call(self, z: Any) -> Any:
        soft = self.soft(z)
        hard = ops.one_hot(self.labels(z), self.k, dtype=soft.dtype)
        return soft + ops.stop_gradient(hard - soft)


@keras.saving.register_keras_serializable(package=_PKG)
class StraightThroughQuantizer(_Quantizer):
    """k logits per pixel → one-hot masks; gradients of a tempered softmax.

    Forward: exactly binary masks, one per class, exactly one on per pixel.
    Backward: the gradient of ``softmax(logits / temperature)`` (straight-through).

    Parameters
    ----------
    k : int
        Number of classes (>= 2).
    temperature : float
        Softmax temperature of the backward pass.
    **kwargs
        Passed to ``keras.layers.Layer`` (e.g. ``name``).

    Raises
    ------
    ValueError
        If ``k < 2`` or ``temperature <= 0``.

    Examples
    --------
    >>> import numpy as np
    >>> q = StraightThroughQuantizer(3)
    >>> np.asarray(q(np.array([[0.1, 2.0, -1.0]], "float32"))).tolist()
    [[0.0, 1.0, 0.0]]
    """

    def __init__(self, k: int, temperature: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.k = _check_positive_int("k", k, 2)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}.")
        self.temperature = float(temperature)

    @property
    def encoder_outputs(self) -> int:
        return self.k

    def soft(self, z: Any) -> Any:
        """Differentiable class probabilities (used for gradients and usage terms)."""
        return ops.softmax(z / self.temperature, axis=-1)

    def labels(self, z: Any) -> Any:
        """Class index of each pixel (int32)."""
        return ops.cast(ops.argmax(z, axis=-1), "int32")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k, "temperature": self.temperature}


@keras.saving.register_keras_serializable(package=_PKG)
class HardSigmoidQuantizer(_Quantizer):
    """The paper's quantizer: one value per pixel, cut into k intervals by hard sigmoids.

    With thresholds ``t_1 < ... < t_{k-1}`` spread over ``[-1, 1]`` and
    ``s_i = hard_sigmoid(slope * (v - t_i))``, the masks are
    ``m_0 = 1 - s_1``, ``m_i = s_i - s_{i+1}``, ``m_{k-1} = s_{k-1}``: they sum to
    one and are binary except inside narrow ramps around each threshold.
    The forward pass uses the exactly-binary interval indicator; gradients
    flow through the hard-sigmoid staircase.

    Parameters
    ----------
    k : int
        Number of classes (>= 2).
    slope : float
        Slope of each hard sigmoid: larger is closer to a step, with narrower ramps.
    **kwargs
        Passed to ``keras.layers.Layer`` (e.g. ``name``).

    Raises
    ------
    ValueError
        If ``k < 2`` or ``slope <= 0``.

    Examples
    --------
    >>> import numpy as np
    >>> q = HardSigmoidQuantizer(4)
    >>> np.asarray(q.labels(np.array([[-0.9], [-0.2], [0.2], [0.9]], "float32"))).tolist()
    [0, 1, 2, 3]
    """

    def __init__(self, k: int, slope: float = 20.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.k = _check_positive_int("k", k, 2)
        if not slope > 0:
            raise ValueError(f"slope must be > 0, got {slope!r}.")
        self.slope = float(slope)

    @property
    def encoder_outputs(self) -> int:
        return 1

    def _thresholds(self) -> Any:
        k = self.k
        return ops.convert_to_tensor([-1.0 + 2.0 * (i + 1) / k for i in range(k - 1)], dtype="float32")

    def soft(self, z: Any) -> Any:
        z = ops.convert_to_tensor(z)
        s = ops.hard_sigmoid(self.slope * (z - self._thresholds()))  # (..., k-1)
        ones = ops.ones_like(z)
        upper = ops.concatenate([ones, s], axis=-1)
        lower = ops.concatenate([s, ops.zeros_like(z)], axis=-1)
        return upper - lower

    def labels(self, z: Any) -> Any:
        above = ops.greater(ops.convert_to_tensor(z), self._thresholds())
        return ops.cast(ops.sum(ops.cast(above, "int32"), axis=-1), "int32")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k, "slope": self.slope}


def make_quantizer(kind: str, k: int) -> StraightThroughQuantizer | HardSigmoidQuantizer:
    """Build the quantizer named ``kind`` ("straight_through" or "hard_sigmoid").

    Parameters
    ----------
    kind : {"straight_through", "hard_sigmoid"}
        Which quantizer.
    k : int
        Number of classes.

    Returns
    -------
    StraightThroughQuantizer or HardSigmoidQuantizer

    Raises
    ------
    ValueError
        For any other ``kind``.

    Examples
    --------
    >>> make_quantizer("hard_sigmoid", 5).encoder_outputs
    1
    """
    if kind == "straight_through":
        return StraightThroughQuantizer(k, name="quantizer")
    if kind == "hard_sigmoid":
        return HardSigmoidQuantizer(k, name="quantizer")
    raise ValueError(f"quantizer must be 'straight_through' or 'hard_sigmoid', got {kind!r}.")


@keras.saving.register_keras_serializable(package=_PKG)
class TextureBank(layers.Layer):
    """k independent small CNNs, each turning its own noise into a texture.

    Each generator is a separable CNN: a per-generator 1x1 mixing (``ops.einsum``
    over a ``(k, in, out)`` kernel, so no weights are shared between textures),
    then a depthwise dilated 3x3 convolution and a ReLU, repeated; a final 1x1
    maps to the bands. This runs as a few large standard ops on every backend
    (grouped convolutions are very slow on TensorFlow's CPU kernels). Dilations
    give each texture structure up to ``1 + 2 * sum(dilations)`` pixels across.

    Parameters
    ----------
    k : int
        Number of textures.
    bands : int
        Bands of each texture (as many as the image).
    filters : int
        Hidden channels per texture.
    noise : int
        Noise channels per texture.
    dilations : sequence of int
        Dilation of each hidden depthwise 3x3 convolution.
    **kwargs
        Passed to ``keras.layers.Layer`` (e.g. ``name``).

    Examples
    --------
    >>> import numpy as np
    >>> bank = TextureBank(k=3, bands=4)
    >>> tuple(bank(np.random.default_rng(0).normal(size=(1, 16, 16, 12)).astype("float32")).shape)
    (1, 16, 16, 3, 4)
    """

    def __init__(
        self,
        k: int,
        bands: int,
        filters: int = 8,
        noise: int = 4,
        dilations: Sequence[int] = (1, 2, 4),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.k = _check_positive_int("k", k, 2)
        self.bands = _check_positive_int("bands", bands)
        self.filters = _check_positive_int("filters", filters)
        self.noise = _check_positive_int("noise", noise)
        self.dilations = tuple(int(d) for d in dilations)
        self.spatial = [
            layers.DepthwiseConv2D(3, padding="same", dilation_rate=d, name=f"spatial{i}")
            for i, d in enumerate(self.dilations)
        ]

    def build(self, noise_shape: Any) -> None:
        k, f = self.k, self.filters
        sizes = [self.noise] + [f] * len(self.dilations)
        self.mix_kernels = []
        self.mix_biases = []
        for i, n_in in enumerate(sizes):
            n_out = self.bands if i == len(self.dilations) else f
            self.mix_kernels.append(
                self.add_weight(shape=(k, n_in, n_out), initializer="glorot_uniform", name=f"mix{i}_kernel")
            )
            self.mix_biases.append(self.add_weight(shape=(k, n_out), initializer="zeros", name=f"mix{i}_bias"))
        shape = (*tuple(noise_shape)[:-1], k * f)
        for conv in self.spatial:
            conv.build(shape)

    def _mix(self, x: Any, i: int) -> Any:
        shape = ops.shape(x)
        g = ops.reshape(x, (shape[0], shape[1], shape[2], self.k, -1))
        return ops.einsum("bhwgi,gio->bhwgo", g, self.mix_kernels[i]) + self.mix_biases[i]

    def call(self, noise: Any) -> Any:
        """Map noise ``(B, H, W, k * noise)`` to textures ``(B, H, W, k, bands)``."""
        x = noise
        for i, conv in enumerate(self.spatial):
            y = self._mix(x, i)
            shape = ops.shape(y)
            x = ops.relu(conv(ops.reshape(y, (shape[0], shape[1], shape[2], self.k * self.filters))))
        return self._mix(x, len(self.spatial))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "k": self.k,
            "bands": self.bands,
            "filters": self.filters,
            "noise": self.noise,
            "dilations": list(self.dilations),
        }
