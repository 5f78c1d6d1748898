"""Labels of one in-memory array: the network's label graph, compiled, run tile by tile on one device.

* **The network's own layers** (:meth:`~xr_ktextures.network.KTexturesNet.labels`): the
  mask branch is described once, in its layers, which compute only what their view reads.
* **A compiled graph** per tile shape (Keras ``predict_on_batch``: ``tf.function``
  under TensorFlow, ``jax.jit`` under JAX), cached per network, device and shape.
* **Tiles** of fixed size with a halo of context, batched up to a pixel budget (on a
  GPU, from the layers' own memory estimate), so memory is bounded by the tile, not the
  block, and the compiled graph is reused. Tiles are placed so that every tile has the
  same shape (the last one in a row is shifted back to end at the edge), so one graph
  serves a whole block.

Labels are exactly the same whatever the tiling. :mod:`xr_ktextures.chunks` maps this
over the chunks of a Dask array.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from . import devices
from ._cache import CACHE
from ._validate import check_tile

__all__ = ["CPU_TILE", "GPU_TILE", "LabelEngine", "bytes_per_pixel", "engine_for"]

CPU_TILE = 1024
"""Default output tile side on a CPU (about 1.1 Mpx with the default halo)."""

GPU_TILE = 2048
"""Default output tile side on a GPU."""

GPU_FALLBACK_BUDGET = 2 * 2**30
"""Bytes assumed free on a GPU whose backend cannot say (TensorFlow)."""

GPU_MEMORY_FRACTION = 0.5
"""Share of the free GPU memory that one batch of tiles may use."""


def bytes_per_pixel(model: Any) -> int:
    """Peak working memory per input pixel of ``model``'s label graph, as its layers estimate it.

    Examples
    --------
    >>> import xr_ktextures as xk
    >>> bytes_per_pixel(xk.KTextures(k=3).network) > 0
    True
    """
    return int(model.label_bytes_per_pixel())


class LabelEngine:
    """Labels for arrays of any size: compiled per tile shape, tiled, batched, on one device.

    Parameters
    ----------
    model : KTexturesNet
        A fitted network (:attr:`xr_ktextures.KTextures.network`), built on ``device``.
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
    >>> net = xk.KTextures(k=3).network
    >>> engine = LabelEngine(net, tile=64)
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
            free = devices.device_memory(device or "gpu:0") or GPU_FALLBACK_BUDGET
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
                    net = keras.Model(inp, self.model.labels(inp), name=f"labels_{h}x{w}")
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

    def _per_call(self, h: int, w: int) -> int:
        """Tiles of ``h`` x ``w`` input pixels (padded as :meth:`_run` pads them) per compiled call (one on a CPU)."""
        h, w = h + -h % 8, w + -w % 8
        return max(1, int(self.batch_pixels // (h * w)) if self.batch_pixels else 1)

    def _run(self, tiles: np.ndarray) -> np.ndarray:
        """Labels of a batch of equal tiles (N, h, w, C); pads h, w to multiples of 8 at the end."""
        n, h, w, _ = tiles.shape
        ph, pw = -h % 8, -w % 8
        fn = self._graph(h + ph, w + pw)
        per_call = self._per_call(h, w)
        out = np.empty((n, h, w), np.uint8)
        for i in range(0, n, per_call):
            part = tiles[i : i + per_call]
            if ph or pw:  # only the outer (unreliable) ring can see the padding
                part = np.pad(part, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="symmetric")
            res = keras.ops.convert_to_numpy(fn(part))
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
        ys = _tile_starts(ny, t, h)
        xs = _tile_starts(nx, t, h)
        th = min(ny, t + 2 * h)
        tw = min(nx, t + 2 * h)
        if len(ys) == 1 and len(xs) == 1:
            return self._scoped(lambda: self._run(a))
        windows = [(i, y, x) for i in range(n) for y in ys for x in xs]
        per_call = self._per_call(th, tw)
        out = np.empty((n, ny, nx), np.uint8)
        # the tiles are cut one compiled call's batch at a time: stacking all of a block's
        # overlapping tiles at once would hold about twice the block (more for small tiles)
        for b in range(0, len(windows), per_call):
            batch = windows[b : b + per_call]
            tiles = np.stack([a[i, y : y + th, x : x + tw] for i, y, x in batch])
            labels = self._scoped(functools.partial(self._run, tiles))
            self._place(out, labels, batch, h, th, tw)
        return out

    @staticmethod
    def _place(
        out: np.ndarray, labels: np.ndarray, windows: list[tuple[int, int, int]], h: int, th: int, tw: int
    ) -> None:
        """Write each tile's reliable part into ``out``."""
        ny, nx = out.shape[1:]
        for lab, (i, y, x) in zip(labels, windows):
            # keep the tile's interior; a tile at an edge also fills the unreliable edge ring
            y0 = 0 if y == 0 else y + h
            x0 = 0 if x == 0 else x + h
            y1 = ny if y + th == ny else y + th - h
            x1 = nx if x + tw == nx else x + tw - h
            out[i, y0:y1, x0:x1] = lab[y0 - y : y1 - y, x0 - x : x1 - x]

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


def _tile_starts(n: int, tile: int, halo: int) -> list[int]:
    """Window starts along one axis: windows of ``tile + 2 halo`` whose interiors cover ``[halo, n - halo)``."""
    size = tile + 2 * halo
    if n <= size:
        return [0]
    starts = list(range(0, n - size, tile))
    starts.append(n - size)  # the last window ends at the edge (same shape as the others)
    return sorted(set(starts))


def _copy_on(model: Any, device: str) -> Any:
    """A copy of ``model`` whose weights live on ``device``, built once per process and weights."""

    def build() -> Any:
        with keras.device(device):
            copy = type(model).from_config(model.get_config())
            copy.set_weights(model.get_weights())
        return copy

    return CACHE.get_or_create(("device copy", model.model_id, device), build)


def engine_for(model: Any, device: str | None = None, tile: int | None = None) -> LabelEngine:
    """The cached :class:`LabelEngine` of ``model`` on ``device`` (checked and resolved here).

    Parameters
    ----------
    model : KTexturesNet
        A fitted network.
    device : str, optional
        As for :func:`~xr_ktextures.devices.normalize_device`; None or ``"auto"``: the
        backend's default placement (its GPU when it sees one), with GPU-sized tiles and
        batches there.
    tile : int, optional
        Output tile side; default by device.

    Returns
    -------
    LabelEngine
        From the package's one bounded cache (:mod:`xr_ktextures._cache`): the graphs read
        the network's variables, so refitting needs no new engine.

    Raises
    ------
    DeviceUnavailableError
        If a GPU is named that this process's backend does not see.

    Examples
    --------
    >>> import xr_ktextures as xk
    >>> net = xk.KTextures(k=2).network
    >>> engine_for(net, "cpu").tile, engine_for(net, "cpu") is engine_for(net, "cpu")
    (1024, True)
    """
    wanted = devices.normalize_device(device)
    concrete = devices.resolve_device(wanted)
    target = model if wanted is None else _copy_on(model, concrete)
    # keyed by the target's identity: the entry holds the target, so the id cannot be reused while cached
    return CACHE.get_or_create(
        ("engine", id(target), wanted, tile),
        lambda: LabelEngine(target, wanted, tile, gpu=concrete.startswith("gpu")),
    )
