"""The distance rule's test: parcels farther than a limit from every sample."""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Point, box

from farmland.classify.reach import farther_than


def test_farther_than_by_hand():
    square = box(0, 0, 10, 10)  # first vertex (10, 0)... GEOS measures the edges
    away = box(100, 100, 110, 110)
    both = MultiPolygon([box(200, 0, 201, 1), box(0, 200, 1, 201)])
    points = np.array([Point(20, 5), Point(0, 195)])
    polygons = np.array([square, away, both])
    # distances: square 10 (edge x = 10), away 124.2 (to (20, 5): hypot(80, 95) = 124.2; to
    # (0, 195): hypot(100, 85) = 131.2, so 124.2), both 5 (its second part at y = 200)
    assert farther_than(polygons, points, 10.0).tolist() == [False, True, False]
    assert farther_than(polygons, points, 9.99).tolist() == [True, True, False]
    assert farther_than(polygons, points, 4.99).tolist() == [True, True, True]
    assert farther_than(polygons, points, 124.3).tolist() == [False, False, False]


def test_farther_than_is_the_nearest_query():
    rng = np.random.default_rng(3)
    corners = rng.uniform(0, 5000, size=(2000, 2))
    polygons = shapely.box(corners[:, 0], corners[:, 1], corners[:, 0] + rng.uniform(5, 80, 2000),
                           corners[:, 1] + rng.uniform(5, 80, 2000))
    points = shapely.points(rng.uniform(0, 5000, size=(60, 2)))
    _, dist = shapely.STRtree(points).query_nearest(polygons, return_distance=True,
                                                    all_matches=False)
    for limit in (50.0, 300.0, float(np.median(dist)), float(dist[7])):
        np.testing.assert_array_equal(farther_than(polygons, points, limit), dist > limit)
