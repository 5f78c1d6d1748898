"""Import Keras for the command line without TensorFlow's C++ and absl start-up log lines.

``TF_CPP_MIN_LOG_LEVEL=2`` hides TensorFlow's own INFO and WARNING lines, but since
TensorFlow logs through absl, a few lines written before ``absl::InitializeLog()``
("oneDNN custom operations are on", "Could not find cuda drivers") go straight to file
descriptor 2 whatever that variable says. :func:`import_backend_quietly` holds fd 2
while Keras and its backend are imported, and passes on everything but those INFO and
WARNING lines (errors still show). A user who set ``TF_CPP_MIN_LOG_LEVEL`` gets exactly
what they asked for.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

__all__ = ["filter_native_log", "import_backend_quietly"]

_PRE_INIT = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_HEADER = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ \S+:\d+\] ")


def filter_native_log(text: str) -> str:
    """Drop absl/glog INFO and WARNING lines (and their continuation lines) from ``text``.

    Parameters
    ----------
    text : str
        What was written to stderr.

    Returns
    -------
    str
        The other lines: errors, fatal messages, anything not from the native log.

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
    """
    kept, dropping = [], False
    for line in text.splitlines(keepends=True):
        header = _HEADER.match(line)
        if line.rstrip("\n") == _PRE_INIT:
            dropping = True
        elif header:
            dropping = header.group(1) in "IW"
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


def import_backend_quietly() -> None:
    """Import Keras and its backend with TensorFlow's start-up log noise hidden.

    Sets ``TF_CPP_MIN_LOG_LEVEL=2`` unless the user set it, then, if the user did not,
    imports Keras with fd 2 held and writes back all but the native INFO/WARNING lines.
    Does nothing when Keras is already imported.

    Examples
    --------
    >>> import_backend_quietly()
    >>> import sys; "keras" in sys.modules
    True
    """
    if "keras" in sys.modules:
        return
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:  # the user's choice: leave the log as it is
        import keras

        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    fd, path = tempfile.mkstemp(prefix="xr-ktextures-", suffix=".log")
    os.close(fd)
    try:
        try:
            with _fd2_to(path):
                import keras  # noqa: F401
        finally:
            with open(path, encoding="utf-8", errors="replace") as f:
                sys.stderr.write(filter_native_log(f.read()))
            sys.stderr.flush()
    finally:
        os.remove(path)
