"""Segment throughput (Mpx/s) on an in-memory cube versus the model's FLOP roofline.

The roofline is measured in the same run: the best sgemm rate seen (a 2048^2 float32
matmul, median of 5, by the Keras backend and by numpy, before and after the timed runs)
divided by the label computation's FLOPs per pixel
(``benchmarks/_common.py:flops_per_pixel``: all convolutions, the head's pooling
and element-wise work; halo overlap not counted). Efficiency = measured Mpx/s over
roofline Mpx/s.

It times ``xr_ktextures.segment(cube).compute()`` on a Dask-backed in-memory cube
(default 4096 x 4096 px, 1024 px chunks, Dask's threaded scheduler), and, for the
engine alone, ``KTextures.predict`` on one 1070^2 block (a 1024 px chunk with its halo),
and the reference path (``quantizer.labels(encoder(scaler(x)))`` run eagerly: dilated
convolutions as written for training) on that same block.

The model is the default architecture (k=6) with untrained weights: throughput does
not depend on the weights' values.

Usage (from the project root)::

    python benchmarks/throughput.py              # 4096^2 cube, 3 repeats
    python benchmarks/throughput.py --quick      # 2048^2 cube
    python benchmarks/throughput.py --chunk 2048 --tile 2048   # bigger chunks and tiles: less halo work
    KERAS_BACKEND=jax python benchmarks/throughput.py --device gpu --size 16384   # on a GPU worker
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import flops_per_pixel, machine, median_time, sgemm_gflops


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4096, help="cube side in px (default 4096)")
    ap.add_argument("--chunk", type=int, default=1024, help="chunk side in px (default 1024)")
    ap.add_argument("--tile", type=int, default=None, help="segment's tile side (default: the engine's, 1024 on a CPU)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--quick", action="store_true", help="2048^2 cube")
    ap.add_argument("--json", action="store_true", help="also print one JSON line")
    args = ap.parse_args()
    size = 2048 if args.quick else args.size

    import dask.array as dsa
    import keras
    import xarray as xr

    import xr_ktextures as xk

    model = xk.KTextures(k=6, seed=0)
    model.network.fitted = True  # random weights: the cost does not depend on them
    flops = flops_per_pixel(model)
    rng = np.random.default_rng(0)
    side = args.chunk + 2 * model.halo
    block = rng.random((1, side, side, 4), dtype=np.float32) * 255

    before = sgemm_gflops()
    # the engine on one block, and the reference (training) forward pass on the same block
    run_engine = lambda: model.predict(block, pad=False, device=args.device, tile=args.tile)  # noqa: E731
    run_engine()
    t_engine, _ = median_time(run_engine, args.repeats + 2)

    def reference() -> None:
        net = model.network  # the training graph's dilated convolutions (the engine runs them phased)
        keras.ops.convert_to_numpy(net.quantizer.labels(net.encoder(net.scaler(block))))

    reference()
    t_ref, _ = median_time(reference, args.repeats)
    block_px = args.chunk**2  # useful (output) pixels of the block

    # the whole path: segment on a Dask-backed in-memory cube
    data = (rng.random((4, size, size), dtype=np.float32) * 255).astype(np.float32)
    cube = xr.DataArray(dsa.from_array(data, chunks=(4, args.chunk, args.chunk)), dims=("band", "y", "x"))
    run_segment = lambda: xk.segment(cube, model, device=args.device, tile=args.tile).compute()  # noqa: E731
    run_segment()  # warm-up: graphs for the edge shapes
    t_seg, runs = median_time(run_segment, args.repeats)

    # the machine's best sgemm rate (backend or numpy, before and after the timed runs): a
    # conservative roofline on a shared machine whose matmul rate varies from run to run
    after = sgemm_gflops()
    sgemm = {key: max(before[key], after[key]) for key in after}
    best = max(sgemm.values())
    roof = best * 1e9 / flops["total"] / 1e6  # Mpx/s
    seg_mpx = size * size / t_seg / 1e6
    eng_mpx = block_px / t_engine / 1e6
    ref_mpx = block_px / t_ref / 1e6
    out = {
        "machine": machine(),
        "backend": keras.backend.backend(),
        "device": args.device,
        "cube_px": f"{size}x{size}x4 float32, chunks {args.chunk}, tile {args.tile or 'default'}",
        "flops_per_px": round(flops["total"]),
        "sgemm_gflops_backend": round(sgemm["backend"], 1),
        "sgemm_gflops_numpy": round(sgemm["numpy"], 1),
        "roofline_mpx_s": round(roof, 2),
        "segment_mpx_s": round(seg_mpx, 2),
        "segment_runs_s": [round(t, 2) for t in runs],
        "segment_efficiency": round(seg_mpx / roof, 3),
        "engine_block_mpx_s": round(eng_mpx, 2),
        "engine_block_efficiency": round(eng_mpx / roof, 3),
        "reference_block_mpx_s": round(ref_mpx, 2),
        "engine_vs_reference": round(t_ref / t_engine, 2),
    }
    print(f"machine: {out['machine']}")
    print(f"model: default mask branch, k=6, halo {model.halo} px, {out['flops_per_px']} FLOP/px")
    print("  " + ", ".join(f"{k} {v:.0f}" for k, v in flops.items() if k != "total"))
    print(
        f"sgemm 2048^2 float32: {out['sgemm_gflops_backend']} GFLOP/s ({out['backend']}), "
        f"numpy {out['sgemm_gflops_numpy']}"
    )
    print(f"roofline: {out['roofline_mpx_s']} Mpx/s (the best sgemm rate / FLOP per px)")
    print(
        f"segment {out['cube_px']}: {out['segment_mpx_s']} Mpx/s "
        f"(median of {args.repeats}: {out['segment_runs_s']} s) = {out['segment_efficiency']:.0%} of roofline"
    )
    print(
        f"engine, one {args.chunk}^2 block + halo: {out['engine_block_mpx_s']} Mpx/s "
        f"= {out['engine_block_efficiency']:.0%} of roofline; reference forward pass {out['reference_block_mpx_s']} "
        f"Mpx/s (engine {out['engine_vs_reference']}x faster)"
    )
    print(f"command: python benchmarks/throughput.py {' '.join(sys.argv[1:])}".rstrip())
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
