"""segment versus a paper-style tile loop: same labels, and how much faster.

The paper (Wagner et al. 2022) predicts an image as 136 px tiles whose central 128 px
are kept, one batch of tiles at a time, and stitches them. This script runs that loop
on the same model with ``keras.Model.predict(tiles, batch_size=...)`` on the reference
forward pass (``quantizer.labels(encoder(scaler(x)))``, the graph used in training),
in two variants:

* **exact**: 128 px output tiles with the model's full context, i.e. input tiles of
  ``128 + 2 * halo`` px (174 px for the default model); its labels must equal
  ``segment``'s except at near-ties: ``segment`` adds the head's per-layer shares of the
  logits in another order, so where the two best logits agree to float rounding either
  class may win. Every differing pixel is checked to be such a tie (asserted);
* **literal 136 -> 128**: input tiles of 136 px (4 px of context), as in the paper; it
  is faster than the exact loop but its labels differ near tile borders, because the
  model sees less context than its receptive field. The fraction that differs is printed.

A third, **strong** competitor runs the *same* compiled engine ``segment`` uses
(:class:`xr_ktextures.tiles.LabelEngine`) in a plain Python loop over 1024 px output tiles
of the in-memory image (each with its halo, mirrored at the border): what a careful user
would write without Dask. Its ratio to ``segment`` is what the Dask integration (graph,
overlap, scheduling) costs or saves; its labels must equal ``segment``'s.

``segment`` runs on the same image as a Dask-backed array with 1024 px chunks.
Timings are medians of ``--repeats`` runs after a warm-up, in one process.

Usage (from the project root)::

    python benchmarks/tile_loop.py            # 2048 x 2048 image
    python benchmarks/tile_loop.py --quick    # 1024 x 1024
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, median_time


def tile_loop(net, img: np.ndarray, out_tile: int, context: int, batch: int, dtype=np.uint8) -> np.ndarray:
    """Paper-style: mirror-pad, cut (out_tile + 2 context) tiles on an out_tile grid, predict in batches, stitch."""
    ny, nx, _ = img.shape
    ty, tx = -(-ny // out_tile), -(-nx // out_tile)
    pad = ((context, ty * out_tile - ny + context), (context, tx * out_tile - nx + context), (0, 0))
    padded = np.pad(img, pad, mode="symmetric")
    size = out_tile + 2 * context
    corners = [(i * out_tile, j * out_tile) for i in range(ty) for j in range(tx)]
    tiles = np.stack([padded[y : y + size, x : x + size] for y, x in corners])
    labels = net.predict(tiles, batch_size=batch, verbose=0)
    inner = labels[:, context : context + out_tile, context : context + out_tile]
    out = inner.reshape(ty, tx, out_tile, out_tile).transpose(0, 2, 1, 3).reshape(ty * out_tile, tx * out_tile)
    return out[:ny, :nx].astype(dtype)


def engine_loop(engine, img: np.ndarray, out_tile: int, context: int) -> np.ndarray:
    """The same compiled engine as ``segment``, called on one (out_tile + 2 context) window at a time."""
    ny, nx, _ = img.shape
    ty, tx = -(-ny // out_tile), -(-nx // out_tile)
    pad = ((context, ty * out_tile - ny + context), (context, tx * out_tile - nx + context), (0, 0))
    padded = np.pad(img, pad, mode="symmetric")
    size = out_tile + 2 * context
    out = np.empty((ty * out_tile, tx * out_tile), np.uint8)
    for i in range(ty):
        for j in range(tx):
            y, x = i * out_tile, j * out_tile
            lab = engine(padded[None, y : y + size, x : x + size], halo=context)[0]
            out[y : y + out_tile, x : x + out_tile] = lab[context : context + out_tile, context : context + out_tile]
    return out[:ny, :nx]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--quick", action="store_true", help="1024 x 1024 image")
    ap.add_argument("--batch", type=int, default=32, help="tiles per predict batch (default 32)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    size = 1024 if args.quick else args.size

    import dask.array as dsa
    import keras
    import rioxarray
    import xarray as xr

    import xr_ktextures as xk

    # a model fitted briefly on the shipped sample, so the labels are a real segmentation
    sample = rioxarray.open_rasterio(xk.sample_path()).astype("float32")
    model = xk.fit(sample, k=6, steps=60, verbose=0, seed=0)
    h = model.halo
    band = sample.values  # (4, 403, 515): tile it into a larger image (mirrored), a realistic texture field
    reps = (1, -(-size // band.shape[1]) + 1, -(-size // band.shape[2]) + 1)
    img = np.concatenate([band, band[:, ::-1]], axis=1)
    img = np.concatenate([img, img[:, :, ::-1]], axis=2)
    img = np.tile(img, (1, reps[1] // 2 + 1, reps[2] // 2 + 1))[:, :size, :size]
    img_yx = np.ascontiguousarray(np.moveaxis(img, 0, -1))

    cube = xr.DataArray(dsa.from_array(img, chunks=(4, 1024, 1024)), dims=("band", "y", "x"))
    run_segment = lambda: xk.segment(cube, model).values  # noqa: E731
    expected = run_segment()
    t_seg, _ = median_time(run_segment, args.repeats)

    def reference_net(side: int):
        inp = keras.Input((side, side, model.bands))
        return keras.Model(inp, model.network.labels(inp))

    from xr_ktextures.tiles import LabelEngine

    engine = LabelEngine(model.network, tile=1024)
    strong = engine_loop(engine, img_yx, 1024, h)  # warm-up (graph build)
    t_strong, _ = median_time(lambda: engine_loop(engine, img_yx, 1024, h), args.repeats)
    strong_differ = float((strong != expected).mean())

    results = {}
    exact_out = None
    for name, context in (("exact", h), ("literal 136->128", 4)):
        net = reference_net(128 + 2 * context)
        out = tile_loop(net, img_yx, 128, context, args.batch)  # warm-up (graph build)
        t, _ = median_time(lambda: tile_loop(net, img_yx, 128, context, args.batch), args.repeats)  # noqa: B023
        differ = float((out != expected).mean())
        results[name] = (t, differ)
        exact_out = out if exact_out is None else exact_out

    # Where the exact loop and segment disagree, the reference's two best logits must be
    # tied to float rounding: segment sums the head's per-layer shares in another order.
    inp = keras.Input((128 + 2 * h, 128 + 2 * h, model.bands))
    z = model.network.encoder(model.network.scaler(inp))
    top = keras.ops.top_k(z, 2)[0]
    gap_net = keras.Model(inp, (top[..., 0] - top[..., 1]) / (keras.ops.max(keras.ops.abs(z), axis=-1) + 1e-12))
    gap = tile_loop(gap_net, img_yx, 128, h, args.batch, dtype=np.float32)
    flipped = exact_out != expected

    print(f"machine: {machine()}")
    print(f"image {size} x {size} x 4 (the shipped sample, mirrored and tiled), model k=6, halo {h} px")
    print(f"segment (Dask, 1024 px chunks, halo overlap): {t_seg:.2f} s, {size * size / t_seg / 1e6:.2f} Mpx/s")
    print(
        f"plain loop, same engine (1024 px tiles + halo): {t_strong:.2f} s; segment is {t_strong / t_seg:.2f}x "
        f"faster; labels differing from segment: {strong_differ:.2%}"
    )
    for name, (t, differ) in results.items():
        tile_in = 128 + 2 * (h if name == "exact" else 4)
        print(
            f"tile loop {name} ({tile_in} px tiles -> 128, batch {args.batch}): {t:.2f} s; "
            f"segment is {t / t_seg:.2f}x faster; labels differing from segment: {differ:.2%}"
        )
    n_flip = int(flipped.sum())
    worst = float(gap[flipped].max()) if n_flip else 0.0
    print(
        f"exact loop vs segment: {n_flip} of {flipped.size} px differ, each a near-tie of the two best "
        f"logits (largest relative gap among them {worst:.1e}; median over the image {float(np.median(gap)):.1e})"
    )
    assert worst < 1e-4, "the exact tile loop must give segment's labels up to float-rounding ties"
    assert strong_differ == 0.0, "the same engine in a plain loop must give segment's labels exactly"
    print(f"command: python benchmarks/tile_loop.py {' '.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
