"""Contiguous zones and strict-control zone candidates (farmland.sampling.zones)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import make_parcels, make_points

from farmland.errors import CRSError, InputError
from farmland.sampling.zones import class_zones, contiguous_labels, strict_control_zones


def _parcels(rows):
    """rows: dicts of columns with ``box`` (metres from the origin X0, Y0 of conftest)."""
    df = pd.DataFrame(rows)
    return make_parcels(df.pop("box").tolist(), **df.to_dict(orient="list"))


def _samples(xy, ids=None):
    ids = ids or [f"S{i}" for i in range(len(xy))]
    return make_points(xy, sample_id=ids, usable=True)


@pytest.fixture
def layout():
    # A|B touch, D is 0.5 m to the right of B (joins with a 1 m gap),
    # C stands alone, E is class 2 and touches B (other class: not joined),
    # F is class 3 and 5 m from D (its own zone with a 1 m gap; joined with the default
    # 30 m, the width of a ditch or field road between land-survey parcels).
    return _parcels([
        {"parcel_id": "A", "township": "T1", "final_class": 3, "driving_element": "cd",
             "box": (0, 0, 100, 100)},
        {"parcel_id": "B", "township": "T1", "final_class": 3, "driving_element": "cd",
             "box": (100, 0, 200, 100)},
        {"parcel_id": "D", "township": "T2", "final_class": 3, "driving_element": "pb",
             "box": (200.5, 0, 300, 100)},
        {"parcel_id": "C", "township": "T2", "final_class": 3, "driving_element": "as",
             "box": (1000, 0, 1100, 100)},
        {"parcel_id": "E", "township": "T1", "final_class": 2, "driving_element": "cd",
             "box": (100, 100, 200, 200)},
        {"parcel_id": "F", "township": "T2", "final_class": 3, "driving_element": None,
             "box": (305, 0, 405, 100)},
    ])


def test_contiguous_labels_join_touching_and_snapped_only():
    geoms = np.array([shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1),
                      shapely.box(2.5, 0, 3, 1), shapely.box(10, 0, 11, 1)])
    assert contiguous_labels(geoms, tolerance=0).tolist() == [0, 0, 1, 2]
    assert contiguous_labels(geoms, tolerance=1.0).tolist() == [0, 0, 0, 1]


def test_strict_control_zones_area_samples_and_order(layout):
    samples = _samples([(50, 50), (100, 50), (1050, 50), (150, 150), (5000, 5000)])
    zones = strict_control_zones(layout, samples, tolerance=1.0)
    assert zones["zone_gap_m"].tolist() == [1.0, 1.0, 1.0]
    # zone 1 = A + B + D: 15 + 15 + 14.925 亩 (D is 99.5 m x 100 m = 9950 m²)
    # zone 2 = F (15 亩) and zone 3 = C (15 亩): equal areas, ordered by parcel id C < F
    assert zones["zone_id"].tolist() == ["SC001", "SC002", "SC003"]
    assert zones["parcel_ids"].tolist() == ["A,B,D", "C", "F"]
    assert zones["area_mu"].tolist() == pytest.approx([44.925, 15.0, 15.0])
    assert zones["area_hm2"].iloc[0] == pytest.approx(44.925 / 15)
    assert zones["n_parcels"].tolist() == [3, 1, 1]
    # S0 inside A, S1 on the A|B edge (counted once), S2 inside C; S3 is in class-2 E
    assert zones["n_samples"].tolist() == [2, 1, 0]
    assert zones["township"].tolist() == ["T1", "T2", "T2"]
    assert zones["other_townships"].tolist() == ["T2", "", ""]
    assert zones["driving_elements"].tolist() == ["cd,pb", "as", ""]
    assert zones.geometry.iloc[0].area == pytest.approx(100 * 100 * 2 + 99.5 * 100)
    assert zones.crs.to_epsg() == 4545


def test_the_default_zone_gap_joins_parcels_across_a_ditch(layout):
    zones = strict_control_zones(layout, None)
    # F lies 5 m from D: with the default 30 m gap A + B + D + F are one zone, C stays alone
    assert zones["parcel_ids"].tolist() == ["A,B,D,F", "C"]
    assert zones["area_mu"].tolist() == pytest.approx([59.925, 15.0])
    assert zones["zone_gap_m"].tolist() == [30.0, 30.0]
    # 29.9 m apart: joined; 30.1 m apart: not
    geoms = np.array([shapely.box(0, 0, 10, 10), shapely.box(39.9, 0, 50, 10),
                      shapely.box(80.1, 0, 90, 10)])
    assert contiguous_labels(geoms, tolerance=30.0).tolist() == [0, 0, 1]


def test_class_zones_of_class_2_and_no_zones(layout):
    z2 = class_zones(layout, None, final_class=2)
    assert z2["zone_id"].tolist() == ["SU001"]
    assert z2["n_samples"].tolist() == [0]
    z1 = class_zones(layout, None, final_class=1)
    assert z1.empty and "zone_id" in z1


def test_unusable_samples_are_not_counted(layout):
    samples = _samples([(50, 50), (60, 60)])
    samples["usable"] = [True, False]
    assert strict_control_zones(layout, samples)["n_samples"].iloc[0] == 1


def test_inputs_not_mutated_and_errors(layout):
    before = layout.copy()
    strict_control_zones(layout, _samples([(50, 50)]))
    pd.testing.assert_frame_equal(layout, before)
    with pytest.raises(CRSError, match="projected metric CRS"):
        strict_control_zones(layout.to_crs(4490), None)
    with pytest.raises(InputError, match="lacks column.*final_class"):
        strict_control_zones(layout.drop(columns="final_class"), None)
