"""Training the network on patches: band scaling, the cluster initialisation, Keras train steps on random crops.

:func:`train` is what :meth:`xr_ktextures.KTextures.fit` runs. It runs Keras' own compiled
train step (any backend), unchanged, on a stream of random crops, with Keras' callbacks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import keras
import numpy as np

from ._errors import InputError
from ._nodata import fill_gaps, invalid_pixels
from ._progress import log_timing, logger
from ._validate import check_int, is_int
from .devices import seed_backend
from .initialise import initialise_masks, seed_texture_colours

__all__ = ["check_patch_size", "check_patches", "train"]


def train(
    net: Any,
    patches: np.ndarray,
    *,
    steps: int = 60,
    batch_size: int = 4,
    patch_size: int = 64,
    learning_rate: float = 3e-3,
    augment: bool = True,
    verbose: int | str = "auto",
    callbacks: Sequence[keras.callbacks.Callback] | None = None,
) -> None:
    """Fit ``net`` (a :class:`~xr_ktextures.network.KTexturesNet`) on ``patches`` in place.

    Parameters are those of :meth:`xr_ktextures.KTextures.fit`.
    """
    patches = check_patches(patches, net.bands, patch_size)
    check_int("steps", steps, 0)
    check_int("batch_size", batch_size, 1)
    seed_backend(net.seed)
    dates = patches.shape[1] if patches.ndim == 5 else 1  # (N, dates, H, W, bands): one place per patch
    data = patches.astype(np.float32, copy=False).reshape(-1, *patches.shape[-3:])
    gaps = invalid_pixels(data)
    if gaps.any():  # statistics of the valid values; gaps filled as predict fills them
        data = np.where(np.isfinite(data), data, np.float32(np.nan))
        mean = np.nanmean(data, axis=(0, 1, 2), dtype=np.float64)
        std = np.nanstd(data, axis=(0, 1, 2), dtype=np.float64)
        data = fill_gaps(data, mean)
        logger.info("%.1f %% of the patches' pixels are gaps: filled from their neighbours", 100 * gaps.mean())
    else:
        mean = data.mean(axis=(0, 1, 2), dtype=np.float64)
        std = data.std(axis=(0, 1, 2), dtype=np.float64)
    std = np.where(std > 1e-6 * np.maximum(np.abs(mean), 1.0), std, 1.0)
    net.scaler.set_statistics(mean, std)

    rng = np.random.default_rng(net.seed)
    mask, ablation = net.mask_options, net.ablation
    if ablation.seed_textures or mask.cluster_init:
        t0 = time.perf_counter()
        logger.info("initialising the %d classes from %d sampled patches", net.k, len(data))
        scaled = ((data - mean) / std).astype(np.float32)  # once, for both initialisations
        if ablation.seed_textures:
            seed_texture_colours(net.textures, scaled, net.k, rng)
        if mask.cluster_init:
            scores, net.init_view = initialise_masks(
                net.encoder,
                net.textures,
                scaled,
                rng,
                k=net.k,
                seed=net.seed,
                rounds=mask.cluster_rounds,
                auto_context=net.auto_context,
                cut=ablation.normalized_cut,
                over=ablation.overcluster,
                merge="context" if ablation.merges_by_context else "ward",
                valid=~gaps if gaps.any() else None,
                dates=dates,
            )
            if scores is not None:
                net.context_scores = scores
            logger.info("first clustering: the %s view", net.init_view or f"{net.view}@{net.pool}")
        log_timing("init", t0)
    batches = _crops(data, batch_size, patch_size, augment, rng)
    net.extractor()
    net.fit_feature_scale(np.concatenate([next(batches) for _ in range(4)]))
    if not steps:  # the cluster initialisation alone (textures untrained)
        net.fitted = True
        return
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, int(steps), alpha=0.05)
    net.encoder.trainable = bool(ablation.finetune_masks)
    if (mask.cluster_init and net.architecture == "default") or not getattr(net.encoder, "reads_hidden", True):
        for conv in net.encoder.convs:  # random texture filters stay as drawn (or unread): the head learns
            conv.trainable = False
    t0 = time.perf_counter()
    logger.info("training for %d steps", int(steps))
    try:
        net.compile(optimizer=keras.optimizers.Adam(schedule), jit_compile="auto")
        # Adam's slots created now, not while TensorFlow traces the train step: a variable
        # created during a trace makes tf.function trace the step a second time (~4 s).
        net.optimizer.build(net.trainable_variables)
        _run_steps(net, batches, int(steps), verbose, list(callbacks or []))
    finally:
        net.encoder.trainable = True
        for layer in getattr(net.encoder, "convs", []):
            layer.trainable = True
    log_timing("train", t0)
    net.fitted = True


def check_patches(patches: Any, bands: int, patch_size: Any) -> np.ndarray:
    """``patches`` as an array; :class:`~xr_ktextures.InputError` unless ``(N, H, W, bands)`` or
    ``(N, dates, H, W, bands)``, real, and at most half gaps."""
    check_patch_size(patch_size)
    a = np.asarray(patches)
    if a.ndim not in (4, 5) or a.shape[-1] != bands or 0 in a.shape[:-3]:
        raise InputError(
            f"patches must be shaped (N, H, W, {bands}), or (N, dates, H, W, {bands}) for the same places at "
            f"several dates, for a {bands}-band model, got {a.shape}."
        )
    if a.shape[-3] < patch_size or a.shape[-2] < patch_size:
        raise InputError(
            f"patches of {a.shape[-3]}x{a.shape[-2]} px are smaller than patch_size={patch_size}; "
            "pass larger patches or a smaller patch_size."
        )
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise InputError(f"patches must be real numbers, got dtype {a.dtype}.")
    if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
        gaps = invalid_pixels(a)
        if gaps.mean() > 0.5:
            raise InputError(
                f"{gaps.mean():.0%} of the patches' pixels are NaN or inf (at most half may be gaps, "
                "which fit fills); pass patches with fewer gaps."
            )
    return a


def check_patch_size(patch_size: Any) -> int:
    """``patch_size`` as an int; :class:`~xr_ktextures.InputError` unless a multiple of 16 and >= 32."""
    if not is_int(patch_size) or patch_size < 32 or patch_size % 16:
        raise InputError(f"patch_size must be a multiple of 16 and >= 32 (e.g. 32, 48, 64), got {patch_size!r}.")
    return int(patch_size)


def _crops(data: np.ndarray, batch: int, size: int, augment: bool, rng: np.random.Generator) -> Iterator[np.ndarray]:
    n, h, w, _ = data.shape
    while True:
        idx = rng.integers(0, n, batch)
        ys = rng.integers(0, h - size + 1, batch)
        xs = rng.integers(0, w - size + 1, batch)
        out = np.stack([data[i, y : y + size, x : x + size] for i, y, x in zip(idx, ys, xs)])
        if augment:
            for j in range(batch):
                t = out[j]
                if rng.random() < 0.5:
                    t = t[:, ::-1]
                out[j] = np.rot90(t, int(rng.integers(0, 4)))
        yield np.ascontiguousarray(out)


def _run_steps(
    net: Any, batches: Iterator[np.ndarray], steps: int, verbose: int | str, callbacks: list[keras.callbacks.Callback]
) -> None:
    """One epoch of ``steps`` Keras train steps on ``batches``, with callbacks and progress as ``Model.fit`` gives.

    Written out (Keras' guide to custom training loops: ``train_on_batch`` and a
    ``CallbackList``) rather than ``Model.fit`` on a generator: under TensorFlow, fit wraps
    a Python generator in ``tf.data.Dataset.from_generator``, whose op sets glibc's
    ``M_TRIM_THRESHOLD`` for the whole process; every later large tensor is then mapped
    and unmapped by the kernel, and each training step ran ~1.7x slower (250 vs 150 ms at
    k = 5; page faults: system CPU time 0.24 -> 1.11 s per 20 steps), as did train steps
    run later in the process. ``train_on_batch`` runs the same compiled train step on each batch, in order.
    """
    hooks = keras.callbacks.CallbackList(
        callbacks, add_history=True, add_progbar=bool(verbose), model=net,
        verbose=1 if verbose == "auto" else verbose, epochs=1, steps=steps,
    )  # fmt: skip
    net.stop_training = False
    net.reset_metrics()  # the logged loss is the epoch's running mean, as in fit
    hooks.on_train_begin()
    hooks.on_epoch_begin(0)
    logs: dict[str, Any] = {}
    for step in range(steps):
        hooks.on_train_batch_begin(step)
        logs = net.train_on_batch(next(batches), return_dict=True)
        hooks.on_train_batch_end(step, logs)
        if net.stop_training:
            break
    hooks.on_epoch_end(0, logs)
    hooks.on_train_end(logs)
