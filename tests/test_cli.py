"""The xr-ktextures command: demo, fit, segment; clear one-line errors, nothing half-written."""

from __future__ import annotations

import numpy as np
import pytest
import rioxarray

import xr_ktextures as xk
from xr_ktextures.cli import main


def test_demo_writes_labels_simulation_model_and_figure(tmp_path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--steps", "2", "--no-progress"]) == 0
    for name in ("labels.tif", "simulated.tif", "model.keras", "demo.png"):
        assert (out / name).stat().st_size > 0, name
    labels = rioxarray.open_rasterio(out / "labels.tif")
    src = rioxarray.open_rasterio(xk.sample_path())
    assert labels.rio.crs == src.rio.crs and labels.rio.transform() == src.rio.transform()
    assert labels.dtype == np.uint8 and labels.rio.nodata == xk.NODATA
    assert "wrote" in capsys.readouterr().out


def test_the_command_trains_with_fit_s_default_budget(monkeypatch, capsys) -> None:
    import inspect

    from xr_ktextures import api, cli

    calls = []
    monkeypatch.setattr(api, "fit", lambda da, k, **kw: calls.append(kw) or "fitted")
    assert cli._fit(None, 3, None, 0, 0) == "fitted" and "steps" not in calls[-1]  # fit's own default
    assert cli._fit(None, 3, 7, 0, 0) == "fitted" and calls[-1]["steps"] == 7
    default = inspect.signature(xk.fit).parameters["steps"].default
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    assert f"default: fit's, {default}" in capsys.readouterr().out


def test_fit_then_segment_with_the_saved_model(tmp_path) -> None:
    model = tmp_path / "m.keras"
    assert main(["fit", xk.sample_path(), str(model), "-k", "3", "--steps", "1", "--no-progress"]) == 0
    out = tmp_path / "labels.tif"
    assert main(["segment", xk.sample_path(), str(out), "--model", str(model)]) == 0
    labels = rioxarray.open_rasterio(out).values
    assert labels.shape == (1, 403, 515) and labels.max() < 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["segment", "nope.tif", "OUT", "-k", "3"], "no such file: nope.tif"),
        (["segment", "SAMPLE", "OUT"], "give -k K"),
        (["segment", "SAMPLE", "OUT", "--model", "missing.keras"], "no model file"),
        (["fit", "SAMPLE", "model.h5", "-k", "3"], "must end in .keras"),
        (["segment", "NOTRASTER", "OUT", "-k", "3"], "cannot read"),
    ],
)
def test_bad_paths_give_one_clear_line_and_write_nothing(tmp_path, capsys, argv, message) -> None:
    bad = tmp_path / "not_a_raster.tif"
    bad.write_text("hello")
    out = tmp_path / "out.tif"
    argv = [{"SAMPLE": xk.sample_path(), "OUT": str(out), "NOTRASTER": str(bad)}.get(a, a) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not_a_raster.tif"]


def test_help_is_available_for_every_command(capsys) -> None:
    expected = {
        (): ["usage: xr-ktextures", "{demo,fit,segment}"],
        ("demo",): ["usage: xr-ktextures demo", "--out"],
        ("fit",): ["usage: xr-ktextures fit", "-k"],
        ("segment",): ["usage: xr-ktextures segment", "--model"],
    }
    for cmd, words in expected.items():
        with pytest.raises(SystemExit) as exc:
            main([*cmd, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out  # this command's help alone
        for word in words:
            assert word in out, (cmd, word, out)


def test_segment_streams_its_geotiff_chunk_by_chunk(tmp_path) -> None:
    """No task holds the whole label image: each chunk is written as it is computed."""
    import dask
    import dask.array as dsa
    import xarray as xr
    from dask.callbacks import Callback

    from xr_ktextures.cli import _write_labels

    sizes: list[int] = []

    class Sizes(Callback):
        def _posttask(self, key, result, dsk, state, worker_id) -> None:
            sizes.append(getattr(result, "nbytes", 0))

    data = dsa.random.default_rng(0).integers(0, 3, (256, 320), chunks=64).astype("uint8")
    labels = xr.DataArray(data, dims=("y", "x"), coords={"y": 1000.0 - np.arange(256), "x": np.arange(320.0)})
    labels = labels.rio.write_crs(32618).rio.write_nodata(xk.NODATA)
    with Sizes(), dask.config.set(scheduler="threads"):
        _write_labels(labels, tmp_path / "l.tif")
    assert sizes and max(sizes) <= 64 * 64  # one chunk at most, never the 256 x 320 image
    back = rioxarray.open_rasterio(tmp_path / "l.tif")
    np.testing.assert_array_equal(back.values[0], labels.values)
    assert back.rio.nodata == xk.NODATA and back.rio.transform() == labels.rio.transform()
