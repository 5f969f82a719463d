"""Reading the same GeoPackage layer once per process while the file is unchanged.

``farmland demo`` runs a dozen subcommands in one process, and most of them read the
parcels of the same ``classification.gpkg`` (30 000 polygons: ≈ 0.3 s each time). Inside
:func:`reusing_reads` a layer read with :func:`read_dataframe` is kept in memory and each
later read of the same layer with the same options returns a copy, as long as the file's
size, modification time and inode are unchanged (the outputs are written atomically: a
rewritten file is a new inode). Outside the context every call reads the file, as before.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyogrio

#: at most this many tables are kept (the demo reuses 4–5)
MAX_KEPT = 16


class Kept:
    """Values kept by key while a :meth:`scope` is open (at most ``limit``, the oldest
    dropped first); outside any scope nothing is kept. One mechanism for the reads here
    and other work a run repeats (:mod:`farmland.geostats.located`)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._kept: dict[Any, Any] | None = None

    @property
    def active(self) -> bool:
        return self._kept is not None

    @contextmanager
    def scope(self) -> Iterator[None]:
        """Keep values until the outermost scope ends."""
        outer = self._kept
        if outer is None:
            self._kept = {}
        try:
            yield
        finally:
            if outer is None:
                self._kept = None

    def get(self, key: Any, make: Callable[[], Any]) -> Any:
        """The value kept under ``key``, else ``make()`` (kept when a scope is open)."""
        if self._kept is None or key is None:
            return make()
        if key not in self._kept:
            if len(self._kept) >= self.limit:
                self._kept.pop(next(iter(self._kept)))
            self._kept[key] = make()
        return self._kept[key]


_reads = Kept(MAX_KEPT)


def reusing_reads():
    """Serve repeated reads of unchanged files from memory until the context ends."""
    return _reads.scope()


def _key(kind: str, path: str | os.PathLike, kwargs: dict[str, Any]) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None  # let the reader raise its own error
    options = tuple(sorted((k, repr(v)) for k, v in kwargs.items()))
    return (kind, str(Path(path).resolve()), st.st_ino, st.st_size, st.st_mtime_ns, options)


def _reuse(kind: str, path: str | os.PathLike, kwargs: dict[str, Any], read, copy):
    key = _key(kind, path, kwargs) if _reads.active else None
    return read() if key is None else copy(_reads.get(key, read))


def read_dataframe(path: str | os.PathLike, **kwargs: Any) -> pd.DataFrame:
    """``pyogrio.read_dataframe(path, **kwargs)``; a copy of the table read earlier inside
    :func:`reusing_reads` when the file has not changed since."""
    return _reuse("table", path, kwargs, lambda: pyogrio.read_dataframe(path, **kwargs),
                  lambda frame: frame.copy())


def list_layers(path: str | os.PathLike):
    """``pyogrio.list_layers(path)`` (``[[name, geometry type], ...]``), remembered inside
    :func:`reusing_reads` like :func:`read_dataframe`."""
    return _reuse("layers", path, {}, lambda: pyogrio.list_layers(path),
                  lambda names: names.copy())
