"""Which parcels lie farther than a distance from every sample (the distance rule).

GEOS's nearest-geometry query of every parcel polygon is the exact answer but costs
seconds at a million parcels. A vertex of a polygon is a point of it, so the distance
from that vertex to its nearest sample (a KD-tree query) bounds the polygon's distance
from above: a parcel whose bound is clearly within the limit is within it, and only the
others are measured by GEOS.
"""

from __future__ import annotations

import numpy as np
import shapely
from scipy.spatial import cKDTree

__all__ = ["farther_than"]

#: a bound must be below limit · (1 − MARGIN) to settle a parcel without GEOS, so that
#: rounding in either distance can never decide a parcel at the limit
MARGIN = 1e-9


def farther_than(polygons: np.ndarray, points: np.ndarray, limit: float) -> np.ndarray:
    """Mask of the ``polygons`` whose distance to the nearest of ``points`` is above
    ``limit`` (shapely geometries in one metric CRS, metres; ``points`` not empty).

    The same mask as ``STRtree(points).query_nearest(polygons, return_distance=True)``'s
    distances ``> limit``.
    """
    polygons = np.asarray(polygons, dtype=object)
    bound = np.full(len(polygons), np.inf)
    xy, which = shapely.get_coordinates(polygons, return_index=True)
    if len(xy):
        first = np.flatnonzero(np.r_[True, which[1:] != which[:-1]])
        samples = shapely.get_coordinates(points)
        bound[which[first]] = cKDTree(samples).query(xy[first], k=1, workers=-1)[0]
    unsure = np.flatnonzero(~(bound <= limit * (1 - MARGIN)))
    far = np.zeros(len(polygons), dtype=bool)
    if len(unsure):
        pairs, dist = shapely.STRtree(points).query_nearest(
            polygons[unsure], return_distance=True, all_matches=False)
        far[unsure[pairs[0]]] = dist > limit
    return far
