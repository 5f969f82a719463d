"""The leave-one-out moments a run keeps for the next run of the same job
(``loo_moments.parquet`` in the run folder, :class:`farmland.geostats.crossval.LooMemory`).

An incremental run (:mod:`farmland.runs.incremental`) reads its previous run's file and
solves the leave-one-out kriging systems only at the sample locations a change can reach;
the rest keep the stored moments, bit for bit. One row per variable and location:
``variable, x, y, value`` (working scale, duplicates merged) and ``mean, variance, mu``;
the file's metadata holds each variable's model and neighbourhood key. Written only for
runs in a workspace (nothing else can reuse it); a missing or unreadable file only makes
the next run solve every system.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from farmland import __version__
from farmland.geostats.crossval import LooMemory

__all__ = ["read_loo_memories", "write_loo_memories"]

log = logging.getLogger(__name__)

_KEYS = b"farmland_loo_keys"
_VERSION = b"farmland_version"


def write_loo_memories(path: Path, memories: dict[str, LooMemory]) -> None:
    """Write ``memories`` (by variable) to the Parquet file ``path``."""
    names = list(memories)
    sizes = [len(memories[v].values) for v in names]
    table = pa.table({
        "variable": np.repeat(np.array(names, dtype=object), sizes).astype(str),
        "x": _cat([memories[v].coords[:, 0] for v in names]),
        "y": _cat([memories[v].coords[:, 1] for v in names]),
        "value": _cat([memories[v].values for v in names]),
        "mean": _cat([memories[v].moments[0] for v in names]),
        "variance": _cat([memories[v].moments[1] for v in names]),
        "mu": _cat([memories[v].moments[2] for v in names]),
    })
    keys = json.dumps({v: list(memories[v].key) for v in names})
    table = table.replace_schema_metadata({_KEYS: keys.encode(),
                                           _VERSION: __version__.encode()})
    pq.write_table(table, path, compression="zstd")


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0)


def read_loo_memories(path: Path) -> dict[str, LooMemory]:
    """The memories in ``path`` by variable (empty when the file is missing or unreadable)."""
    if not Path(path).is_file():
        return {}
    try:
        table = pq.read_table(path)
        meta = table.schema.metadata
        if meta.get(_VERSION, b"").decode() != __version__:  # another kriging code
            return {}
        keys = json.loads(meta[_KEYS])
        frame = table.to_pandas()
    except Exception as exc:  # noqa: BLE001 - unreadable: every system is solved again
        log.info("leave-one-out moments %s not readable (%s): all are computed", path, exc)
        return {}
    out = {}
    for variable, rows in frame.groupby("variable", sort=False).indices.items():
        part = frame.iloc[rows]
        out[variable] = LooMemory(
            tuple(keys[variable]), part[["x", "y"]].to_numpy(float),
            part["value"].to_numpy(float),
            part[["mean", "variance", "mu"]].to_numpy(float).T.copy())
    return out
