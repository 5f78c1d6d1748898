"""The mask branch of the default architecture, written with ``keras.ops`` only.

* :class:`MaskEncoder` – a dilated CNN read through a pooled hypercolumn by a 1x1 head,
  with an exact context radius; each part reports its cost per pixel
  (:meth:`MaskEncoder.flops_per_pixel`, :meth:`MaskEncoder.bytes_per_pixel`), which the
  inference engine and the benchmarks read.
* :class:`TextureFrontEnd` – an optional fixed Gabor-energy first stage (an ablation).

The paper's 1x1 mask CNN is :mod:`xr_ktextures.paper`, the quantizers
:mod:`xr_ktextures.quantizers`, the texture branch and the band scaling
:mod:`xr_ktextures.textures`.
Nothing here knows about xarray or Dask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import layers, ops

from ._errors import InputError
from ._gabor import convolution_macs, gabor_energy, gabor_kernels
from ._validate import check_int
from .options import VIEWS

__all__ = [
    "MaskEncoder",
    "TextureFrontEnd",
    "ZeroMeanGlorotUniform",
    "box_mean",
]

_PKG = "xr_ktextures"


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
        # each pass as a pool over (w, 1) with the other axis folded into the channels: the
        # same sums in the same order (bit-identical), over contiguous memory. TensorFlow's
        # CPU pooling is slow across a row of a few channels (a (1, 41) pool of 6 channels
        # on 1080^2: 690 ms; transposed, pooled down the columns and transposed back: 60 ms)
        cols = ops.average_pool(ops.reshape(x, (-1, h, 1, wd * c)), (w, 1), 1, padding="same")
        rows = ops.transpose(ops.reshape(cols, (-1, h, wd, c)), (0, 2, 1, 3))
        rows = ops.average_pool(ops.reshape(rows, (-1, wd, 1, h * c)), (w, 1), 1, padding="same")
        return ops.transpose(ops.reshape(rows, (-1, wd, h, c)), (0, 2, 1, 3))
    cols = ops.average_pool(x, (w, 1), 1, padding="same")
    return ops.average_pool(cols, (1, w), 1, padding="same")


def _phase_split(x: Any, s: int) -> Any:
    """``(N, H, W, C)`` to ``(N s s, H / s, W / s, C)``: the ``s x s`` phases of each map, phase-major."""
    _, h, w, c = x.shape
    x = ops.reshape(x, (-1, h // s, s, w // s, s, c))
    return ops.reshape(ops.transpose(x, (0, 2, 4, 1, 3, 5)), (-1, h // s, w // s, c))


def _phase_merge(x: Any, s: int) -> Any:
    """The inverse of :func:`_phase_split`."""
    _, h, w, c = x.shape
    x = ops.reshape(x, (-1, s, s, h, w, c))
    return ops.reshape(ops.transpose(x, (0, 3, 1, 4, 2, 5)), (-1, h * s, w * s, c))


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
        self.orientations = check_int("orientations", orientations, 1)
        self.pool = check_int("pool", pool, 0)
        self._kernel = gabor_kernels(7, 0.25, self.orientations)

    @property
    def radius(self) -> int:
        """Context radius of the front end in pixels."""
        return 3 * max(self.dilations) + self.pool

    def channels(self, bands: int) -> int:
        return len(self.dilations) * self.orientations + 2 * bands

    def flops_per_pixel(self, bands: int) -> float:
        """Operations per pixel of :meth:`call` on ``bands`` bands (multiply-add = 2).

        The band mean; per dilation the even/odd Gabor convolutions (their row and column
        passes where separable), their squares, the
        pair sums and ``log1p``; the local mean and std (square, difference, root); the
        separable window mean of every output channel (one addition per window pixel and pass).
        """
        pairs = 2 * self.orientations
        gabor = len(self.dilations) * (2 * convolution_macs(self._kernel) + 3 * pairs)
        pool = 2 * (2 * self.pool + 1) * self.channels(bands)
        return float(bands + gabor + bands + pool + 5 * bands)

    def _box(self, x: Any) -> Any:
        return box_mean(x, self.pool)

    def energy(self, grey: Any, dilation: int) -> Any:
        """``log1p(even**2 + odd**2)`` of the band-mean image per orientation, before pooling."""
        return ops.log1p(gabor_energy(grey, self._kernel, self.orientations, dilation))

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
    InputError
        If ``outputs`` or ``filters`` is not a positive integer, ``dilations`` is empty
        or ``pool`` is negative.

    Examples
    --------
    >>> import numpy as np
    >>> enc = MaskEncoder(outputs=3, filters=8, dilations=(1, 2), pool=0)
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
        dilations: Sequence[int] = (1, 2, 4),
        frontend: bool = False,
        pool: int = 20,
        zero_mean: bool = True,
        view: str = "both",
        scaled_head: bool = True,
        scales: Sequence[int] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.outputs = check_int("outputs", outputs, 1)
        self.scales = tuple(check_int("scales", r, 0) for r in scales)
        if self.scales:
            pool = max(self.scales)
        self.pool = check_int("pool", pool, 0)
        self.zero_mean = bool(zero_mean)
        if view not in VIEWS:
            raise InputError(f"view must be one of {VIEWS}, got {view!r}.")
        self.view = view
        self.scaled_head = bool(scaled_head)
        self.filters = check_int("filters", filters, 1)
        dilations = tuple(int(d) for d in dilations)
        if not dilations or any(d < 1 for d in dilations):
            raise InputError(f"dilations must be a non-empty sequence of integers >= 1, got {dilations!r}.")
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

    def phase_splits(self, shape: Any) -> list[int] | None:
        """Phase split before each convolution for :meth:`call` with ``phased=True``, or None.

        A 3x3 convolution dilated by ``d`` ("same" zero padding) is, on each of the ``d x
        d`` phases of the map (the pixels ``(d i + p, d j + q)``), an undilated one, where
        the map's sides are multiples of ``d``. With dilations that each divide the next
        (1, 2, 4), the map is split once more before each layer (by 2, then 2 again) and
        every layer runs undilated. None where that does not hold (unknown or indivisible
        sides, dilations that do not nest, no dilation at all).

        Parameters
        ----------
        shape : tuple
            ``(batch, height, width, channels)`` of the input (``None`` where unknown).

        Returns
        -------
        list of int or None
            The split factor before each convolution (1: none), or None.
        """
        h, w = shape[1], shape[2]
        factor, splits = 1, []
        for d in self.dilations:
            if d % factor:
                return None
            splits.append(d // factor)
            factor = d
        if factor == 1 or h is None or w is None or h % factor or w % factor:
            return None
        return splits

    def _logits(self, x: Any, kernel: Any, first: int, splits: Sequence[int]) -> Any:
        """The head's k logits per radius (before its bias and pooling), each map's share computed where it is made.

        ``splits``: the phase split before each convolution (1: none; :meth:`phase_splits`).
        In phase layout a layer runs with its dilation divided by the splits so far
        (undilated for nested dilations). Hand-written because the backends' dilated
        convolutions reshuffle the map for every layer (TensorFlow: space-to-batch,
        convolution, batch-to-space, 1.7x the undilated time on a CPU, ``docs/scaling.md``);
        here each map is split once, the share of the logits of the maps made in one layout
        is computed there, in one 1x1 product over those maps side by side (a 1x1
        convolution commutes with the split), and only the logits are merged back: the same
        result up to the order of float additions.
        """
        # the maps made in each layout; they are made in the order of the head kernel's input
        # rows, so each layout's maps read one contiguous block of rows, from lows[layout]
        maps: list[list[Any]] = [[]]
        start = 0 if self.view != "texture" else first
        lows = [start]
        if self.view != "texture":
            maps[0].append(x)
            start = first
        if self.view != "colour":
            factor = 1
            for conv, s in zip(self.convs, splits):
                if s > 1:
                    x = _phase_split(x, s)
                    factor *= s
                    maps.append([])
                    lows.append(start)
                if factor == 1:
                    x = conv(x)
                else:
                    y = ops.conv(x, conv.kernel, padding="same", dilation_rate=int(conv.dilation_rate[0]) // factor)
                    x = conv.activation(y + conv.bias if conv.use_bias else y)
                maps[-1].append(x)
                start += self.filters
        merges = [s for s in splits if s > 1]
        highs = [*lows[1:], start]
        acc = None
        for depth in range(len(maps) - 1, -1, -1):
            # one 1x1 product per layout over its maps side by side: the head's shares summed
            # inside the product. Not a chain of adds (TensorFlow's graph optimiser once rewrote
            # such a chain into an accumulator that failed when two threads ran one graph at
            # once), nor a stack and a sum of the shares (two more passes over the logits per
            # layout: a 1080² tile's logits took 2.25 s that way, 1.67 s this way, docs/scaling.md)
            if maps[depth]:  # (empty for the input's layout of a texture view split at once)
                m = maps[depth][0] if len(maps[depth]) == 1 else ops.concatenate(maps[depth], axis=-1)
                y = ops.conv(m, kernel[:, :, lows[depth] : highs[depth]], padding="valid")
                acc = y if acc is None else y + acc
            if depth:
                acc = _phase_merge(acc, merges[depth - 1])
        return acc

    def call(self, x: Any, phased: bool = False) -> Any:
        """The k logits (per radius, pooled and summed, for the multi-scale head).

        ``phased=True`` (the label engine's graph) runs dilated convolutions in phase
        layout where :meth:`phase_splits` allows; training uses the dilated layers.
        """
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
        splits = self.phase_splits(x.shape) if phased and self.view != "colour" else None
        logits = self._logits(x, kernel, first, splits or [1] * len(self.convs)) + self.head.bias
        if not self.scales:
            return box_mean(logits, self.pool)
        # multi-scale head: the k logits of scale s read the hypercolumn averaged over radius
        # scales[s]; pooling the k outputs per scale is the same linear map, far cheaper
        k = self.outputs
        return ops.sum(ops.stack([box_mean(logits[..., i * k : (i + 1) * k], r) for i, r in enumerate(self.scales)]), 0)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*tuple(input_shape)[:-1], self.outputs)

    def flops_per_pixel(self, bands: int) -> dict[str, float]:
        """Operations per output pixel of :meth:`call`, by part (multiply-add = 2).

        Counted from the layers as configured: the front end (if any); each convolution the
        view runs (its kernel's multiply-adds, bias and ReLU); the head over the channels
        the view reads (none of the hidden maps for ``"colour"``); the separable window mean
        of the k outputs (one addition per window pixel and pass).

        Parameters
        ----------
        bands : int
            Channels of the input.

        Returns
        -------
        dict
            FLOPs per pixel keyed ``"frontend"``, ``"conv0"``, ..., ``"head"``, ``"pool"``.
        """
        out: dict[str, float] = {}
        cin = bands
        if self.frontend is not None:
            out["frontend"] = self.frontend.flops_per_pixel(bands)
            cin = self.frontend.channels(bands)
        first = cin
        for i, conv in enumerate(self.convs if self.reads_hidden else []):
            taps = int(conv.kernel_size[0] * conv.kernel_size[1])
            out[f"conv{i}"] = float(2 * taps * cin * conv.filters + 2 * conv.filters)  # MACs, bias, ReLU
            cin = conv.filters
        if self.pool:
            hidden = self.filters * len(self.convs) if self.reads_hidden else 0
            read = (first if self.view != "texture" else 0) + hidden
            radii = self.scales or (self.pool,)  # a multi-scale head: k logits per radius
            out["head"] = float(len(radii) * (2 * read * self.outputs + 2 * self.outputs))
            # (w, 1) then (1, w) means of each radius' k logits, and their sum
            out["pool"] = float(sum(2 * (2 * r + 1) * self.outputs for r in radii) + (len(radii) - 1) * self.outputs)
        else:
            out["head"] = float(2 * cin * self.outputs + 2 * self.outputs)
        return out

    def bytes_per_pixel(self, bands: int) -> int:
        """Generous estimate of the peak working memory per input pixel of the label graph.

        Input, scaled input, the front end's parts and pooled stack, two live hidden maps and
        the head; with a pooled hypercolumn also each map's share of the logits, their
        stacked copy, the sum and the window mean's two passes. float32.

        Parameters
        ----------
        bands : int
            Channels of the input.

        Returns
        -------
        int
            Bytes per input pixel.
        """
        first = self.frontend.channels(bands) if self.frontend is not None else bands
        shares = 2 * (len(self.convs) + 1) + 3 if self.pool else 2
        # a multi-scale head has k logits per radius, each pooled, then their sum
        per_scale = max(len(self.scales), 1)
        return 4 * (
            3 * bands + 3 * first + 4 * self.filters + (shares + 2 * bool(self.scales)) * self.outputs * per_scale + 4
        )

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
