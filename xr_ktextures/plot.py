"""Plotting helpers for labels: categorical colours and a legend, for notebooks and the CLI."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["plot_labels", "save_figure"]


def _cmap(k: int) -> Any:
    import matplotlib
    from matplotlib.colors import ListedColormap

    base = matplotlib.colormaps["tab20" if k > 10 else "tab10"]
    return ListedColormap([base(i % base.N) for i in range(k)])


def plot_labels(labels: Any, ax: Any = None, *, k: int | None = None, legend: bool = True) -> Any:
    """Show a 2-D label array with one colour per class, nodata transparent, and a legend.

    Parameters
    ----------
    labels : xarray.DataArray or numpy.ndarray
        2-D ``uint8`` labels (select one time step first).
    ax : matplotlib.axes.Axes, optional
        Where to draw (a new figure by default).
    k : int, optional
        Number of classes (default: ``labels.attrs["k"]`` or max label + 1).
    legend : bool
        Draw a legend of the classes.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.

    Raises
    ------
    ValueError
        If ``labels`` is not 2-D.

    Examples
    --------
    >>> import numpy as np
    >>> from xr_ktextures.plot import plot_labels
    >>> ax = plot_labels(np.array([[0, 1], [2, 255]], dtype=np.uint8), k=3)
    >>> len(ax.get_legend().get_texts())
    3
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from .model import NODATA

    values = np.asarray(labels)
    if values.ndim != 2:
        raise ValueError(f"plot_labels needs 2-D labels, got shape {values.shape}; select one time step first.")
    if k is None:
        k = int(getattr(labels, "attrs", {}).get("k", 0)) or int(values[values != NODATA].max(initial=0)) + 1
    if ax is None:
        _, ax = plt.subplots()
    masked = np.ma.masked_equal(values, NODATA)
    cmap = _cmap(k)
    ax.imshow(masked, cmap=cmap, vmin=-0.5, vmax=k - 0.5, interpolation="nearest")
    ax.set_axis_off()
    if legend:
        handles = [Patch(color=cmap(i), label=f"class {i}") for i in range(k)]
        ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize="small")
    return ax


def _rgb(da: Any, stretch: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, Any]:
    """First three bands as an RGB float image, stretched per band at the 2-98 % percentiles."""
    a = np.asarray(da.isel(band=[0, 1, 2]).transpose("y", "x", "band"), dtype=np.float32)
    if stretch is None:
        stretch = (np.nanpercentile(a, 2, axis=(0, 1)), np.nanpercentile(a, 98, axis=(0, 1)))
    lo, hi = stretch
    return np.clip((a - lo) / np.maximum(hi - lo, 1e-6), 0, 1), stretch


def save_figure(image: Any, labels: Any, simulated: Any, path: str) -> None:
    """Save a three-panel PNG: image (first three bands), labels with legend, simulated image.

    Parameters
    ----------
    image : xarray.DataArray
        ``(band, y, x)`` image; its first three bands are shown as RGB.
    labels : xarray.DataArray
        2-D labels of it.
    simulated : xarray.DataArray
        The simulated image, shown with the image's colour stretch.
    path : str
        Where to write the PNG.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np, xarray as xr
    >>> img = xr.DataArray(np.random.default_rng(0).random((3, 8, 8)), dims=("band", "y", "x"))
    >>> lab = xr.DataArray(np.zeros((8, 8), np.uint8), dims=("y", "x"), attrs={"k": 2})
    >>> path = os.path.join(tempfile.mkdtemp(), "fig.png")
    >>> save_figure(img, lab, img, path); os.path.getsize(path) > 0
    True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), constrained_layout=True)
    rgb, stretch = _rgb(image)
    axes[0].imshow(rgb)
    axes[0].set_title("image (bands 1-3)")
    axes[0].set_axis_off()
    plot_labels(labels, axes[1])
    axes[1].set_title(f"k-textures labels (k={labels.attrs.get('k')})")
    axes[2].imshow(_rgb(simulated, stretch)[0])
    axes[2].set_title("simulated image (class textures)")
    axes[2].set_axis_off()
    fig.savefig(path, dpi=90, format="png")
    plt.close(fig)
