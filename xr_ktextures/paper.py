"""The paper's mask branch (Wagner et al. 2022): a 1x1 CNN with batch norm and ELU, one sigmoid value."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import layers, ops

from ._validate import check_int

__all__ = ["PaperMaskEncoder"]

_PKG = "xr_ktextures"


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
        self.filters = tuple(check_int("filters", int(f), 1) for f in filters)
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

    def call(self, x: Any, training: bool = False, phased: bool = False) -> Any:
        """The value in (-1, 1) per pixel; ``phased`` (the label engine's flag) changes nothing: 1x1 convolutions."""
        for conv, norm in zip(self.convs, self.norms):
            x = ops.elu(norm(conv(x), training=training))
        return 2.0 * ops.sigmoid(self.head(x)) - 1.0

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*tuple(input_shape)[:-1], 1)

    def flops_per_pixel(self, bands: int) -> dict[str, float]:
        """Operations per pixel of :meth:`call` on ``bands`` bands, by part (multiply-add = 2).

        Each 1x1 convolution: its kernel's multiply-adds and bias; batch norm at inference
        as one scale and one shift; ELU one. The head: its multiply-adds, bias, the sigmoid
        and ``2 s - 1`` (3).
        """
        out: dict[str, float] = {}
        cin = bands
        for i, conv in enumerate(self.convs):
            out[f"conv{i}"] = float(2 * cin * conv.filters + 4 * conv.filters)
            cin = conv.filters
        out["head"] = float(2 * cin * self.head.filters + 4 * self.head.filters)
        return out

    def bytes_per_pixel(self, bands: int) -> int:
        """Generous estimate of the peak working memory per input pixel of the label graph.

        Input, scaled input, two hidden maps and the head, float32.
        """
        return 4 * (2 * bands + 2 * max(self.filters) + 4)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filters": list(self.filters)}
