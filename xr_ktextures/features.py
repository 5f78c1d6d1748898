"""Frozen feature extractors for the k-textures loss.

The loss compares deep features of the original and of the simulated image, so the
extractor decides what "same texture" means. Three kinds:

* ``"filterbank"`` (default): an analytically defined, multi-scale Gabor energy
  pyramid on the band mean plus per-band local mean and standard deviation. No weights,
  no download, any band count; phase-invariant, so generated textures can match it.
* ``"vgg16"``: Keras' ImageNet VGG16 up to ``block5_conv3`` on three bands (the paper's
  choice), loaded from the Keras cache or a file you give; never downloaded.
* any ``keras.Model`` (or layer) mapping ``(B, H, W, bands)`` scaled images to
  ``(B, h, w, F)`` features; it is frozen before use.

Every extractor receives images already standardised per band (mean 0, std 1).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras
from keras import layers, ops

from ._errors import WeightsNotFoundError
from ._gabor import gabor_energy, gabor_kernels

__all__ = ["VGG16_WEIGHTS_FILE", "FilterBank", "make_extractor", "vgg16_extractor"]

VGG16_WEIGHTS_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
"""Name of the Keras ImageNet VGG16 (no top) weights file looked for in the Keras cache."""


@keras.saving.register_keras_serializable(package="xr_ktextures")
class FilterBank(layers.Layer):
    """Multi-scale Gabor energies and local colour statistics, on a grid of stride ``stride``.

    Output channels: ``levels * orientations`` texture energies (``log1p`` of the
    pooled even² + odd² response of the band-mean image, at periods 4, 8, 16, ... px)
    followed by each band's local mean and local standard deviation.

    Parameters
    ----------
    levels : int
        Pyramid levels (each halves the resolution, doubling the period).
    orientations : int
        Gabor orientations per level.
    stride : int
        Output stride in pixels; must be a multiple of ``2 ** (levels - 1)``.
        Input height and width must be multiples of it.
    pool : int
        Pooling window, in output cells (``pool * stride`` pixels at full resolution).
    **kwargs
        Passed to ``keras.layers.Layer`` (e.g. ``name``).

    Raises
    ------
    ValueError
        If ``stride`` is not a multiple of ``2 ** (levels - 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> tuple(FilterBank()(np.zeros((1, 64, 64, 4), "float32")).shape)  # 4 levels x 4 orientations + 2 x 4 bands
    (1, 8, 8, 24)
    """

    def __init__(self, levels: int = 4, orientations: int = 4, stride: int = 8, pool: int = 2, **kwargs: Any) -> None:
        super().__init__(trainable=False, **kwargs)
        if stride % (2 ** (levels - 1)):
            raise ValueError(f"stride must be a multiple of 2**(levels-1)={2 ** (levels - 1)}, got {stride}.")
        self.levels, self.orientations, self.stride = int(levels), int(orientations), int(stride)
        self.pool = int(pool)
        self._kernel = gabor_kernels(7, 0.25, self.orientations)

    def call(self, x: Any) -> Any:
        level = ops.mean(x, axis=-1, keepdims=True)
        feats = []
        for lev in range(self.levels):
            if lev:
                level = ops.average_pool(level, 2, 2, padding="valid")
            energy = gabor_energy(level, self._kernel, self.orientations)
            f = self.stride // (2**lev)
            feats.append(ops.log1p(ops.average_pool(energy, self.pool * f, f, padding="same")))
        s = self.stride
        mean = ops.average_pool(x, self.pool * s, s, padding="same")
        sq = ops.average_pool(ops.square(x), self.pool * s, s, padding="same")
        std = ops.sqrt(ops.maximum(sq - ops.square(mean), 0.0) + 1e-4)
        return ops.concatenate([*feats, mean, std], axis=-1)

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.pop("trainable", None)
        return {
            **cfg,
            "levels": self.levels,
            "orientations": self.orientations,
            "stride": self.stride,
            "pool": self.pool,
        }


def _keras_cache_dir() -> Path:
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(base) / "models"


def vgg16_extractor(
    weights: str | os.PathLike[str] | None = None, rgb: tuple[int, int, int] = (0, 1, 2)
) -> keras.Model:
    """VGG16 (ImageNet) up to ``block5_conv3`` on three bands, frozen; never downloads.

    Parameters
    ----------
    weights : path, optional
        The ``*_notop.h5`` weights file. By default the Keras cache
        (``$KERAS_HOME/models`` or ``~/.keras/models``) is searched for
        :data:`VGG16_WEIGHTS_FILE`.
    rgb : tuple of int
        Indices of the red, green and blue bands in the input.

    Returns
    -------
    keras.Model
        A frozen model mapping standardised ``(B, H, W, bands)`` images to
        ``(B, H/16, W/16, 512)`` features.

    Raises
    ------
    WeightsNotFoundError
        If the weights file is not there. Nothing is fetched from the network.

    Examples
    --------
    >>> from xr_ktextures.features import vgg16_extractor
    >>> vgg16_extractor("/nonexistent/vgg16.h5")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    xr_ktextures._errors.WeightsNotFoundError: VGG16 ImageNet weights not found at '/nonexistent/vgg16.h5'...
    """
    path = Path(weights) if weights is not None else _keras_cache_dir() / VGG16_WEIGHTS_FILE
    if not path.is_file():
        raise WeightsNotFoundError(
            f"VGG16 ImageNet weights not found at {str(path)!r}. xr_ktextures never downloads "
            "weights: fetch them once where you have network access (e.g. "
            "`keras.applications.VGG16(include_top=False, weights='imagenet')` caches "
            f"{VGG16_WEIGHTS_FILE}) and pass loss=LossOptions(extractor='vgg16') again, or give the file with "
            "LossOptions(extractor_weights=PATH), or use the default extractor='filterbank'."
        )
    vgg = keras.applications.VGG16(include_top=False, weights=None)
    vgg.load_weights(str(path))
    trunk = keras.Model(vgg.input, vgg.get_layer("block5_conv3").output)
    trunk.trainable = False
    inp = keras.Input((None, None, None))
    idx = list(rgb)
    # Standardised RGB → caffe-style BGR around ImageNet's mean (std of ImageNet pixels ≈ 60).
    bgr = ops.take(inp, [idx[2], idx[1], idx[0]], axis=-1) * 60.0
    return keras.Model(inp, trunk(bgr), name="vgg16_block5_conv3")


def make_extractor(spec: Any, *, bands: int, weights: str | os.PathLike[str] | None = None) -> Any:
    """Resolve an extractor spec (a name or a Keras model/layer) to a frozen callable layer.

    Parameters
    ----------
    spec : {"filterbank", "vgg16"} or keras.layers.Layer
        The extractor.
    bands : int
        Band count of the images it will see.
    weights : path, optional
        VGG16 weights file.

    Returns
    -------
    keras.layers.Layer
        A frozen layer or model.

    Raises
    ------
    ValueError, TypeError
        An unknown name or object; ``"vgg16"`` with fewer than 3 bands.
    WeightsNotFoundError
        ``"vgg16"`` without its weights file.

    Examples
    --------
    >>> make_extractor("filterbank", bands=4).trainable
    False
    """
    if isinstance(spec, str):
        if spec == "filterbank":
            return FilterBank(name="filterbank")
        if spec == "vgg16":
            if bands < 3:
                raise ValueError(f"extractor='vgg16' needs at least 3 bands (RGB), the model has {bands}.")
            return vgg16_extractor(weights)
        raise ValueError(f"extractor must be 'filterbank', 'vgg16' or a keras.Model, got {spec!r}.")
    if isinstance(spec, layers.Layer):
        spec.trainable = False
        return spec
    raise TypeError(
        f"extractor must be 'filterbank', 'vgg16' or a keras.Model/Layer, got an object of type {type(spec).__name__}."
    )
