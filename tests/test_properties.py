"""Fuzzed with the cube strategies of ``tests/strategies.py``: seams, nodata and georeferencing."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xr_ktextures as xk

from .strategies import Drawn, cubes

FUZZ = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _numpy(drawn: Drawn):
    return drawn.cube.copy(data=np.asarray(drawn.cube.values))


@FUZZ
@given(drawn=cubes(lazy=st.just(True)))
def test_labels_do_not_depend_on_the_chunking_dtype_order_or_nodata_declaration(model, drawn: Drawn) -> None:
    lazy = xk.segment(drawn.cube, model)
    assert lazy.chunks is not None
    np.testing.assert_array_equal(lazy.values, xk.segment(_numpy(drawn), model).values)


@FUZZ
@given(drawn=cubes())
def test_nodata_pixels_are_255_and_only_they(model, drawn: Drawn) -> None:
    labels = xk.segment(drawn.cube, model).transpose("y", "x").values
    np.testing.assert_array_equal(labels == xk.NODATA, drawn.missing)
    assert labels[~drawn.missing].max(initial=0) < model.k


@FUZZ
@given(drawn=cubes(nodata=st.just("none")))
def test_labels_carry_the_true_grid_whatever_the_coords_direction(model, drawn: Drawn) -> None:
    labels = xk.segment(drawn.cube, model)
    assert labels.rio.crs == drawn.cube.rio.crs
    assert labels.rio.transform().almost_equals(drawn.transform)
    assert labels.rio.nodata == xk.NODATA
    np.testing.assert_array_equal(labels.x.values, drawn.cube.x.values)
    np.testing.assert_array_equal(labels.y.values, drawn.cube.y.values)
