"""Progress that reads well in a terminal, in Jupyter and in a log file; Dask's bars work as documented."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr

import xr_ktextures as xk
from xr_ktextures import _progress

from .conftest import make_cube

ROOT = Path(__file__).resolve().parents[1]
CONTROL = ("\x1b", "\b", "\r")


def test_fit_logs_each_stage_and_dask_s_bar_shows_the_sample_compute(caplog, capsys) -> None:
    from dask.diagnostics import ProgressBar

    caplog.set_level(logging.INFO, logger="xr_ktextures")
    with ProgressBar():
        xk.fit(
            make_cube(64, 64).chunk({"y": 32}),
            k=2,
            steps=0,
            patch_size=32,
            n_chunks=1,
            verbose=0,
            mask={"cluster_init": False},
        )
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("xr_ktextures")]
    stages = ["computing a sample", "sampled", "initialising", "done"]
    found = [next((i for i, m in enumerate(messages) if s in m), None) for s in stages]
    assert None not in found and found == sorted(found), messages  # every stage, in order
    assert "100% Completed" in capsys.readouterr().out  # the one compute of fit: the sample


def test_a_fit_logged_to_a_file_has_plain_lines_and_no_control_characters(tmp_path) -> None:
    code = (
        "import numpy as np, xarray as xr, xr_ktextures as xk\n"
        "da = xr.DataArray(np.random.default_rng(0).random((3, 48, 48), dtype=np.float32), dims=('band', 'y', 'x'))\n"
        "xk.fit(da, k=2, steps=2, batch_size=2, patch_size=32, n_chunks=1, mask={'cluster_init': False})\n"
    )
    log = tmp_path / "fit.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as in a fresh shell (JAX sets it when imported here)
    with open(log, "w") as out:  # stdout is a file, as in `python script.py > fit.log`
        done = subprocess.run([sys.executable, "-c", code], stdout=out, stderr=subprocess.PIPE, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert b"absl::InitializeLog" not in done.stderr and b"oneDNN" not in done.stderr  # start-up lines filtered
    text = log.read_text()
    assert not [c for c in CONTROL if c in text], repr(text[-500:])
    lines = text.splitlines()
    assert any(line.startswith("fit: computing a sample") for line in lines), lines
    assert any(line.startswith("training: step 2/2, loss") for line in lines), lines


def test_training_display_keeps_keras_bar_where_it_can_redraw(monkeypatch) -> None:
    monkeypatch.setattr(_progress, "dynamic_display", lambda stream=None: True)
    assert _progress.training_display("auto", 300) == ("auto", [])
    monkeypatch.setattr(_progress, "dynamic_display", lambda stream=None: False)
    keras_verbose, callbacks = _progress.training_display(1, 300)
    assert keras_verbose == 0 and len(callbacks) == 1
    assert _progress.training_display(0, 300) == (0, [])


def test_window_bar_redraws_in_a_terminal_and_writes_tenths_as_lines_elsewhere() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    plain, tty = io.StringIO(), Terminal()
    for stream in (plain, tty):
        with _progress.WindowBar(20, "writing", stream=stream, use_tqdm=False) as bar:
            for _ in range(20):
                bar.update()
    lines = plain.getvalue().splitlines()
    assert lines[0] == "writing: 0/20 windows (0%)" and lines[-1] == "writing: 20/20 windows (100%)"
    assert len(lines) == 11 and not [c for c in CONTROL if c in plain.getvalue()]
    assert tty.getvalue().count("\r") == 21 and tty.getvalue().endswith("(100%)\n")


def test_write_zarr_shows_one_bar_for_the_whole_cube(model, tmp_path, capsys) -> None:
    pytest.importorskip("zarr")
    labels = xk.segment(make_cube(96, 96, times=2).chunk({"time": 1, "y": 32, "x": 32}), model)
    xk.write_zarr(labels, tmp_path / "l.zarr", window=1, progress=True)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    n = 2 * 3 * 3  # windows: 2 dates x 3 x 3 chunks
    assert (
        lines[0] == f"write_zarr labels: 0/{n} windows (0%)"
        and lines[-1] == f"write_zarr labels: {n}/{n} windows (100%)"
    )
    assert all(line.startswith("write_zarr labels: ") for line in lines)  # one bar, no per-window bars
    back = xr.open_zarr(tmp_path / "l.zarr", mask_and_scale=False)["labels"]
    np.testing.assert_array_equal(back.values, labels.values)


def test_dask_and_distributed_progress_bars_cover_a_segment_compute(model, capsys) -> None:
    from dask.diagnostics import ProgressBar

    lazy = xk.segment(make_cube().chunk({"y": 36, "x": 44}), model)
    with ProgressBar():
        expected = lazy.compute()
    assert "100% Completed" in capsys.readouterr().out
    distributed = pytest.importorskip("distributed")
    with (
        dask.config.set({"distributed.worker.daemon": False}),
        distributed.Client(processes=False, dashboard_address=None, n_workers=1, threads_per_worker=2) as client,
    ):
        persisted = lazy.persist()
        distributed.progress(persisted, notebook=False)  # waits, then prints the finished bar
        np.testing.assert_array_equal(persisted.values, expected.values)
        assert client.status == "running"
    assert "100% Completed" in capsys.readouterr().out
