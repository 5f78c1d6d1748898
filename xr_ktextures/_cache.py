"""The one process-wide cache: models rebuilt from handles, their device copies, label engines.

Bounded (least recently used entries are dropped beyond :data:`MAX_ENTRIES`), so a
long-lived worker that meets many models does not keep them all. An entry that is still
in use elsewhere stays alive through that reference; dropping it only means the next
lookup builds it again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

__all__ = ["CACHE", "MAX_ENTRIES", "BoundedCache"]

T = TypeVar("T")

MAX_ENTRIES = 32
"""Entries kept by :data:`CACHE` (a model, a device copy and an engine per model and device)."""


class BoundedCache:
    """A thread-safe least-recently-used mapping with :meth:`get_or_create`.

    Parameters
    ----------
    maxsize : int
        Entries kept; the least recently used beyond it are dropped.

    Examples
    --------
    >>> cache = BoundedCache(2)
    >>> cache.get_or_create("a", lambda: 1), cache.get_or_create("a", lambda: 2)
    (1, 1)
    >>> _ = cache.get_or_create("b", lambda: 3); _ = cache.get_or_create("c", lambda: 4)
    >>> "a" in cache, len(cache)
    (False, 2)
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = int(maxsize)
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.RLock()  # re-entrant: building an engine builds a device copy

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The entry for ``key`` (now the most recently used), or ``default``."""
        with self._lock:
            if key not in self._items:
                return default
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Hashable, value: T) -> T:
        """Store ``value`` under ``key`` unless an entry is there; returns the entry kept."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]  # type: ignore[no-any-return]
            self._items[key] = value
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
            return value

    def get_or_create(self, key: Hashable, factory: Callable[[], T]) -> T:
        """The entry for ``key``, made by ``factory()`` (once, under the lock) when absent."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]  # type: ignore[no-any-return]
            return self.put(key, factory())

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


CACHE = BoundedCache(MAX_ENTRIES)
"""The package's one process-wide cache (see the module docstring)."""
