"""Out-of-core: segment a lazily generated uint8 cube far larger than memory, straight to Zarr.

The cube (4 bands x size x size, uint8, EPSG:32618, default 50 000 x 50 000 = 10 GB)
is generated chunk by chunk inside the Dask graph (three synthetic textures on a grid
of regions, a pure function of the chunk's position), so nothing exists before it is
needed. ``xr_ktextures.segment`` labels it lazily and ``xr_ktextures.write_zarr``
streams the labels to disk one window of chunks at a time (``--window``, default 8x8
chunks), so memory does not grow with the cube's width as it does with a plain
``to_zarr`` (``--plain``). The model is fitted on 4 sampled chunks of the cube in a
*separate process* and saved; this process loads it and runs the compute, so the
compute's peak resident set size is its own (the Python, TensorFlow and Keras runtime,
the model and the tiles in flight), not the fit's. Memory is reported as the fit
process's peak RSS, this process's RSS before the compute, and its peak RSS.

Usage (from the project root)::

    python benchmarks/out_of_core.py                  # 50 000^2 (about 20 min on 2 cores)
    python benchmarks/out_of_core.py --quick          # 10 000^2
    python benchmarks/out_of_core.py --quick --plain  # the same with a plain to_zarr
    python benchmarks/out_of_core.py --height 8192 --plain   # a full-width 8192-row strip, plain to_zarr
    python benchmarks/out_of_core.py --size 20000 --chunk 2048 --tile 1024 --out /tmp/labels.zarr
    python benchmarks/out_of_core.py --quick --same-process   # fit here too (peak reset after it)
    python benchmarks/out_of_core.py --quick --tile 256 --threads 1   # the smallest footprint
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, rss_mb


class AnonPeak(threading.Thread):
    """Samples ``RssAnon`` every 50 ms (the kernel keeps no high-water mark of it); ``peak`` in MB."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = rss_mb("RssAnon")
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            self.peak = max(self.peak, rss_mb("RssAnon"))

    def stop(self) -> float:
        self.done.set()
        self.join()
        return max(self.peak, rss_mb("RssAnon"))


def peak_rss_mb() -> float:
    """The process's peak RSS since start or since :func:`reset_peak` (VmHWM; ru_maxrss where unreadable)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def reset_peak() -> bool:
    """Reset the peak RSS to the current RSS (Linux: write 5 to /proc/self/clear_refs); False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def synthetic_chunk(block_info=None) -> np.ndarray:
    """One chunk of the synthetic cube: a pure function of the chunk's global position.

    Built band by band (the same values as drawing all four bands at once), so making a
    chunk holds about 6 chunk-sized float32 arrays, not 18: the generator stands in for a
    reader, and its temporaries should not dominate the compute's peak memory.
    """
    info = block_info[None]
    (_, _), (y0, y1), (x0, x1) = info["array-location"]
    yy = np.arange(y0, y1)[:, None]
    xx = np.arange(x0, x1)[None, :]
    rng = np.random.default_rng([y0, x0])
    region = (yy // 700 + 2 * (xx // 900)) % 3  # a grid of 700 x 900 px regions, three kinds
    amp = np.choose(region, [4.0, 25.0, 8.0]).astype(np.float32)
    stripes = np.where(region == 2, 30.0 * np.sin(xx / 2.5 + yy / 7.0), 0.0).astype(np.float32)
    out = np.empty((4, y1 - y0, x1 - x0), np.uint8)
    for b, base in enumerate(np.array([70.0, 120.0, 150.0, 110.0], np.float32)):
        value = rng.normal(0.0, 1.0, out.shape[1:]).astype(np.float32)  # the same stream as (4, h, w) at once
        value *= amp
        value += base
        value += stripes
        out[b] = np.clip(value, 0, 255)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=50_000, help="cube side in px (default 50 000)")
    ap.add_argument("--height", type=int, default=None, help="rows, for a strip of the full width (default: --size)")
    ap.add_argument("--chunk", type=int, default=1024, help="chunk side in px (default 1024)")
    ap.add_argument("--tile", type=int, default=512, help="segment's tile side in px (default 512: ~0.2 GB per thread)")
    ap.add_argument("--window", type=int, default=8, help="chunks per write window along y and x (default 8)")
    ap.add_argument("--plain", action="store_true", help="write with a plain to_zarr instead of write_zarr")
    ap.add_argument("--quick", action="store_true", help="10 000 x 10 000")
    ap.add_argument("--out", default=None, help="Zarr path (default: a temporary directory, removed after)")
    ap.add_argument("--threads", type=int, default=None, help="Dask threads (default: one per core)")
    ap.add_argument("--same-process", action="store_true", help="fit in this process (peak reset after the fit)")
    ap.add_argument("--fit-to", default=None, help=argparse.SUPPRESS)  # the child: fit, save, report, exit
    args = ap.parse_args()
    size = 10_000 if args.quick else args.size
    height = args.height or size

    import dask
    import dask.array as dsa
    import xarray as xr

    import xr_ktextures as xk

    c = args.chunk
    ychunks = tuple(min(c, height - i) for i in range(0, height, c))
    xchunks = tuple(min(c, size - i) for i in range(0, size, c))
    data = dsa.map_blocks(synthetic_chunk, dtype=np.uint8, chunks=((4,), ychunks, xchunks), name="synthetic-cube")
    cube = xr.DataArray(
        data,
        dims=("band", "y", "x"),
        coords={
            "band": ["red", "green", "blue", "nir"],
            "y": 5_000_000.0 - 5.0 * (np.arange(height) + 0.5),
            "x": 300_000.0 + 5.0 * (np.arange(size) + 0.5),
        },
    ).rio.write_crs("EPSG:32618")

    # a model fitted on a few sampled chunks of the cube itself (reads only those chunks)
    if args.fit_to:
        t0 = time.perf_counter()
        model = xk.fit(cube, k=3, steps=30, n_chunks=4, verbose=0, seed=0)
        seconds = time.perf_counter() - t0
        model.save(args.fit_to)
        print(json.dumps({"fit_s": seconds, "fit_peak_mb": peak_rss_mb()}))
        return
    workdir = Path(tempfile.mkdtemp(prefix="ktex-ooc-"))
    if args.same_process:
        t0 = time.perf_counter()
        model = xk.fit(cube, k=3, steps=30, n_chunks=4, verbose=0, seed=0)
        fit_s, fit_peak = time.perf_counter() - t0, peak_rss_mb()
    else:
        path = workdir / "model.keras"
        child = [sys.executable, __file__, *sys.argv[1:], "--fit-to", str(path)]
        done = subprocess.run(child, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"the fit process failed (rc {done.returncode}):\n{done.stderr[-4000:]}")
        report = json.loads(done.stdout.strip().splitlines()[-1])
        fit_s, fit_peak = report["fit_s"], report["fit_peak_mb"]
        model = xk.load_model(path)

    labels = xk.segment(cube, model, tile=args.tile)
    out = Path(args.out) if args.out else workdir / "labels.zarr"
    reset = reset_peak() if args.same_process else True  # the compute's own peak, not the fit's
    before, before_anon = rss_mb(), rss_mb("RssAnon")
    sampler = AnonPeak()
    sampler.start()
    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=args.threads):
        if args.plain:
            labels.to_dataset(name="labels").to_zarr(out, mode="w", consolidated=False)
        else:
            xk.write_zarr(labels, out, window=args.window, mode="w", consolidated=False)
    seconds = time.perf_counter() - t0
    peak = peak_rss_mb()
    anon_peak = sampler.stop()

    check = xr.open_zarr(out, consolidated=False, mask_and_scale=False)["labels"]
    window = check.isel(y=slice(0, 2048), x=slice(0, 2048)).values  # covers several synthetic regions
    classes, counts = np.unique(window, return_counts=True)
    assert check.dtype == np.uint8 and check.shape == (height, size)
    size_on_disk = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    shutil.rmtree(workdir)

    px = height * size
    print(f"machine: {machine()}")
    print(
        f"cube: 4 x {height} x {size} uint8 ({4 * px / 1e9:.1f} GB), chunks {c}, generated lazily; "
        f"model k=3, tile {args.tile}, Dask threaded scheduler ({args.threads or 'one thread per core'}), "
        + ("plain to_zarr" if args.plain else f"write_zarr in {args.window}x{args.window}-chunk windows")
    )
    where = "in this process" if args.same_process else "in a separate process"
    print(f"fit on 4 sampled chunks ({where}): {fit_s:.1f} s")
    print(
        f"segment -> Zarr: {seconds:.1f} s, {px / seconds / 1e6:.2f} Mpx/s; "
        f"labels on disk {size_on_disk / 1e6:.0f} MB; "
        f"classes in the first 2048^2 px: {dict(zip(classes.tolist(), counts.tolist()))}"
    )
    print(
        f"memory: fit peak RSS {fit_peak:.0f} MB; RSS before the compute {before:.0f} MB; "
        + (
            f"compute's own peak RSS {peak:.0f} MB ({peak / 1024:.2f} GB; "
            + ("peak reset after the fit)" if args.same_process else "the fit ran in another process)")
            if reset
            else f"peak RSS {peak:.0f} MB ({peak / 1024:.2f} GB; could not reset the peak: it includes the fit)"
        )
    )
    print(
        f"anonymous memory (RssAnon, without shared-library pages; sampled every 50 ms): "
        f"{before_anon:.0f} MB before the compute, peak {anon_peak:.0f} MB ({anon_peak / 1024:.2f} GB)"
    )
    print(f"command: python benchmarks/out_of_core.py {' '.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
