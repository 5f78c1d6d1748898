"""``xr-ktextures`` command line: ``demo``, ``fit`` and ``segment`` on GeoTIFFs."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]


class CLIError(Exception):
    """A user-facing problem: printed as one line, exit status 2."""


def _open(path: str) -> Any:
    import rioxarray
    import xarray as xr

    p = Path(path)
    if not p.is_file():
        raise CLIError(f"no such file: {path}")
    try:
        da = rioxarray.open_rasterio(p, chunks={"y": 1024, "x": 1024})
    except Exception as err:
        raise CLIError(f"cannot read {path} as a raster: {err}") from err
    if not isinstance(da, xr.DataArray) or da.ndim != 3:
        raise CLIError(f"{path}: expected one (band, y, x) raster, got {type(da).__name__}")
    names = da.attrs.get("long_name")
    if isinstance(names, (list, tuple)) and len(set(names)) == da.sizes["band"]:
        da = da.assign_coords(band=[str(n) for n in names])
    else:
        da = da.assign_coords(band=[f"b{i + 1}" for i in range(da.sizes["band"])])
    return da


def _atomic_write(target: Path, write: Any) -> None:
    """Write through a temporary file in the same folder, then rename: nothing half-written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=target.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _check_output(path: str, *, folder: bool = False) -> Path:
    """Refuse an output path that cannot be written, before anything is fitted or read."""
    target = Path(path)
    if folder:
        if target.exists() and not target.is_dir():
            raise CLIError(f"{path} is a file, not a folder; pass another --out")
    elif target.is_dir():
        raise CLIError(f"{path} is a folder; give a file name, e.g. {target / 'labels.tif'}")
    for parent in (target, *target.parents) if folder else target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise CLIError(f"cannot write {path}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise CLIError(f"cannot write {path}: no permission to write in {parent}")
            break
    return target


def _write_labels(labels: Any, path: Path) -> None:
    """Write a GeoTIFF chunk by chunk: with a lock, rioxarray stores each Dask chunk as it is computed
    (memory follows the chunks, not the image); numpy labels are written window by window."""
    import threading

    _atomic_write(
        path,
        lambda tmp: labels.rio.to_raster(
            tmp, driver="GTiff", compress="deflate", tiled=True, windowed=True, lock=threading.Lock()
        ),
    )


def _fit(da: Any, k: int, steps: int | None, seed: int, verbose: int) -> Any:
    from . import api

    budget: dict[str, Any] = {} if steps is None else {"steps": steps}  # None: the library's default
    return api.fit(da, k, seed=seed, verbose=verbose, **budget)


def cmd_demo(args: argparse.Namespace) -> int:
    """Fit on the shipped sample, segment it, write labels, simulation and a figure."""
    import xr_ktextures as xk

    from .plot import save_figure

    out = _check_output(args.out, folder=True)
    print(f"xr-ktextures demo: sample {xk.sample_path()}", flush=True)
    da = _open(xk.sample_path()).assign_coords(band=["red", "green", "blue", "nir"])
    t0 = time.perf_counter()
    steps = "default" if args.steps is None else args.steps
    print(f"fitting k={args.k} on a sample of chunks ({steps} steps) ...", flush=True)
    model = _fit(da, args.k, args.steps, args.seed, 1 if args.progress else 0)
    t1 = time.perf_counter()
    labels = xk.segment(da, model).compute()
    sim = xk.simulate(da, model).compute()
    t2 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    _write_labels(labels, out / "labels.tif")
    _atomic_write(out / "simulated.tif", lambda tmp: sim.rio.to_raster(tmp, driver="GTiff", compress="deflate"))
    _atomic_write(out / "model.keras", lambda tmp: model.save(tmp))
    _atomic_write(out / "demo.png", lambda tmp: save_figure(da, labels, sim, tmp))
    counts = {int(c): int((labels.values == c).sum()) for c in range(model.k)}
    print(f"fit {t1 - t0:.1f}s, segment+simulate {t2 - t1:.1f}s; pixels per class {counts}")
    for name in ("labels.tif", "simulated.tif", "model.keras", "demo.png"):
        print(f"wrote {out / name}")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    target = Path(args.model)
    if target.suffix != ".keras":
        raise CLIError(f"the model file must end in .keras, got {args.model}")
    _check_output(args.model)
    da = _open(args.input)
    model = _fit(da, args.k, args.steps, args.seed, 1 if args.progress else 0)
    _atomic_write(target, lambda tmp: model.save(tmp))
    print(f"wrote {target} (k={model.k}, halo={model.halo}, id={model.model_id})")
    return 0


def cmd_segment(args: argparse.Namespace) -> int:
    import xr_ktextures as xk

    output = _check_output(args.output)
    da = _open(args.input)
    if args.model:
        try:
            model = xk.load_model(args.model)
        except (FileNotFoundError, xk.InputError) as err:
            raise CLIError(str(err)) from err
        if args.k is not None and args.k != model.k:
            raise CLIError(f"-k {args.k} differs from the model's k={model.k}; drop -k or fit a new model")
        if model.band_names is not None and model.bands == da.sizes["band"]:
            da = da.assign_coords(band=model.band_names)
    else:
        if args.k is None:
            raise CLIError("give -k K (to fit a model on this image) or --model MODEL.keras")
        model = _fit(da, args.k, args.steps, args.seed, 1 if args.progress else 0)
    labels = xk.segment(da, model)
    _write_labels(labels, output)
    print(f"wrote {args.output} (k={model.k}, nodata={xk.NODATA})")
    return 0


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="xr-ktextures", description="k-textures texture segmentation of rasters.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser, k_required: bool, k_default: int | None = None) -> None:
        sp.add_argument("-k", type=int, required=k_required, default=k_default, help="number of classes (2-128)")
        sp.add_argument("--steps", type=int, default=None, help="training steps (default: fit's, 60)")
        sp.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        sp.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")

    d = sub.add_parser("demo", help="fit and segment the shipped sample image; write outputs to a folder")
    d.add_argument("--out", default="ktextures-demo", help="output folder (default ./ktextures-demo)")
    common(d, False, 5)
    d.set_defaults(func=cmd_demo)

    f = sub.add_parser("fit", help="fit a model on a GeoTIFF and save it (.keras)")
    f.add_argument("input", help="input GeoTIFF (band, y, x)")
    f.add_argument("model", help="output model file, *.keras")
    common(f, True)
    f.set_defaults(func=cmd_fit)

    s = sub.add_parser("segment", help="segment a GeoTIFF into a uint8 labels GeoTIFF")
    s.add_argument("input", help="input GeoTIFF (band, y, x)")
    s.add_argument("output", help="output labels GeoTIFF")
    s.add_argument("--model", help="a saved model (.keras); without it a model is fitted on the input")
    common(s, False)
    s.set_defaults(func=cmd_segment)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xr-ktextures`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 on success, 2 on a user error (one line on stderr).

    Examples
    --------
    >>> main(["segment", "missing.tif", "out.tif", "-k", "3"])
    2
    """
    args = _parser().parse_args(argv)  # --help and --version end here, before any heavy import
    from ._errors import KTexturesError
    from ._quiet import import_backend_quietly

    import_backend_quietly()  # TensorFlow's C++/absl start-up lines, unless TF_CPP_MIN_LOG_LEVEL is set

    try:
        return int(args.func(args))
    except (CLIError, KTexturesError, ValueError) as err:
        print(f"xr-ktextures {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
