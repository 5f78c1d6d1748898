"""Progress reporting: the library's logger, plain-line training progress, and a window bar.

Everything the package says about its progress goes through the standard ``logging``
logger ``"xr_ktextures"`` (INFO level), so a script or a pipeline routes it like any
other log. While :func:`xr_ktextures.fit` runs with ``verbose`` on and logging is not
configured, those messages are shown on stdout (see :func:`stage_messages`).

Keras' own progress bar redraws itself with backspaces and ANSI escapes: fine in a
terminal or Jupyter, thousands of control characters in a log file. Where stdout is
neither, training progress is written as plain lines instead (:func:`training_display`).

Importing this module does not import Keras.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["WindowBar", "dynamic_display", "log_timing", "logger", "stage_messages", "training_display"]

logger = logging.getLogger("xr_ktextures")
"""The package's logger; fit says here what it is doing (sampling, initialising, training)."""


def log_timing(stage: str, t0: float) -> None:
    """A debug record of a fit stage's wall time since ``t0`` (``extra``: ``stage``, ``seconds``; benchmarks/fit.py)."""
    dt = time.perf_counter() - t0
    logger.debug("%s took %.1f s", stage, dt, extra={"stage": stage, "seconds": dt})


def dynamic_display(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default ``sys.stdout``) can redraw a bar: a terminal or a Jupyter kernel.

    Parameters
    ----------
    stream : file-like, optional
        Default ``sys.stdout`` (looked up at call time).

    Returns
    -------
    bool
        True in a terminal or a Jupyter kernel; False for files and pipes.

    Examples
    --------
    >>> import io
    >>> dynamic_display(io.StringIO())
    False
    """
    stream = sys.stdout if stream is None else stream
    if type(stream).__module__.startswith("ipykernel"):  # Jupyter's OutStream renders \r and \b
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


@contextlib.contextmanager
def stage_messages(verbose: Any) -> Iterator[None]:
    """Show the package's INFO messages on stdout while ``verbose`` is on and logging is unconfigured.

    When the application configured logging (a handler on the root logger or on
    ``"xr_ktextures"``), messages go there at the level it chose, and nothing is added.

    Parameters
    ----------
    verbose : int, bool or str
        ``fit``'s ``verbose``; 0/False shows nothing.

    Yields
    ------
    None
        Within the block, ``logger.info(...)`` lines appear on stdout.

    Examples
    --------
    In a script that did not configure logging, ``verbose=1`` prints the messages:

    >>> with stage_messages(verbose=0):  # silent: only a configured logging shows it
    ...     logger.info("computing a sample")
    """
    if not verbose or logger.hasHandlers():
        yield
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def training_display(verbose: Any, steps: int) -> tuple[int | str, list[Any]]:
    """Keras' ``verbose`` and the callbacks that give readable training progress here.

    In a terminal or Jupyter, Keras' own bar (``verbose`` as given). Elsewhere (a file,
    a pipe, a CI log), Keras is silenced and a :class:`PlainProgress` callback logs one
    plain line at every tenth of the steps (``verbose`` 1 or "auto") or at the end
    only (``verbose=2``).

    Parameters
    ----------
    verbose : int, bool or str
        0 (silent), 1 or "auto" (progress), 2 (one line).
    steps : int
        Number of training steps.

    Returns
    -------
    (int or str, list)
        ``verbose`` for Keras' progress bar, and the callbacks to add.

    Examples
    --------
    >>> training_display(0, 300)
    (0, [])
    """
    if not verbose:
        return 0, []
    if dynamic_display():
        return verbose, []
    return 0, [_plain_progress(steps, every=0 if verbose == 2 else max(1, steps // 10))]


def _plain_progress(steps: int, every: int) -> Any:
    import keras

    class PlainProgress(keras.callbacks.Callback):
        """Logs ``training: step i/n, loss ..., elapsed`` as plain lines (no control characters)."""

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            self._t0 = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            done = batch + 1
            if done == steps or (every and done % every == 0):
                metrics = ", ".join(f"{k} {float(v):.4g}" for k, v in (logs or {}).items())
                elapsed = time.perf_counter() - self._t0
                logger.info("training: step %d/%d, %s, %.1f s", done, steps, metrics or "no metrics", elapsed)

    return PlainProgress()


class WindowBar:
    """One progress bar over a known number of units (e.g. the windows :func:`~xr_ktextures.write_zarr` writes).

    Uses ``tqdm.auto`` when it is installed (a widget in Jupyter). Otherwise a text bar
    redrawn in place on a terminal or in Jupyter, and plain lines at every tenth of the
    total elsewhere, so a log file holds no control characters.

    Parameters
    ----------
    total : int
        Number of units.
    desc : str
        What is being done, shown before the count.
    stream : file-like, optional
        Where to write (default ``sys.stdout``, like ``dask.diagnostics.ProgressBar``).
    use_tqdm : bool
        Use ``tqdm.auto`` when it is installed (default); False: always the text bar.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> with WindowBar(4, "writing", stream=out, use_tqdm=False) as bar:
    ...     for _ in range(4):
    ...         bar.update()
    >>> print(out.getvalue().splitlines()[-1])
    writing: 4/4 windows (100%)
    """

    def __init__(self, total: int, desc: str, *, stream: TextIO | None = None, use_tqdm: bool = True) -> None:
        self.total, self.desc, self.done = int(total), desc, 0
        self._stream = sys.stdout if stream is None else stream
        self._tqdm: Any = None
        if use_tqdm:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                pass
            else:
                self._tqdm = tqdm(total=self.total, desc=desc, unit="window", file=self._stream)
        self._dynamic = dynamic_display(self._stream)
        self._every = max(1, self.total // 10)
        if self._tqdm is None:
            self._write(final=False)

    def _write(self, final: bool) -> None:
        pct = 100 * self.done // max(self.total, 1)
        text = f"{self.desc}: {self.done}/{self.total} windows ({pct}%)"
        if self._dynamic:
            width = 30
            fill = width * self.done // max(self.total, 1)
            self._stream.write(f"\r[{'#' * fill}{' ' * (width - fill)}] {text}" + ("\n" if final else ""))
        else:
            self._stream.write(text + "\n")
        self._stream.flush()

    def update(self, n: int = 1) -> None:
        """Count ``n`` more units done.

        Parameters
        ----------
        n : int
            Units just finished.
        """
        before, self.done = self.done, self.done + n
        if self._tqdm is not None:
            self._tqdm.update(n)
        elif self._dynamic or self.done == self.total or self.done // self._every > before // self._every:
            self._write(final=self._dynamic and self.done >= self.total)

    def close(self) -> None:
        """Finish the bar (a newline after a redrawn bar)."""
        if self._tqdm is not None:
            self._tqdm.close()
        elif self._dynamic and self.done < self.total:
            self._stream.write("\n")
            self._stream.flush()

    def __enter__(self) -> WindowBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
