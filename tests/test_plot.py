"""The plotting helper: one colour per class, nodata transparent, coords on the axes, a whole legend."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from xr_ktextures import NODATA
from xr_ktextures.plot import NODATA_LABEL, plot_labels, save_figure

from .conftest import make_cube

plt = pytest.importorskip("matplotlib.pyplot")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _series() -> xr.DataArray:
    cube = make_cube(12, 16, times=3)
    values = (cube.isel(band=0) > 100).astype(np.uint8)
    return values.where(values.x > values.x[2], NODATA).astype(np.uint8).assign_attrs(k=2)


def test_plot_labels_draws_k_classes_with_a_legend_and_masks_nodata() -> None:
    values = np.array([[0, 1, 2], [NODATA, 1, 0]], dtype=np.uint8)
    labels = xr.DataArray(values, dims=("y", "x"), attrs={"k": 4})
    ax = plot_labels(labels)
    image = ax.get_images()[0]
    data = np.ma.masked_invalid(image.get_array())
    assert data.mask[1, 0] and not data.mask[0, 0]  # row 0 on top, as in the array
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [f"class {i}" for i in range(4)]
    colours = image.cmap(image.norm(np.arange(4)))
    assert len({tuple(c) for c in colours}) == 4  # one distinct colour per class
    assert NODATA_LABEL == NODATA


def test_plot_labels_keeps_the_coords_on_the_axes() -> None:
    labels = _series().isel(time=0)
    ax = plot_labels(labels)
    assert ax.get_xlabel().startswith("x") and ax.get_ylabel().startswith("y")
    x0, x1 = sorted(ax.get_xlim())
    assert x0 < float(labels.x.min()) < float(labels.x.max()) < x1  # extent in map units, not pixels
    y_bottom, y_top = ax.get_ylim()
    assert y_bottom < y_top  # north (larger y) up


def test_plot_labels_draws_one_panel_per_date_like_xarray_col() -> None:
    labels = _series()
    grid = plot_labels(labels)
    assert grid.axs.shape == (1, 3)
    titles = [a.get_title() for a in grid.axs.flat]
    assert all(str(np.datetime_as_string(t, unit="D")) in title for t, title in zip(labels.time.values, titles))
    assert plot_labels(labels, col="time", col_wrap=2).axs.shape == (2, 2)
    with pytest.raises(ValueError, match="drop ax="):
        plot_labels(labels, ax=plt.subplots()[1])
    with pytest.raises(ValueError, match="one more dim"):
        plot_labels(labels.expand_dims(run=2))


@pytest.mark.parametrize("panels", [False, True])
def test_the_legend_is_whole_inside_a_saved_figure(tmp_path, panels) -> None:
    labels = _series() if panels else _series().isel(time=0)
    drawn = plot_labels(labels, col_wrap=2) if panels else plot_labels(labels)
    fig = drawn.fig if panels else drawn.figure
    legend = fig.legends[0] if panels else drawn.get_legend()
    fig.savefig(tmp_path / "f.png")  # plain savefig: no bbox_inches="tight" needed
    page = fig.bbox
    for box in [legend.get_window_extent()] + [a.get_tightbbox() for a in fig.axes if a.get_visible()]:
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1


def test_save_figure_explains_the_simulation_and_leaves_pyplot_alone(tmp_path) -> None:
    import matplotlib

    before = (matplotlib.get_backend(), plt.get_fignums())
    img = make_cube(16, 16)
    save_figure(img, (img.isel(band=0) > 100).astype(np.uint8).assign_attrs(k=2), img, str(tmp_path / "f.png"))
    assert (tmp_path / "f.png").stat().st_size > 0
    assert (matplotlib.get_backend(), plt.get_fignums()) == before


def test_the_library_never_switches_the_backend() -> None:
    from pathlib import Path

    import xr_ktextures

    for path in Path(xr_ktextures.__file__).parent.glob("*.py"):
        assert "matplotlib.use(" not in path.read_text(), path.name
