"""Quantizers: the encoder's output → k binary masks *inside* the model, trainable by gradient descent.

* :class:`StraightThroughQuantizer` – k logits, one-hot forward, softmax gradient (default).
* :class:`HardSigmoidQuantizer` – the paper's one value per pixel cut by k-1 hard sigmoids.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

from ._errors import InputError
from ._validate import check_int

__all__ = ["HardSigmoidQuantizer", "StraightThroughQuantizer", "make_quantizer"]

_PKG = "xr_ktextures"


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
    InputError
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
        self.k = check_int("k", k, 2)
        if not temperature > 0:
            raise InputError(f"temperature must be > 0, got {temperature!r}.")
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
    InputError
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
        self.k = check_int("k", k, 2)
        if not slope > 0:
            raise InputError(f"slope must be > 0, got {slope!r}.")
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
    InputError
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
    raise InputError(f"quantizer must be 'straight_through' or 'hard_sigmoid', got {kind!r}.")
