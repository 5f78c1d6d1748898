"""The package's exception hierarchy: one base class, one subclass per kind of failure.

Examples
--------
>>> import xr_ktextures as xk
>>> issubclass(xk.InputError, xk.KTexturesError) and issubclass(xk.InputError, ValueError)
True
"""

from __future__ import annotations

__all__ = [
    "DeviceUnavailableError",
    "IncompleteStoreError",
    "InputError",
    "KTexturesError",
    "ModelMismatchError",
    "ModelNotFoundError",
    "NotFittedError",
    "WeightsNotFoundError",
]


class KTexturesError(Exception):
    """Base class of every error raised by xr_ktextures."""


class InputError(KTexturesError, ValueError):
    """The data given (dims, dtype, bands, chunks, values) cannot be used as asked."""


class ModelMismatchError(KTexturesError, ValueError):
    """A model was applied to data that does not match what it was fitted on."""


class NotFittedError(KTexturesError, RuntimeError):
    """An operation needs a fitted model and none was given or remembered."""


class WeightsNotFoundError(KTexturesError, FileNotFoundError):
    """Pretrained weights were asked for but are not available offline."""


class DeviceUnavailableError(KTexturesError, RuntimeError):
    """A GPU was asked for but the worker's Keras backend sees none (or not that one)."""


class IncompleteStoreError(KTexturesError, RuntimeError):
    """A Zarr store from an interrupted ``write_zarr`` was opened as if it were finished."""


class ModelNotFoundError(KTexturesError, FileNotFoundError):
    """No saved model file at the path given to ``load_model``."""
