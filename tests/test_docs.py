"""What the docs promise holds: the user guide's defaults, the Zarr read-back recipe, a clean notebook."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import xr_ktextures as xk

from .conftest import make_cube

ROOT = Path(__file__).resolve().parents[1]


def test_the_user_guide_s_defaults_are_fit_s() -> None:
    guide = (ROOT / "docs" / "user-guide.md").read_text()
    params = inspect.signature(xk.fit).parameters
    rows = re.findall(r"^\| ((?:`\w+`(?:, )?)+) \| ([^|]+) \|", guide, re.M)
    checked = 0
    for names, defaults in rows:
        names = re.findall(r"`(\w+)`", names)
        values = [v.strip().strip("`") for v in defaults.split(",")]
        if len(names) != len(values) or not all(n in params for n in names):
            continue
        for name, value in zip(names, values):
            if params[name].default is None:  # described in words ("all")
                continue
            assert str(params[name].default).strip("'") == value.strip('"'), (name, value)
            checked += 1
    assert checked >= 7  # k, band_dim, n_chunks, patches_per_chunk, patch_size, steps, batch_size, ...


@pytest.mark.parametrize("writer", ["to_zarr", "write_zarr"])
def test_labels_read_back_from_zarr_as_uint8_with_the_documented_recipe(model, tmp_path, writer) -> None:
    pytest.importorskip("zarr")
    cube = make_cube(64, 64)
    cube[:, :5, :7] = np.nan  # a nodata corner
    labels = xk.segment(cube.chunk({"y": 32, "x": 32}), model)
    store = tmp_path / "labels.zarr"
    if writer == "to_zarr":
        labels.to_zarr(store)
    else:
        xk.write_zarr(labels, store)
    back = xr.open_zarr(store, mask_and_scale=False, decode_coords="all")["labels"]  # the user guide's recipe
    assert back.dtype == np.uint8 and (back.values[:5, :7] == xk.NODATA).all()
    np.testing.assert_array_equal(back.values, labels.values)
    assert back.rio.crs == cube.rio.crs and back.rio.transform() == cube.rio.transform()


def test_the_example_notebook_is_stored_without_outputs() -> None:
    # the docs build executes it (myst-nb), so stored outputs could only be stale
    nb = json.loads((ROOT / "examples" / "quickstart.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)


def test_the_docs_build_executes_the_notebook() -> None:
    conf = (ROOT / "docs" / "conf.py").read_text()
    assert re.search(r'^nb_execution_mode = "(force|auto|cache)"', conf, re.M)
    assert re.search(r"^nb_execution_raise_on_error = True", conf, re.M)
