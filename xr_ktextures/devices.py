"""Device names: check and canonicalise what the user wrote; find what the backend sees.

:func:`normalize_device` is plain string work and imports nothing heavy, so the public
functions check a device name before building any graph. :func:`available_gpus`,
:func:`device_memory` and :func:`resolve_device` ask the Keras backend, and import it
when called.
"""

from __future__ import annotations

import os
import re

from ._errors import DeviceUnavailableError, InputError

__all__ = [
    "DeviceUnavailableError",
    "available_gpus",
    "device_memory",
    "normalize_device",
    "resolve_device",
    "seed_backend",
]

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
    import keras

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
    import keras

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

            import keras

            raise DeviceUnavailableError(
                f"device {device!r} was requested but the {keras.backend.backend()} backend on "
                f"{socket.gethostname()} (pid {os.getpid()}) sees {n} GPU(s). Use device='auto' "
                "(GPU when present, else CPU) or 'cpu', or run on GPU workers (e.g. dask-cuda)."
            )
    return device


def seed_backend(seed: int) -> None:
    """Seed Python's and NumPy's global generators and the Keras backend's, as :func:`keras.utils.set_random_seed` does.

    Under the TensorFlow backend this *is* ``keras.utils.set_random_seed``. Under JAX and
    PyTorch that function also imports TensorFlow whenever it is installed, to seed it:
    0.5 GB of resident memory and seconds of start-up in a process that never runs it
    (the out-of-core compute's budget, ``docs/scaling.md``). Keras' initializers without a
    seed draw theirs from Python's ``random``, so seeding it, NumPy and PyTorch gives the
    same weights without that import.

    Parameters
    ----------
    seed : int
        The seed.

    Examples
    --------
    >>> import random
    >>> seed_backend(3); a = random.random()
    >>> seed_backend(3); a == random.random()
    True
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        keras.utils.set_random_seed(seed)
        return
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - the legacy global generator, as keras.utils.set_random_seed seeds it
    if backend == "torch":
        import torch

        torch.manual_seed(seed)
