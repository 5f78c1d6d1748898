"""The plotting helper: one colour per class, nodata transparent, a legend entry per class."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import xarray as xr

from xr_ktextures import NODATA
from xr_ktextures.plot import plot_labels


def test_plot_labels_draws_k_classes_with_a_legend_and_masks_nodata() -> None:
    values = np.array([[0, 1, 2], [NODATA, 1, 0]], dtype=np.uint8)
    labels = xr.DataArray(values, dims=("y", "x"), attrs={"k": 4})
    ax = plot_labels(labels)
    image = ax.get_images()[0]
    data = image.get_array()
    assert data.mask[1, 0] and not data.mask[0, 0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [f"class {i}" for i in range(4)]
    colours = image.cmap(image.norm(np.arange(4)))
    assert len({tuple(c) for c in colours}) == 4  # one distinct colour per class


def test_plot_labels_refuses_a_time_series() -> None:
    with pytest.raises(ValueError, match="select one time step"):
        plot_labels(np.zeros((2, 3, 3), np.uint8))
