"""The texture branch, and the band scaling that maps its output back to band units.

* :class:`TextureBank` – k independent small CNNs that turn noise into k textures.
* :class:`BandScaler` – per-band standardisation whose statistics live in the model (the
  mask branch reads scaled bands; the simulation is scaled back with it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import layers, ops

from ._validate import check_int

__all__ = ["BLOCK_DIAGONAL_MAX", "BandScaler", "TextureBank"]

_PKG = "xr_ktextures"


@keras.saving.register_keras_serializable(package=_PKG)
class BandScaler(layers.Layer):
    """Standardise each band with a mean and scale stored as (non-trainable) weights.

    The statistics are set once, from the training sample (:meth:`set_statistics`),
    and saved with the model, so every chunk and every later image is scaled alike.

    Parameters
    ----------
    bands : int
        Number of bands (last axis of the input).
    **kwargs
        Passed to ``keras.layers.Layer`` (e.g. ``name``).

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
        self.bands = check_int("bands", bands, 1)
        self.mean = self.add_weight(shape=(bands,), initializer="zeros", trainable=False, name="mean")
        self.scale = self.add_weight(shape=(bands,), initializer="ones", trainable=False, name="scale")

    def set_statistics(self, mean: Any, scale: Any) -> None:
        """Store per-band ``mean`` and ``scale`` (array-likes of length ``bands``; scale > 0)."""
        self.mean.assign(ops.convert_to_tensor([float(v) for v in mean], dtype=self.mean.dtype))
        self.scale.assign(ops.convert_to_tensor([float(v) for v in scale], dtype=self.scale.dtype))

    def call(self, x: Any) -> Any:
        return (x - self.mean) / self.scale

    def flops_per_pixel(self) -> float:
        """A subtraction and a division per band."""
        return float(2 * self.bands)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "bands": self.bands}


BLOCK_DIAGONAL_MAX = 128
"""Widest ``k * channels`` at which :class:`TextureBank` mixes its textures' channels with one
block-diagonal matrix (work grows as its square; wider banks use per-texture products)."""


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
        self.k = check_int("k", k, 2)
        self.bands = check_int("bands", bands, 1)
        self.filters = check_int("filters", filters, 1)
        self.noise = check_int("noise", noise, 1)
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
        kernel = self.mix_kernels[i]
        n_in, n_out = int(kernel.shape[1]), int(kernel.shape[2])
        if self.k * max(n_in, n_out) <= BLOCK_DIAGONAL_MAX:
            # one (k in, k out) block-diagonal matrix product: the same sums (the other
            # blocks are zeros), 2-2.5x faster forward and backward on TensorFlow's CPU
            # kernels than the einsum's per-texture batched products (measured at k = 5, 16)
            eye = ops.eye(self.k, dtype=kernel.dtype)
            full = ops.reshape(
                ops.transpose(eye[:, :, None, None] * kernel[:, None], (0, 2, 1, 3)), (self.k * n_in, self.k * n_out)
            )
            y = ops.matmul(ops.reshape(x, (-1, self.k * n_in)), full)
            return ops.reshape(y, (shape[0], shape[1], shape[2], self.k, n_out)) + self.mix_biases[i]
        g = ops.reshape(x, (shape[0], shape[1], shape[2], self.k, -1))
        return ops.einsum("bhwgi,gio->bhwgo", g, kernel) + self.mix_biases[i]

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
