"""Contaminated-land clusters, the flow network, the wind rose and the candidate ranking
(farmland.sources.{clusters,network,wind,candidates,confirm}), on hand-built layouts."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import CRS, X0, Y0, make_parcels, make_points, make_samples

from farmland.sources.candidates import EvidenceLayers, rank_candidates
from farmland.sources.clusters import contaminated_clusters
from farmland.sources.confirm import ConfirmRule, confirmation_samples
from farmland.sources.network import FlowNetwork
from farmland.sources.wind import bearing_deg, downwind_share


def _lines(coords, names, kinds=None):
    geoms = [shapely.LineString([(X0 + x, Y0 + y) for x, y in c]) for c in coords]
    return gpd.GeoDataFrame({"name": names, "kind": kinds or ["river"] * len(names)},
                            geometry=geoms, crs=CRS)


# ----------------------------------------------------------------------------- network
@pytest.fixture
def network():
    # main river A flows west → east along y = 0; tributary B flows south into A at x = 500;
    # canal C leaves A at x = 200 and flows south
    return FlowNetwork(_lines([[(0, 0), (1000, 0)], [(500, 800), (500, 0)],
                               [(200, 0), (200, -600)]], ["A", "B", "C"],
                              ["river", "river", "canal"]))


def test_network_distance_follows_flow_through_junctions(network):
    reach = network.reach(X0 + 510, Y0 + 700)  # beside B, 700 m above the confluence
    assert reach.offset_m == pytest.approx(10.0)
    end_of_a = network.tree.query([X0 + 1000, Y0])[1]
    assert reach.distance[end_of_a] == pytest.approx(700 + 500, abs=0.01)  # down B, then east on A
    upstream_a = network.tree.query([X0 + 100, Y0])[1]
    canal_end = network.tree.query([X0 + 200, Y0 - 600])[1]
    assert np.isinf(reach.distance[upstream_a])  # water does not flow up A
    assert np.isinf(reach.distance[canal_end])  # the canal leaves A above the confluence


def test_canal_takes_water_from_the_river(network):
    reach = network.reach(X0 + 100, Y0 + 40)
    canal_end = network.tree.query([X0 + 200, Y0 - 600])[1]
    assert reach.distance[canal_end] == pytest.approx(100 + 600, abs=0.01)
    path = reach.path_to(canal_end)
    assert path[0] == reach.outfall and path[-1] == canal_end
    assert network.line_name(canal_end) == "C"


def test_source_far_from_the_network_has_no_reach(network):
    assert network.reach(X0 + 5000, Y0 + 5000, max_offset=2000) is None


# ---------------------------------------------------------------------------------- wind
def test_bearing_is_clockwise_from_north():
    assert bearing_deg(0, 0, 1, 0) == pytest.approx(90)
    assert bearing_deg(0, 0, 0, -1) == pytest.approx(180)
    assert bearing_deg(0, 0, -1, 1) == pytest.approx(315)


def test_downwind_share_of_a_northerly_rose():
    rose = pd.DataFrame({"direction_deg": np.arange(16) * 22.5,
                         "frequency": [0.5] + [0.5 / 15] * 15})
    # a receptor south of the source is downwind of the north wind, half the time
    share, ratio = downwind_share(rose, 180.0)
    assert share == pytest.approx(0.5)
    assert ratio == pytest.approx(0.5 / (22.5 / 360))
    # north of the source: only the south sector blows there
    assert downwind_share(rose, 0.0)[0] == pytest.approx(0.5 / 15)
    # an arc covering half of the N sector and half of the NNW one
    assert downwind_share(rose, 180 - 11.25)[0] == pytest.approx(0.25 + 0.25 / 15)
    # a receptor spanning the whole horizon gets every wind: share 1, ratio 1
    assert downwind_share(rose, 90.0, half_width=180.0) == pytest.approx((1.0, 1.0))


# ------------------------------------------------------------------------------ clusters
@pytest.fixture
def county():
    # P0|P1 class 3 and class 2 touching; P2 class 2, 20 m east of P1 (one cluster at the
    # 30 m gap); P3 class 1; P4 class 3 alone 2 km away
    boxes = [(0, 0, 100, 100), (100, 0, 200, 100), (220, 0, 320, 100), (400, 0, 500, 100),
             (2000, 0, 2100, 100)]
    return make_parcels(boxes, final_class=[3, 2, 2, 1, 3], township=["T1"] * 4 + ["T2"],
                        driving_element=["cd", "cd", "pb", None, "cd"])


def _county_samples():
    # three samples in the first cluster, two outside (the background), one in P4
    return make_samples([(50, 50), (150, 50), (270, 50), (450, 50), (450, 80), (2050, 50)],
                        cd=[1.2, 0.8, 0.4, 0.2, 0.2, 0.6], pb=[40, 40, 200, 40, 40, 40],
                        zn=100.0, ph=[6.0, 6.0, 6.0, 6.0, 6.0, 8.0], usable=True,
                        pi_cd=[4.0, 2.0, 1.3, 0.7, 0.7, 1.0])


def test_clusters_join_within_the_gap_and_describe_the_land(county):
    found = contaminated_clusters(county, _county_samples(), gap=30.0)
    c = found.clusters.set_index("cluster_id")
    assert list(c.index) == ["CL001", "CL002"]
    assert c.loc["CL001", "area_mu"] == pytest.approx(45.0)  # 3 x 1 ha = 45 亩
    assert c.loc["CL001", "area_class3_mu"] == pytest.approx(15.0)
    assert c.loc["CL001", "area_class2_mu"] == pytest.approx(30.0)
    assert c.loc["CL001", "n_samples"] == 3
    # cd drives 30 of 45 亩, pb 15 of 45: both at least a fifth of the area
    assert c.loc["CL001", "dominant_elements"] == "cd,pb"
    assert c.loc["CL001", "conc_cd"] == pytest.approx(0.8)  # median of 1.2, 0.8, 0.4
    assert c.loc["CL001", "ef_cd"] == pytest.approx(0.8 / 0.2)  # background: P3's samples
    assert c.loc["CL001", "pi_median_cd"] == pytest.approx(2.0)
    assert c.loc["CL001", "pi_p90_cd"] == pytest.approx(2.0 + 0.8 * (4.0 - 2.0))
    # one sample in CL002: its signature comes from the 3 nearest samples
    assert c.loc["CL002", "signature_basis"].startswith("3 nearest")
    assert found.sample_cluster.to_dict() == {"S0": "CL001", "S1": "CL001", "S2": "CL001",
                                              "S3": "", "S4": "", "S5": "CL002"}
    assert contaminated_clusters(county, _county_samples(), gap=10.0).clusters.shape[0] == 3


# ---------------------------------------------------------------------------- candidates
def _enterprises(xy, ids, metals):
    return make_points(xy, source_id=ids, name=ids, industry="", metals=metals)


def test_near_field_share_and_signature_by_hand(county):
    found = contaminated_clusters(county, _county_samples(), gap=30.0)
    ent = _enterprises([(150, 1050), (150, 50_000)], ["E1", "E2"], ["cd,pb", "hg"])
    ranked = rank_candidates(found, _county_samples(), EvidenceLayers(ent))
    row = ranked[(ranked["cluster_id"] == "CL001") & (ranked["candidate_id"] == "E1")].iloc[0]
    # parcel centres (50|150|270, 50) seen from (150, 1050), each 15 亩
    d = [math.hypot(x - 150, 1000) for x in (50, 150, 270)]
    near = sum(math.exp(-di / 1500) for di in d) / 3
    assert row["near_field_share"] == pytest.approx(near, abs=1e-4)
    assert row["distance_m"] == pytest.approx(950.0)
    assert row["bearing_deg"] == pytest.approx(180.0, abs=3)
    # excess: ln(0.8/0.2) for cd, ln(median pb 40 / 40) = 0 for pb: cosine with (1, 1) = 1/√2
    assert row["signature_cosine"] == pytest.approx(1 / math.sqrt(2), abs=1e-4)
    assert row["signature_coverage"] == pytest.approx(1.0)
    assert row["score"] == pytest.approx(row["signature_cosine"] * near, abs=1e-3)
    assert "E2" not in set(ranked["candidate_id"])  # 50 km away: beyond the search radius


def test_irrigation_needs_the_cluster_downstream(county):
    samples = _county_samples()
    found = contaminated_clusters(county, samples, gap=30.0)
    # a river along y = -100 flowing east; E1 discharges 3 km upstream, E2 downstream
    rivers = _lines([[(-5000, -100), (3000, -100)]], ["河"])
    ent = _enterprises([(-3000, -50), (2500, -50)], ["E1", "E2"], ["cd", "cd"])
    ranked = rank_candidates(found, samples, EvidenceLayers(ent, rivers=rivers))
    irr = ranked[ranked["candidate_type"] == "irrigation"]
    assert set(irr["candidate_id"]) == {"E1~irrigation"}
    row = irr[irr["cluster_id"] == "CL001"].iloc[0]
    assert bool(row["downstream"])
    # nodes every 100 m: the first within 500 m of P0 (x 0..100, y 0..100) is x = -400,
    # 412 m away (x = -500 is 510 m away); from the outfall at x = -3000: 2,600 m
    assert row["network_distance_m"] == pytest.approx(2600.0, abs=0.01)
    assert row["along_share"] == pytest.approx(1.0)  # every parcel within 500 m of the river
    top = ranked[ranked["cluster_id"] == "CL001"].iloc[0]
    assert top["candidate_id"] == "E1~irrigation"


def test_geogenic_scores_cd_without_co_enrichment(county):
    samples = _county_samples()
    found = contaminated_clusters(county, samples, gap=30.0)
    karst = gpd.GeoDataFrame({"karst": [True]}, geometry=[shapely.box(X0 + 1900, Y0 - 100,
                                                                      X0 + 2200, Y0 + 200)],
                             crs=CRS)
    ranked = rank_candidates(found, samples, EvidenceLayers(_enterprises([], [], []),
                                                            geology=karst))
    geo = ranked[ranked["candidate_type"] == "geogenic"].set_index("cluster_id")
    assert geo.loc["CL002", "karst_share"] == pytest.approx(1.0)
    assert geo.loc["CL002", "high_ph_share"] == pytest.approx(1.0)
    # CL001: off karst, pH 6 and Pb 200/40 = 5× ≥ 4× co-enrichment → 0
    assert geo.loc["CL001", "score"] == 0.0
    assert geo.loc["CL001", "co_enrichment"] == pytest.approx(1.0)  # median Pb 40 / 40


def test_confirmation_samples_follow_the_top_candidate(county):
    samples = _county_samples()
    found = contaminated_clusters(county, samples, gap=30.0)
    ent = _enterprises([(150, 350)], ["E1"], ["cd,pb"])
    ranked = rank_candidates(found, samples, EvidenceLayers(ent))
    plan = confirmation_samples(found, ranked, county, ent, rule=ConfirmRule(min_area_mu=10))
    mine = plan[plan["cluster_id"] == "CL001"]
    assert set(mine["mode"]) == {"soil"}
    assert mine["point_id"].tolist() == [f"C{i:03d}" for i in range(1, len(mine) + 1)]
    # transect points land on farmland parcels within 150 m, and none off farmland
    assert set(mine["parcel_id"]) <= set(county["parcel_id"])
