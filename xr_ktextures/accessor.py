"""The ``.ktex`` DataArray accessor: a thin layer over :mod:`xr_ktextures.api`."""

from __future__ import annotations

import xarray as xr

from . import api
from .model import KTextures

__all__ = ["KTexAccessor"]


@xr.register_dataarray_accessor("ktex")
class KTexAccessor:
    """``da.ktex.fit()``, ``da.ktex.segment()``, ``da.ktex.simulate()``.

    ``fit`` returns the model and remembers it on this accessor (xarray keeps one
    accessor per DataArray object), so ``segment()`` right after ``fit()`` on the same
    object needs no argument. ``segment(model=...)`` works on any array.

    Parameters
    ----------
    da : xarray.DataArray
        The array the accessor is attached to (xarray passes it).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> import xr_ktextures  # registers .ktex
    >>> da = xr.DataArray(np.random.default_rng(0).random((4, 48, 48), dtype=np.float32), dims=("band", "y", "x"))
    >>> model = da.ktex.fit(k=2, steps=1, patch_size=32, verbose=0)
    >>> da.ktex.segment().shape
    (48, 48)
    """

    def __init__(self, da: xr.DataArray) -> None:
        self._da = da
        self.model: KTextures | None = None

    def fit(self, k: int = 6, **kwargs: object) -> KTextures:
        """Fit on a sample of chunks and remember the model; see :func:`xr_ktextures.fit`.

        Parameters
        ----------
        k : int
            Number of classes.
        **kwargs
            Options of :func:`xr_ktextures.fit`.

        Returns
        -------
        KTextures
            The fitted model (also kept as ``da.ktex.model``).
        """
        self.model = api.fit(self._da, k, **kwargs)  # type: ignore[arg-type]
        return self.model

    def segment(self, model: KTextures | None = None, **kwargs: object) -> xr.DataArray:
        """Lazy uint8 labels; see :func:`xr_ktextures.segment`.

        Parameters
        ----------
        model : KTextures, optional
            Default: the model fitted through this accessor.
        **kwargs
            Options of :func:`xr_ktextures.segment`.

        Returns
        -------
        xarray.DataArray
            The labels.
        """
        return api.segment(self._da, model if model is not None else self.model, **kwargs)  # type: ignore[arg-type]

    def simulate(self, model: KTextures | None = None, **kwargs: object) -> xr.DataArray:
        """Lazy simulated image; see :func:`xr_ktextures.simulate`.

        Parameters
        ----------
        model : KTextures, optional
            Default: the model fitted through this accessor.
        **kwargs
            Options of :func:`xr_ktextures.simulate`.

        Returns
        -------
        xarray.DataArray
            The simulated image.
        """
        return api.simulate(self._da, model if model is not None else self.model, **kwargs)  # type: ignore[arg-type]
