"""Importing the package and starting the command stay cheap: no Keras, no TensorFlow, one version."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import xr_ktextures as xk

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("keras", "tensorflow", "jax", "torch")


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **env}
    environ.pop("TF_CPP_MIN_LOG_LEVEL", None)  # a user's setting (or JAX's, set when imported here) would win
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=120)


def test_import_registers_both_accessors_without_importing_a_deep_learning_framework() -> None:
    done = _python(
        "import sys, numpy as np, xarray as xr, xr_ktextures\n"
        "da = xr.DataArray(np.zeros((1, 2, 2)), dims=('band', 'y', 'x'))\n"
        "print(type(da.ktex).__name__, type(da.to_dataset(dim='band').ktex).__name__)\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["KTexAccessor KTexDatasetAccessor", "[]"]
    assert done.stderr == ""  # and so no TensorFlow log lines


def test_the_lazy_names_resolve_to_the_model_module() -> None:
    from xr_ktextures import _nodata, model

    assert xk.KTextures is model.KTextures and xk.NODATA == _nodata.NODATA == 255
    assert {"KTextures", "NODATA", "fit", "MaskOptions"} <= set(dir(xk))


def test_api_plot_and_options_import_without_keras() -> None:
    done = _python(
        "import sys\nimport xr_ktextures.api, xr_ktextures.plot, xr_ktextures.options, xr_ktextures.devices\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_model_modules_import_without_xarray_dask_or_rioxarray() -> None:
    # the package's __init__ registers the xarray accessors: stand in for it, so that only the
    # model modules' own imports run, with xarray, dask and rioxarray blocked
    code = (
        "import sys, types\n"
        "for name in ('xarray', 'rioxarray', 'dask', 'dask.array'):\n    sys.modules[name] = None\n"
        f"pkg = types.ModuleType('xr_ktextures'); pkg.__path__ = [{str(ROOT / 'xr_ktextures')!r}]\n"
        "pkg.__version__ = 'test'; sys.modules['xr_ktextures'] = pkg\n"
        "import xr_ktextures.model, xr_ktextures.network, xr_ktextures.tiles\n"
        "print(xr_ktextures.model.KTextures.__name__)"
    )
    done = _python(code)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("KTextures")


def test_help_and_version_do_not_load_tensorflow() -> None:
    code = (
        "import sys\nfrom xr_ktextures.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    print('exit', e.code)\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    for flag in ("--help", "--version"):
        done = subprocess.run([sys.executable, "-c", code, flag], capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        assert done.stdout.rstrip().endswith("exit 0\n[]"), done.stdout
        assert done.stderr == ""
    assert f"xr-ktextures {xk.__version__}" in done.stdout


def test_one_version_number_read_by_pyproject_from_the_package() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and 'attr = "xr_ktextures.__version__"' in pyproject
    assert re.fullmatch(r"\d+\.\d+\.\d+", xk.__version__)
    changelog = (ROOT / "docs" / "changelog.md").read_text()
    assert re.search(r"^## (\S+)", changelog, re.M).group(1) == xk.__version__  # the current section


def test_the_command_imports_the_backend_without_tensorflow_s_start_up_log() -> None:
    done = _python(
        "import os\nfrom xr_ktextures._quiet import import_backend_quietly\nimport_backend_quietly()\n"
        "import keras\nprint(keras.backend.backend(), os.environ['TF_CPP_MIN_LOG_LEVEL'])"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [os.environ.get("KERAS_BACKEND", "tensorflow"), "2"]
    assert done.stderr == ""  # no "oneDNN custom operations", no absl pre-init warning


def test_main_quiets_the_backend_before_running_a_command(monkeypatch, tmp_path) -> None:
    from xr_ktextures import _quiet, cli

    calls = []
    monkeypatch.setattr(_quiet, "import_backend_quietly", lambda: calls.append("quiet"))
    assert cli.main(["segment", str(tmp_path / "missing.tif"), str(tmp_path / "o.tif"), "-k", "2"]) == 2
    assert calls == ["quiet"]


def test_every_third_party_import_is_a_declared_dependency() -> None:
    import ast
    from importlib.metadata import packages_distributions

    import pytest

    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(reqs: list[str]) -> set[str]:
        return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in reqs}

    required = names(project["dependencies"])
    anywhere = required.union(*(names(r) for r in project["optional-dependencies"].values()))
    dists = packages_distributions()
    missing = []
    for path in sorted((ROOT / "xr_ktextures").glob("*.py")):
        tree = ast.parse(path.read_text())
        top_level = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                mods = [node.module]
            else:
                continue
            for mod in (m.split(".")[0] for m in mods):
                if mod in sys.stdlib_module_names or mod in ("xr_ktextures", "tqdm"):  # tqdm: used when present
                    continue
                declared = required if id(node) in top_level else anywhere
                if not {d.lower().replace("_", "-") for d in dists.get(mod, [mod])} & declared:
                    missing.append(f"{path.name}: {mod}")
    assert not missing, missing


def test_fit_and_segment_under_jax_do_not_load_tensorflow(tmp_path) -> None:
    # keras.utils.set_random_seed imports TensorFlow whenever it is installed (0.5 GB of RSS);
    # the model seeds through devices.seed_backend instead. Keras' own .keras writer still
    # imports it, so the fit and the save run in one process, the load and segment in another.
    import pytest

    pytest.importorskip("jax")
    setup = (
        "import sys, numpy as np, xarray as xr, dask.array as dsa, xr_ktextures as xk\n"
        "img = np.random.default_rng(3).random((4, 96, 96)).astype('float32')\n"
        "da = xr.DataArray(dsa.from_array(img, chunks=(4, 48, 48)), dims=('band', 'y', 'x'))\n"
    )
    path = str(tmp_path / "m.keras")
    fit = _python(
        setup + "model = xk.fit(da, k=2, steps=2, patch_size=32, verbose=0)\n"
        "print('tensorflow' in sys.modules)\n"
        f"model.save({path!r})",
        KERAS_BACKEND="jax",
    )
    assert fit.returncode == 0, fit.stderr[-2000:]
    assert fit.stdout.split() == ["False"]
    segment = _python(
        setup + f"labels = xk.segment(da, xk.load_model({path!r})).values\n"
        "print(labels.shape, 'tensorflow' in sys.modules)",
        KERAS_BACKEND="jax",
    )
    assert segment.returncode == 0, segment.stderr[-2000:]
    assert segment.stdout.split() == ["(96,", "96)", "False"]
