"""The ``.ktex`` accessors of DataArrays and Datasets: a thin layer over :mod:`xr_ktextures.api`.

Registering them imports neither Keras nor its backend; the functions they forward to
do, when first called.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from . import api
from .geo import dataset_to_bands, find_nodata

if TYPE_CHECKING:
    from .model import KTextures

__all__ = ["KTexAccessor", "KTexDatasetAccessor"]


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
    >>> rng = np.random.default_rng(0)
    >>> values = rng.random((4, 48, 48), dtype=np.float32)
    >>> da = xr.DataArray(values, dims=("band", "y", "x"))
    >>> model = da.ktex.fit(k=2, steps=1, patch_size=32, verbose=0)
    >>> da.ktex.segment().shape
    (48, 48)
    """

    def __init__(self, da: xr.DataArray) -> None:
        self._da = da
        self.model: KTextures | None = None

    def fit(self, k: int = 6, **kwargs: Any) -> KTextures:
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
        self.model = api.fit(self._da, k, **kwargs)
        return self.model

    def segment(self, model: KTextures | None = None, **kwargs: Any) -> xr.DataArray:
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
        return api.segment(self._da, model if model is not None else self.model, **kwargs)

    def simulate(self, model: KTextures | None = None, **kwargs: Any) -> xr.DataArray:
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
        return api.simulate(self._da, model if model is not None else self.model, **kwargs)


@xr.register_dataset_accessor("ktex")
class KTexDatasetAccessor:
    """``ds.ktex.fit()``, ``ds.ktex.segment()``, ``ds.ktex.simulate()`` on a Dataset of one variable per band.

    That is odc-stac's layout (``odc.stac.load`` returns one variable per band). The
    band variables are stacked along a ``band`` dim, lazily; each variable's declared
    nodata is kept: when all bands declare the same value it is passed on as it is,
    and when they differ each band's nodata pixels become NaN before stacking (in
    float32), so a pixel is nodata wherever any band is. As on DataArrays, ``fit``
    remembers the model on the accessor.

    Parameters
    ----------
    ds : xarray.Dataset
        The Dataset the accessor is attached to (xarray passes it).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> import xr_ktextures  # registers .ktex
    >>> rng = np.random.default_rng(0)
    >>> bands = ["red", "green", "nir"]
    >>> ds = xr.Dataset({b: (("y", "x"), rng.random((48, 48), "float32")) for b in bands})
    >>> model = ds.ktex.fit(k=2, steps=0, patch_size=32, verbose=0, mask={"cluster_init": False})  # a quick toy
    >>> model.band_names
    ['red', 'green', 'nir']
    >>> ds.chunk().ktex.segment(model).dims  # lazy labels: built, not computed
    ('y', 'x')
    """

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds
        self.model: KTextures | None = None

    def _bands(self, bands: Sequence[Hashable] | None, model: Any, band_dim: Hashable) -> xr.DataArray:
        """The band variables to use (``bands``, else the model's when present, else all), stacked lazily."""
        ds = self._ds
        names = list(bands) if bands is not None else None
        if names is None and model is not None and getattr(model, "band_names", None):
            if set(model.band_names) <= set(map(str, ds.data_vars)):
                names = list(model.band_names)
        if names is not None:
            missing = [n for n in names if n not in ds.data_vars]
            if missing:
                from ._errors import InputError

                raise InputError(
                    f"band variable(s) {missing} not found; the Dataset holds {list(map(str, ds.data_vars))}."
                )
            ds = ds[names]
        nodatas = {n: find_nodata(ds[n]) for n in ds.data_vars}
        if len(set(nodatas.values())) <= 1:
            return dataset_to_bands(ds, band_dim)  # one common nodata (or none): carried over
        masked = {}
        for n, nd in nodatas.items():
            v = ds[n] if nd is None else ds[n].where(ds[n] != nd)
            v = v.astype(np.float32)
            v.attrs = {a: x for a, x in v.attrs.items() if a not in ("nodata", "_FillValue")}
            v.encoding = {a: x for a, x in v.encoding.items() if a not in ("_FillValue", "missing_value")}
            masked[n] = v
        return dataset_to_bands(ds.assign(masked), band_dim)

    def fit(self, k: int = 6, *, bands: Sequence[Hashable] | None = None, **kwargs: Any) -> KTextures:
        """Fit on a sample of chunks and remember the model; see :func:`xr_ktextures.fit`.

        Parameters
        ----------
        k : int
            Number of classes.
        bands : sequence of hashable, optional
            Names of the band variables, in order (default: every data variable).
        **kwargs
            Options of :func:`xr_ktextures.fit`.

        Returns
        -------
        KTextures
            The fitted model (also kept as ``ds.ktex.model``); its ``band_names`` are the
            variable names.
        """
        self.model = api.fit(self._bands(bands, None, kwargs.get("band_dim", "band")), k, **kwargs)
        return self.model

    def segment(
        self, model: KTextures | None = None, *, bands: Sequence[Hashable] | None = None, **kwargs: Any
    ) -> xr.DataArray:
        """Lazy uint8 labels; see :func:`xr_ktextures.segment`.

        Parameters
        ----------
        model : KTextures, optional
            Default: the model fitted through this accessor.
        bands : sequence of hashable, optional
            Names of the band variables (default: the model's band names when the
            Dataset holds them all, else every data variable).
        **kwargs
            Options of :func:`xr_ktextures.segment`.

        Returns
        -------
        xarray.DataArray
            The labels, with the variables' dims (e.g. ``(time, y, x)``) and coords.
        """
        model = model if model is not None else self.model
        return api.segment(self._bands(bands, model, kwargs.get("band_dim", "band")), model, **kwargs)

    def simulate(
        self, model: KTextures | None = None, *, bands: Sequence[Hashable] | None = None, **kwargs: Any
    ) -> xr.Dataset:
        """Lazy simulated image, one variable per band; see :func:`xr_ktextures.simulate`.

        Parameters
        ----------
        model : KTextures, optional
            Default: the model fitted through this accessor.
        bands : sequence of hashable, optional
            As for :meth:`segment`.
        **kwargs
            Options of :func:`xr_ktextures.simulate`.

        Returns
        -------
        xarray.Dataset
            ``float32`` variables named as the band variables, NaN where the input is nodata.
        """
        model = model if model is not None else self.model
        band_dim = kwargs.get("band_dim", "band")
        sim = api.simulate(self._bands(bands, model, band_dim), model, **kwargs)
        out = sim.to_dataset(dim=band_dim)
        for n in out.data_vars:
            out[n].attrs = dict(sim.attrs)
        return out
