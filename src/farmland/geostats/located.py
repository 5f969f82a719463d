"""Sample locations as the estimators use them — duplicates averaged, a KD-tree of the
distinct locations — prepared once per set of samples inside :func:`reusing_locations`.

A classification run fits the same samples of a variable several times: the refit rule's
trial fit, each pass of the leave-one-out screen and the classification itself (about 24
fits of 100 000 samples in a province, each sorting the locations and building a tree).
Inside the context each prepared set is kept under a BLAKE2 digest of its coordinates and
working-scale values, and a later fit of the same samples gets copies of the arrays and the
same tree (a :class:`~scipy.spatial.cKDTree` is not changed by queries); every fit logs the
averaged duplicates as before. Outside the context every fit prepares its samples.
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np
from scipy.spatial import cKDTree

from farmland.geostats.kriging import unique_locations
from farmland.io.read_cache import Kept

logger = logging.getLogger("farmland.geostats.estimators")  # where these lines were logged

#: at most this many prepared sets are kept (six variables, before and after a screen)
_located = Kept(12)


def reusing_locations():
    """Keep the prepared locations of every set of samples fitted until the context ends."""
    return _located.scope()


def _log_merged(counts: np.ndarray) -> None:
    if (counts > 1).any():
        logger.info(
            "averaged %d samples sharing %d locations",
            int(counts[counts > 1].sum()),
            int((counts > 1).sum()),
        )


def located_samples(
    xy: np.ndarray, z: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, cKDTree]:
    """``(coords, values, location, tree)`` of checked samples: the distinct locations
    (sorted by x, then y), the mean value at each, the row of each sample's location
    (``location[i]`` holds sample ``i``) and a KD-tree of ``coords``; copies of those kept
    for the same samples inside :func:`reusing_locations` (the same tree)."""
    key = None
    if _located.active:
        digest = hashlib.blake2b(np.ascontiguousarray(xy, dtype=float).tobytes())
        digest.update(np.ascontiguousarray(z, dtype=float).tobytes())
        key = digest.digest() + len(z).to_bytes(8, "little")
    coords, values, location, counts, tree = _located.get(key, lambda: _prepared(xy, z))
    _log_merged(counts)  # by every fit, as when each merged its own
    if key is None:
        return coords, values, location, tree
    return coords.copy(), values.copy(), location.copy(), tree


def _prepared(xy: np.ndarray, z: np.ndarray) -> tuple:
    unique, location, counts = unique_locations(xy)
    values = np.bincount(location, weights=z) / counts
    return unique, values, location, counts, cKDTree(unique)
