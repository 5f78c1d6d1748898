"""Plotting helpers for labels: categorical colours, a legend, one panel per date.

Built on xarray's own plotting, so the axes keep the coords and a time series
follows xarray's ``col=`` convention (a :class:`xarray.plot.FacetGrid`). Nothing here
chooses a Matplotlib backend: that stays the caller's (a notebook's inline backend, a
script's default).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import xarray as xr

from ._nodata import NODATA as NODATA_LABEL  # numpy only: plotting never loads Keras

__all__ = ["plot_labels", "save_figure"]

SIMULATION_NOTE = (
    "simulated image: each pixel painted with the learned texture of its class "
    "(mask × texture, summed over the k classes) — how much of the image the k classes explain"
)
"""The caption that explains the simulated image on the figures."""


def _cmap(k: int) -> Any:
    import matplotlib
    from matplotlib.colors import ListedColormap

    base = matplotlib.colormaps["tab20" if k > 10 else "tab10"]
    return ListedColormap([base(i % base.N) for i in range(k)])


def _as_dataarray(labels: Any) -> xr.DataArray:
    if isinstance(labels, xr.DataArray):
        return labels
    values = np.asarray(labels)
    dims = ("y", "x") if values.ndim == 2 else (*(f"dim_{i}" for i in range(values.ndim - 2)), "y", "x")
    return xr.DataArray(values, dims=dims)


def _handles(k: int, cmap: Any) -> list[Any]:
    from matplotlib.patches import Patch

    return [Patch(color=cmap(i), label=f"class {i}") for i in range(k)]


def plot_labels(
    labels: Any,
    ax: Any = None,
    *,
    k: int | None = None,
    legend: bool = True,
    col: Hashable | None = None,
    col_wrap: int | None = None,
    **kwargs: Any,
) -> Any:
    """Draw labels with one colour per class, nodata transparent, the coords on the axes, and a legend.

    2-D labels are drawn on one axes; labels with one more dim (e.g. ``(time, y, x)``)
    get one panel per step, as xarray's ``col=``. Call ``.compute()`` first on lazy
    labels you draw more than once.

    Parameters
    ----------
    labels : xarray.DataArray or numpy.ndarray
        ``uint8`` labels, ``(y, x)`` or ``(time, y, x)``.
    ax : matplotlib.axes.Axes, optional
        Where to draw 2-D labels (a new figure by default). Not with panels.
    k : int, optional
        Number of classes (default: ``labels.attrs["k"]`` or max label + 1).
    legend : bool
        Draw a legend of the classes, outside the axes, inside the figure.
    col : hashable, optional
        The dim to draw one panel per step of (default: the one dim besides y and x).
    col_wrap : int, optional
        Panels per row.
    **kwargs
        Passed to :meth:`xarray.DataArray.plot.imshow` (``figsize``, ``aspect``, ``size``, ...).

    Returns
    -------
    matplotlib.axes.Axes or xarray.plot.FacetGrid
        The axes for 2-D labels; the facet grid for panels (``.fig``, ``.axs``).

    Raises
    ------
    ValueError
        If ``labels`` has more than one dim besides y and x, or ``ax`` is given with panels.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from xr_ktextures.plot import plot_labels
    >>> ax = plot_labels(np.array([[0, 1], [2, 255]], dtype=np.uint8), k=3)
    >>> len(ax.get_legend().get_texts())
    3
    >>> zeros = np.zeros((2, 4, 4), np.uint8)
    >>> series = xr.DataArray(zeros, dims=("time", "y", "x"), attrs={"k": 2})
    >>> plot_labels(series).axs.shape  # one panel per date
    (1, 2)
    """
    import matplotlib.pyplot as plt

    da = _as_dataarray(labels)
    if k is None:
        values = np.asarray(da.values)
        k = int(da.attrs.get("k", 0)) or int(values[values != NODATA_LABEL].max(initial=0)) + 1
    cmap = _cmap(k)
    y, x = da.dims[-2], da.dims[-1]
    others = [d for d in da.dims if d not in (y, x)]
    if col is None and len(others) == 1:
        col = others[0]
    if len(others) > 1 or (others and col not in others):
        raise ValueError(
            f"plot_labels draws (y, x) labels, or one panel per step of one more dim; got dims {list(da.dims)}"
            f"{'' if col is None else f' and col={col!r}'}. Select the other steps first, e.g. labels.isel(...)."
        )
    masked = da.where(da != NODATA_LABEL)  # NaN: transparent
    style = dict(cmap=cmap, vmin=-0.5, vmax=k - 0.5, add_colorbar=False, interpolation="nearest")
    # rows run north to south in a raster: with coords, y increases upward; without, row 0 on top
    style["yincrease"] = y in da.coords
    style.update(kwargs)
    if col is None:
        if ax is None:
            _, ax = plt.subplots(layout="constrained")
        masked.plot.imshow(ax=ax, **style)
        _map_ticks(ax)
        if legend:
            ax.legend(
                handles=_handles(k, cmap), loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize="small"
            )
        return ax
    if ax is not None:
        raise ValueError("ax= draws one panel; labels with a time dim draw a grid of panels: drop ax=.")
    grid = masked.plot.imshow(col=col, col_wrap=col_wrap, **style)
    for a in grid.axs.flat:
        _map_ticks(a)
    if legend:
        leg = grid.fig.legend(handles=_handles(k, cmap), loc="center right", frameon=False, fontsize="small")
        _make_room(grid.fig, leg)
    return grid


def _map_ticks(ax: Any) -> None:
    """Whole map coordinates (no "+2.05e6" offset), few enough ticks not to overlap."""
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    for axis in (ax.xaxis, ax.yaxis):
        if isinstance(axis.get_major_formatter(), ScalarFormatter):
            axis.get_major_formatter().set_useOffset(False)
            axis.get_major_formatter().set_scientific(False)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))


def _make_room(fig: Any, legend: Any) -> None:
    """Widen the figure by the legend's width and keep the panels left of it (as xarray's guides), labels inside."""
    renderer = fig.canvas.get_renderer()
    width = legend.get_window_extent(renderer).width / fig.dpi
    total = fig.get_figwidth() + width
    fig.set_figwidth(total)
    fig.subplots_adjust(right=1 - (width / total + 0.02))
    boxes = [b for b in (a.get_tightbbox(renderer) for a in fig.axes if a.get_visible()) if b is not None]
    left = min((b.x0 for b in boxes), default=0.0)  # long map y ticks and the y label
    if left < 0:
        fig.subplots_adjust(left=fig.subplotpars.left + (4 - left) / fig.bbox.width)


def _rgb(da: Any, stretch: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, Any]:
    """First three bands as an RGB float image, stretched per band at the 2-98 % percentiles."""
    a = np.asarray(da.isel(band=[0, 1, 2]).transpose("y", "x", "band"), dtype=np.float32)
    if stretch is None:
        stretch = (np.nanpercentile(a, 2, axis=(0, 1)), np.nanpercentile(a, 98, axis=(0, 1)))
    lo, hi = stretch
    return np.clip((a - lo) / np.maximum(hi - lo, 1e-6), 0, 1), stretch


def save_figure(image: Any, labels: Any, simulated: Any, path: str) -> None:
    """Save a three-panel PNG: image (first three bands), labels with legend, simulated image.

    The figure explains the simulated image in a caption, and is saved with its
    legend whole (``bbox_inches="tight"``). It is drawn on a figure not managed by
    pyplot, so the caller's Matplotlib backend and open figures are left alone.

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
    >>> rgb = np.random.default_rng(0).random((3, 8, 8))
    >>> img = xr.DataArray(rgb, dims=("band", "y", "x"))
    >>> lab = xr.DataArray(np.zeros((8, 8), np.uint8), dims=("y", "x"), attrs={"k": 2})
    >>> path = os.path.join(tempfile.mkdtemp(), "fig.png")
    >>> save_figure(img, lab, img, path); os.path.getsize(path) > 0
    True
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 5), layout="constrained")
    axes = fig.subplots(1, 3)
    rgb, stretch = _rgb(image)
    axes[0].imshow(rgb)
    axes[0].set_title("image (bands 1-3)")
    axes[0].set_axis_off()
    plot_labels(labels, axes[1])
    axes[1].set_title(f"k-textures labels (k={labels.attrs.get('k')})")
    axes[2].imshow(_rgb(simulated, stretch)[0])
    axes[2].set_title("simulated image (class textures)")
    axes[2].set_axis_off()
    fig.supxlabel(SIMULATION_NOTE, fontsize="medium")
    fig.savefig(path, dpi=90, format="png", bbox_inches="tight")
