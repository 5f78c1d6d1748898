"""Fast label inference: a compiled, tiled, device-aware forward pass of the mask branch.

* **The model's own layers** (:func:`label_graph`): the mask branch is described once,
  in :class:`~xr_ktextures.layers.MaskEncoder`, which computes only what its view reads
  and pools the k logits, not the hypercolumn.
* **A compiled graph** per tile shape (Keras ``predict_on_batch``: ``tf.function``
  under TensorFlow, ``jax.jit`` under JAX), cached per model, device and shape.
* **Tiles** of fixed size with a halo of context, batched up to a pixel budget, so
  memory is bounded by the tile, not the block, and the compiled graph is reused.
  Tiles are placed so that every tile has the same shape (the last one in a row is
  shifted back to end at the edge), so one graph serves a whole block.

Labels are exactly the same whatever the tiling or chunking.
"""

from __future__ import annotations

import os
import re
import threading
import weakref
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops

from ._errors import DeviceUnavailableError, InputError

__all__ = [
    "DeviceUnavailableError",
    "LabelEngine",
    "available_gpus",
    "device_memory",
    "engine_for",
    "normalize_device",
]

CPU_TILE = 1024
"""Default output tile side on a CPU (about 1.1 Mpx with the default halo)."""

GPU_TILE = 2048
"""Default output tile side on a GPU."""

GPU_FALLBACK_BUDGET = 2 * 2**30
"""Bytes assumed free on a GPU whose backend cannot say (TensorFlow)."""

GPU_MEMORY_FRACTION = 0.5
"""Share of the free GPU memory that one batch of tiles may use."""

_DEVICE_RE = re.compile(r"^(cpu|gpu|cuda)(?::(\d+))?$")


def normalize_device(device: str | None) -> str | None:
    """Check and canonicalize a device name: ``None``/``"auto"``, ``"cpu"``, ``"gpu"``, ``"gpu:N"``.

    ``"cuda"`` and ``"cuda:N"`` are accepted as aliases of ``"gpu"``/``"gpu:N"``.

    Parameters
    ----------
    device : str or None
        What the user asked for.

    Returns
    -------
    str or None
        ``None`` for the backend's default placement (a GPU when it sees one), else
        ``"cpu:0"`` or ``"gpu:N"``.

    Raises
    ------
    InputError
        If the name is not one of the forms above.

    Examples
    --------
    >>> normalize_device("auto") is None, normalize_device("cuda:1"), normalize_device("CPU")
    (True, 'gpu:1', 'cpu:0')
    """
    if device is None:
        return None
    if not isinstance(device, str):
        raise InputError(f"device must be a string such as 'auto', 'cpu', 'gpu' or 'gpu:1', got {device!r}.")
    name = device.strip().lower()
    if name == "auto":
        return None
    m = _DEVICE_RE.match(name)
    if not m:
        raise InputError(
            f"unknown device {device!r}; use 'auto' (GPU when the worker has one), 'cpu', 'gpu' or 'gpu:N'."
        )
    kind = "cpu" if m.group(1) == "cpu" else "gpu"
    index = int(m.group(2) or 0)
    if kind == "cpu" and index:
        raise InputError(f"device {device!r}: there is one CPU device, 'cpu' (all cores).")
    return f"{kind}:{index}"


def check_tile(tile: Any) -> int | None:
    """``tile`` as an int, or None; raises :class:`InputError` unless it is an integer >= 8.

    >>> check_tile(None), check_tile(512)
    (None, 512)
    """
    if tile is None:
        return None
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < 8:
        raise InputError(f"tile must be an integer >= 8 (pixels), got {tile!r}.")
    return int(tile)


def available_gpus() -> int:
    """How many GPUs the active Keras backend can use in this process.

    Returns
    -------
    int
        0 on a machine without a GPU or with a CPU-only build of the backend.

    Examples
    --------
    >>> available_gpus() >= 0
    True
    """
    if keras.backend.backend() == "torch":  # Keras has no device listing for torch
        try:
            import torch
        except ImportError:
            return 0
        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    try:
        return len(keras.distribution.list_devices("gpu"))
    except (RuntimeError, ValueError):  # JAX raises when it has no GPU platform
        return 0


def device_memory(device: str) -> int | None:
    """Free memory of a GPU in bytes as the backend reports it, or None when it cannot say.

    Parameters
    ----------
    device : str
        ``"gpu:N"``.

    Returns
    -------
    int or None
        Free bytes (torch: ``mem_get_info``; JAX: ``bytes_limit - bytes_in_use``);
        None under TensorFlow, which reports use but not capacity.

    Examples
    --------
    >>> device_memory("gpu:0") is None or device_memory("gpu:0") > 0
    True
    """
    index = int(device.split(":")[1])
    backend = keras.backend.backend()
    try:
        if backend == "torch":
            import torch

            if torch.cuda.is_available() and index < torch.cuda.device_count():
                return int(torch.cuda.mem_get_info(index)[0])
        elif backend == "jax":
            import jax

            gpus = [d for d in jax.devices() if d.platform == "gpu"]
            if index < len(gpus):
                stats = gpus[index].memory_stats() or {}
                if "bytes_limit" in stats:
                    return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    except (ImportError, RuntimeError):
        return None
    return None


def resolve_device(device: str | None) -> str:
    """The concrete device to run on in this process; raises if a requested GPU is absent.

    ``None`` (auto) becomes ``"gpu:0"`` when the backend sees a GPU, else ``"cpu:0"``.

    Raises
    ------
    DeviceUnavailableError
        If ``device`` names a GPU this process's backend does not see.
    """
    n = available_gpus()
    if device is None:
        return "gpu:0" if n else "cpu:0"
    if device.startswith("gpu"):
        index = int(device.split(":")[1])
        if index >= n:
            import socket

            raise DeviceUnavailableError(
                f"device {device!r} was requested but the {keras.backend.backend()} backend on "
                f"{socket.gethostname()} (pid {os.getpid()}) sees {n} GPU(s). Use device='auto' "
                "(GPU when present, else CPU) or 'cpu', or run on GPU workers (e.g. dask-cuda)."
            )
    return device


def bytes_per_pixel(model: Any) -> int:
    """Generous estimate of peak working memory per input pixel of the label graph."""
    enc = model.encoder
    if not hasattr(enc, "frontend"):  # the paper's 1x1 CNN: input, scaled input, two hidden maps, head
        return 4 * (2 * model.bands + 2 * max(enc.filters) + 4)
    fe = enc.frontend.channels(model.bands) if enc.frontend is not None else model.bands
    # input, scaled input, front-end parts and pooled stack, two live hidden maps, head (and
    # with a pooled hypercolumn: each map's share and their stacked copy, the sum, the window
    # mean's two passes)
    shares = 2 * (len(enc.convs) + 1) + 3 if enc.pool else 2
    # a multi-scale head has k logits per radius, each pooled, then their sum
    per_scale = max(len(getattr(enc, "scales", ())), 1)
    floats = 3 * model.bands + 3 * fe + 4 * enc.filters + (shares + 2) * enc.outputs * per_scale + 4
    return 4 * floats


def label_graph(model: Any, x: Any) -> Any:
    """Symbolic ``uint8`` labels of ``x``, a ``(B, H, W, bands)`` tensor.

    The model's own layers, called as they are: the mask branch is described once, in
    :class:`~xr_ktextures.layers.MaskEncoder`, and the engine only compiles, tiles and
    places it.
    """
    return ops.cast(model.quantizer.labels(model.encoder(model.scaler(x))), "uint8")


class LabelEngine:
    """Labels for arrays of any size: compiled per tile shape, tiled, batched, on one device.

    Parameters
    ----------
    model : KTextures
        A fitted model, built on ``device``.
    device : str or None
        ``"cpu:0"`` or ``"gpu:N"``: every call runs inside ``keras.device(device)``;
        None: the backend's default placement.
    gpu : bool, optional
        Whether the calls land on a GPU (sets the defaults below); default: ``device``
        names a GPU.
    tile : int, optional
        Output tile side in pixels; default :data:`CPU_TILE` or :data:`GPU_TILE`.
    batch_pixels : int, optional
        Input pixels per compiled call (tiles are batched up to it). Default: one tile
        on a CPU; on a GPU as many tiles as fit in :data:`GPU_MEMORY_FRACTION` of its
        free memory at :func:`bytes_per_pixel`.

    Examples
    --------
    >>> import numpy as np
    >>> import xr_ktextures as xk
    >>> model = xk.KTextures(k=3, fitted=True)
    >>> engine = LabelEngine(model, tile=64)
    >>> engine(np.zeros((1, 100, 120, 4), "float32")).shape
    (1, 100, 120)
    """

    def __init__(
        self,
        model: Any,
        device: str | None = None,
        tile: int | None = None,
        batch_pixels: int | None = None,
        gpu: bool | None = None,
    ) -> None:
        self.model = model
        self.device = device
        on_gpu = bool(gpu) if gpu is not None else (device is not None and device.startswith("gpu"))
        self.tile = check_tile(tile) or (GPU_TILE if on_gpu else CPU_TILE)
        self.batch_pixels = batch_pixels
        if batch_pixels is None and on_gpu:
            free = device_memory(device or "gpu:0") or GPU_FALLBACK_BUDGET
            self.batch_pixels = int(free * GPU_MEMORY_FRACTION) // bytes_per_pixel(model)
        self._graphs: dict[tuple[int, int], Callable[[np.ndarray], Any]] = {}
        self._lock = threading.Lock()
        self._call_lock = threading.Lock()

    def _graph(self, h: int, w: int) -> Callable[[np.ndarray], Any]:
        key = (h, w)
        fn = self._graphs.get(key)
        if fn is None:
            with self._lock:
                fn = self._graphs.get(key)
                if fn is None:
                    inp = keras.Input((h, w, self.model.bands))
                    net = keras.Model(inp, label_graph(self.model, inp), name=f"labels_{h}x{w}")
                    # XLA's CPU convolutions are slower than TensorFlow's oneDNN ones; JAX needs jit
                    net.compile(jit_compile=keras.backend.backend() != "tensorflow")
                    net.make_predict_function()
                    fn = net.predict_on_batch
                    if keras.backend.backend() != "tensorflow":
                        # Keras' JAX trainer swaps the variables' buffers on every call: not
                        # thread-safe, so calls from Dask's threads take turns (each call
                        # already uses every core, or the one GPU)
                        fn = _serialized(fn, self._call_lock)
                    self._graphs[key] = fn
        return fn

    def _run(self, tiles: np.ndarray) -> np.ndarray:
        """Labels of a batch of equal tiles (N, h, w, C); pads h, w to multiples of 8 at the end."""
        n, h, w, _ = tiles.shape
        ph, pw = -h % 8, -w % 8
        if ph or pw:  # only the outer (unreliable) ring can see the padding
            tiles = np.pad(tiles, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="symmetric")
        fn = self._graph(h + ph, w + pw)
        per_call = max(1, int(self.batch_pixels // ((h + ph) * (w + pw))) if self.batch_pixels else 1)
        out = np.empty((n, h, w), np.uint8)
        for i in range(0, n, per_call):
            res = keras.ops.convert_to_numpy(fn(tiles[i : i + per_call]))
            out[i : i + per_call] = res[:, :h, :w]
        return out

    def __call__(self, a: np.ndarray, halo: int | None = None) -> np.ndarray:
        """Labels of ``a`` ``(N, H, W, bands)``, float32 and finite; the outer ``halo`` ring is unreliable.

        Parameters
        ----------
        a : numpy.ndarray
            Input that carries its own context.
        halo : int, optional
            Context radius; defaults to the model's.

        Returns
        -------
        numpy.ndarray
            ``uint8`` labels ``(N, H, W)``.
        """
        h = self.model.halo if halo is None else int(halo)
        n, ny, nx, _ = a.shape
        t = self.tile
        ys = _starts(ny, t, h)
        xs = _starts(nx, t, h)
        th = min(ny, t + 2 * h)
        tw = min(nx, t + 2 * h)
        if len(ys) == 1 and len(xs) == 1:
            return self._scoped(lambda: self._run(a))
        windows = [(i, y, x) for i in range(n) for y in ys for x in xs]
        tiles = np.stack([a[i, y : y + th, x : x + tw] for i, y, x in windows])
        labels = self._scoped(lambda: self._run(tiles))
        out = np.empty((n, ny, nx), np.uint8)
        for lab, (i, y, x) in zip(labels, windows):
            # keep the tile's interior; a tile at an edge also fills the unreliable edge ring
            y0 = 0 if y == 0 else y + h
            x0 = 0 if x == 0 else x + h
            y1 = ny if y + th == ny else y + th - h
            x1 = nx if x + tw == nx else x + tw - h
            out[i, y0:y1, x0:x1] = lab[y0 - y : y1 - y, x0 - x : x1 - x]
        return out

    def _scoped(self, fn: Callable[[], np.ndarray]) -> np.ndarray:
        if self.device is None:
            return fn()
        with keras.device(self.device):
            return fn()


def _serialized(fn: Callable[[np.ndarray], Any], lock: threading.Lock) -> Callable[[np.ndarray], Any]:
    def call(x: np.ndarray) -> Any:
        with lock:
            return fn(x)

    return call


def _starts(n: int, tile: int, halo: int) -> list[int]:
    """Window starts along one axis: windows of ``tile + 2 halo`` whose interiors cover ``[halo, n - halo)``."""
    size = tile + 2 * halo
    if n <= size:
        return [0]
    starts = list(range(0, n - size, tile))
    starts.append(n - size)  # the last window ends at the edge (same shape as the others)
    return sorted(set(starts))


_ENGINES: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], LabelEngine]] = weakref.WeakKeyDictionary()
_COPIES: dict[tuple[str, str], Any] = {}
_ENGINE_LOCK = threading.Lock()


def _copy_on(model: Any, device: str) -> Any:
    """A copy of ``model`` whose weights live on ``device``, built once per process and weights."""
    key = (model.model_id, device)
    copy = _COPIES.get(key)
    if copy is None:
        with _ENGINE_LOCK:
            copy = _COPIES.get(key)
            if copy is None:
                with keras.device(device):
                    copy = type(model).from_config(model.get_config())
                    copy.set_weights(model.get_weights())
                _COPIES[key] = copy
    return copy


def engine_for(model: Any, device: str | None = None, tile: int | None = None) -> LabelEngine:
    """The cached :class:`LabelEngine` of ``model`` on ``device`` (checked and resolved here).

    Parameters
    ----------
    model : KTextures
        A fitted model.
    device : str, optional
        As for :func:`normalize_device`; None or ``"auto"``: the backend's default
        placement (its GPU when it sees one), with GPU-sized tiles and batches there.
    tile : int, optional
        Output tile side; default by device.

    Returns
    -------
    LabelEngine

    Raises
    ------
    DeviceUnavailableError
        If a GPU is named that this process's backend does not see.

    Examples
    --------
    >>> import xr_ktextures as xk
    >>> model = xk.KTextures(k=2, fitted=True)
    >>> engine_for(model, "cpu").tile, engine_for(model, "cpu") is engine_for(model, "cpu")
    (1024, True)
    """
    wanted = normalize_device(device)
    concrete = resolve_device(wanted)
    target = model if wanted is None else _copy_on(model, concrete)
    key = (wanted, tile)  # the graphs read the model's variables, so refitting needs no new engine
    with _ENGINE_LOCK:
        per_model = _ENGINES.setdefault(target, {})
        engine = per_model.get(key)
        if engine is None:
            engine = LabelEngine(target, wanted, tile, gpu=concrete.startswith("gpu"))
            per_model[key] = engine
    return engine
