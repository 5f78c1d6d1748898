"""Import Keras without TensorFlow's C++ and absl start-up log lines (the command line, and fit & co.).

``TF_CPP_MIN_LOG_LEVEL=2`` hides TensorFlow's own INFO and WARNING lines, but since
TensorFlow logs through absl, a few lines written before ``absl::InitializeLog()``
("oneDNN custom operations are on", "Could not find cuda drivers") go straight to file
descriptor 2 whatever that variable says (in Jupyter, ipykernel forwards them into the
cell's output). :func:`import_backend_quietly` holds fd 2 while Keras and its backend
are imported, and passes on everything but the native lines below
``TF_CPP_MIN_LOG_LEVEL`` (INFO and WARNING when unset; errors still show), so those
lines obey that variable like TensorFlow's others. ``fit``, ``segment``, ``simulate``
and ``load_model`` import Keras through it; the command line also sets
``TF_CPP_MIN_LOG_LEVEL=2`` when unset. ``TF_CPP_MIN_LOG_LEVEL=0`` shows everything.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator

__all__ = ["filter_native_log", "import_backend_quietly"]

_PRE_INIT = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_HEADER = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ \S+:\d+\] ")


def filter_native_log(text: str, level: int = 2) -> str:
    """Drop absl/glog lines below ``level`` (and their continuation lines) from ``text``.

    ``level`` means what ``TF_CPP_MIN_LOG_LEVEL`` means: 0 keeps all, 1 drops INFO,
    2 drops INFO and WARNING, 3 also ERROR.

    Parameters
    ----------
    text : str
        What was written to stderr.
    level : int
        The lowest severity kept.

    Returns
    -------
    str
        The other lines: anything at or above ``level``, anything not from the native log.

    Examples
    --------
    >>> log = (
    ...     "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n"
    ...     "I0000 00:00:1795597961.823579    3357 cpu_feature_guard.cc:227] This TensorFlow binary ...\\n"
    ...     "To enable the following instructions: AVX2 FMA, rebuild TensorFlow.\\n"
    ...     "E0000 00:00:1795597961.823905    3357 cuda_driver.cc:10] failed call to cuInit\\n"
    ... )
    >>> print(filter_native_log(log), end="")
    E0000 00:00:1795597961.823905    3357 cuda_driver.cc:10] failed call to cuInit
    >>> filter_native_log(log, level=0) == log
    True
    """
    if level <= 0:
        return text
    kept, dropping = [], False
    for line in text.splitlines(keepends=True):
        header = _HEADER.match(line)
        if line.rstrip("\n") == _PRE_INIT:
            dropping = True
        elif header:
            dropping = "IWEF".index(header.group(1)) < level
        if not dropping:
            kept.append(line)
    return "".join(kept)


@contextlib.contextmanager
def _fd2_to(path: str) -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(path, "wb") as f:
            os.dup2(f.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


class _KerasRetracingFilter:
    """Drops TensorFlow's "triggered tf.function retracing" warning about Keras' own step functions.

    Every fitted model compiles its own train step (and every labelled tile shape its own
    predict step) once: new functions, not retraces of one function. TensorFlow's
    heuristic counts traces per code location across function objects, so a notebook
    that fits a few models in a row was told, wrongly, that something retraces. Only
    that warning about Keras' trainer functions is dropped; any other retracing warning
    (user code) still shows.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not ("triggered tf.function retracing" in msg and "TensorFlowTrainer" in msg)


_RETRACING_FILTER = _KerasRetracingFilter()


def import_backend_quietly(*, set_level: bool = True) -> None:
    """Import Keras and its backend with TensorFlow's start-up log noise hidden.

    Keras is imported with fd 2 held; what was written there is passed on but for the
    native log lines below ``TF_CPP_MIN_LOG_LEVEL`` (2 when unset: INFO and WARNING), the
    level TensorFlow itself applies to its later lines. ``TF_CPP_MIN_LOG_LEVEL=0`` shows
    everything. Does nothing when Keras is already imported.

    Parameters
    ----------
    set_level : bool
        When ``TF_CPP_MIN_LOG_LEVEL`` is unset, set it to 2 for the rest of the process
        (the command line does; the library leaves the environment alone).

    Examples
    --------
    >>> import_backend_quietly()
    >>> import sys; "keras" in sys.modules
    True
    """
    tf_log = logging.getLogger("tensorflow")
    if _RETRACING_FILTER not in tf_log.filters:
        tf_log.addFilter(_RETRACING_FILTER)
    if "keras" in sys.modules:
        return
    value = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    if value is None and set_level:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    try:
        level = 2 if value is None else int(value)
    except ValueError:
        level = 0
    if level <= 0:
        import keras

        return
    fd, path = tempfile.mkstemp(prefix="xr-ktextures-", suffix=".log")
    os.close(fd)
    try:
        try:
            with _fd2_to(path):
                import keras  # noqa: F401
        finally:
            with open(path, encoding="utf-8", errors="replace") as f:
                sys.stderr.write(filter_native_log(f.read(), level))
            sys.stderr.flush()
    finally:
        os.remove(path)
