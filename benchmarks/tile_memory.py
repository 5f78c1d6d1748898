"""Where the compute's memory goes: the runtime before the first pixel, then each tile in flight.

Each configuration runs in a fresh process, so its numbers are its own. The process
imports the scientific stack, then Keras with its backend, then xr_ktextures, loads a
model (k=3, fitted once on the shipped sample in another process and saved), runs the
label engine (the compiled graph ``segment`` uses on every chunk) twice on one tile to
compile it, then resets the peak RSS (``/proc/self/clear_refs``) and runs ``--repeats``
tiles on each of ``threads`` threads at once, as Dask's threads do. Reported: the RSS
after each stage and the peak during the tiles (VmHWM), with the anonymous part
(``RssAnon``: what the process allocated, without the shared libraries' file pages).
Linux only (``/proc``).

Usage (from the project root)::

    python benchmarks/tile_memory.py                           # tiles 256, 512, 1024; 1 and 2 threads
    python benchmarks/tile_memory.py --tiles 512 --threads 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, rss_mb  # imports no numpy: the first stage counts none


def stage() -> dict[str, float]:
    return {"rss": rss_mb("VmRSS"), "anon": rss_mb("RssAnon")}


def child(model_path: str, tile: int, threads: int, repeats: int) -> dict:
    out = {"start": stage()}
    import dask.array  # noqa: F401
    import numpy as np
    import rioxarray  # noqa: F401
    import sklearn  # noqa: F401
    import xarray  # noqa: F401

    out["scientific stack"] = stage()
    import keras

    out[f"keras ({keras.backend.backend()})"] = stage()
    import xr_ktextures as xk
    from xr_ktextures.tiles import engine_for

    model = xk.load_model(model_path)
    out["xr_ktextures + model"] = stage()
    engine = engine_for(model.network, "cpu", tile)
    h = model.network.halo
    a = np.random.default_rng(0).normal(size=(1, tile + 2 * h, tile + 2 * h, model.network.bands))
    a = a.astype(np.float32)
    engine(a)
    engine(a)
    out["graph compiled, 2 tiles run"] = stage()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS

    def work() -> None:
        for _ in range(repeats):
            engine(a)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out["peak during the tiles"] = {"rss": rss_mb("VmHWM"), "anon": float("nan")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", type=int, nargs="+", default=[256, 512, 1024], help="output tile sides")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="threads running tiles at once")
    ap.add_argument("--repeats", type=int, default=3, help="tiles per thread")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)  # model_path tile threads repeats
    ap.add_argument("--fit-to", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        path, tile, threads, repeats = args.child
        print(json.dumps(child(path, int(tile), int(threads), int(repeats))))
        return
    if args.fit_to:
        import rioxarray

        import xr_ktextures as xk

        da = rioxarray.open_rasterio(xk.sample_path())
        xk.fit(da, k=3, steps=5, verbose=0, seed=0).save(args.fit_to)
        return

    with tempfile.TemporaryDirectory(prefix="ktex-mem-") as tmp:
        path = str(Path(tmp) / "model.keras")
        subprocess.run([sys.executable, __file__, "--fit-to", path], check=True, capture_output=True)
        rows = []
        for tile in args.tiles:
            for threads in args.threads:
                cmd = [sys.executable, __file__, "--child", path, str(tile), str(threads), str(args.repeats)]
                done = subprocess.run(cmd, capture_output=True, text=True)
                if done.returncode:
                    sys.exit(f"tile {tile}, {threads} threads failed (rc {done.returncode}):\n{done.stderr[-3000:]}")
                rows.append((tile, threads, json.loads(done.stdout.strip().splitlines()[-1])))
    print(f"machine: {machine()}")
    first = rows[0][2]
    print("RSS (anonymous) in MB after each stage, first configuration:")
    for name, v in first.items():
        if name != "peak during the tiles":
            print(f"  {name:30s} {v['rss']:7.0f} ({v['anon']:.0f})")
    print("| tile | threads | RSS before the tiles | peak during the tiles | added by the tiles |")
    print("|---|---|---|---|---|")
    for tile, threads, r in rows:
        before = r["graph compiled, 2 tiles run"]["rss"]
        peak = r["peak during the tiles"]["rss"]
        print(f"| {tile} | {threads} | {before:.0f} MB | {peak:.0f} MB | {peak - before:+.0f} MB |")


if __name__ == "__main__":
    main()
