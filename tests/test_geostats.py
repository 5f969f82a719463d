"""Cross-validation report written with every run: figures checked by hand with IDW."""

import geopandas as gpd
import numpy as np
import pytest
from conftest import X0, Y0, make_samples

from farmland.geostats.estimators import IDW
from farmland.geostats.quality import cross_validation_report, write_rasters
from farmland.standards import load_standard


def corners():
    """Four paddy samples on a 100 m square, pH 6 (Cd screening 0.4); Cd 1.0 at one corner."""
    return make_samples([(0, 0), (100, 0), (0, 100), (100, 100)],
                        sample_id=["A", "B", "C", "D"], cd=[0.2, 0.2, 0.2, 1.0], usable=True,
                        landuse_used="paddy")


def idw(_variable):
    return IDW(k=12, power=2.0)


def test_leave_one_out_figures_by_hand():
    metrics, per_sample, models = cross_validation_report(corners(), idw, standard=load_standard())
    cd = metrics.set_index("variable").loc["cd"]
    # weights 1/d²: sides 1e-4, diagonal 5e-5 (sum 2.5e-4)
    # A: (0.2e-4 + 0.2e-4 + 1.0·5e-5) / 2.5e-4 = 0.36   (obs 0.2, both class 1)
    # B, C: (0.2e-4 + 1.0e-4 + 0.2·5e-5) / 2.5e-4 = 0.52 (obs 0.2 class 1, pred class 2)
    # D: 0.2 (obs 1.0 class 2, pred class 1)
    pred = per_sample[per_sample["variable"] == "cd"].set_index("sample_id")["predicted"]
    assert pred.to_dict() == pytest.approx({"A": 0.36, "B": 0.52, "C": 0.52, "D": 0.2})
    assert cd["me"] == pytest.approx(0.0, abs=1e-12)          # 0.16 + 0.32 + 0.32 - 0.8
    assert cd["rmse"] == pytest.approx(np.sqrt(0.8704 / 4))   # (0.0256+0.1024·2+0.64)/4
    assert cd["class_accuracy"] == pytest.approx(0.25)        # only A
    assert cd["n"] == 4
    assert models["cd"]["method"] == "IDW"
    assert list(metrics["variable"]) == ["ph", "cd", "hg", "as", "pb", "cr"]


def test_unusable_samples_are_left_out():
    s = corners()
    s.loc[3, "usable"] = False
    metrics, _, _ = cross_validation_report(s, idw, standard=load_standard())
    assert metrics.set_index("variable").loc["cd", "n"] == 3


def test_rasters_are_written(tmp_path):
    import rasterio

    parcels = corners().buffer(30)
    parcels = gpd.GeoDataFrame(geometry=parcels, crs="EPSG:4545")
    files = write_rasters(tmp_path, corners(), parcels, idw, standard=load_standard(),
                          cell_size=20.0)
    assert len(files) == 15
    with rasterio.open(tmp_path / "cd_predicted.tif") as src:
        predicted = src.read(1)
    with rasterio.open(tmp_path / "cd_p_exceed_screening.tif") as src:
        assert src.crs.to_epsg() == 4545
        # 20 m cells over the buffered square: x and y from -40 m to 140 m around A
        assert (src.width, src.height) == (9, 9)
        assert (src.transform.c, src.transform.f) == (X0 - 40, Y0 + 140)
        prob = src.read(1)
        cell = {(x, y): src.index(X0 + x, Y0 + y) for x in (10, 50, 90) for y in (10, 50, 90)}

    def at(x, y):  # the cell centred on (x, y) m from A
        return prob[cell[x, y]]

    # IDW gives no distribution: the probability is 0 or 1 (value above the screening
    # value or not). Between parcels the land use is unknown: the stricter Cd screening
    # value at pH 6 applies, other land 0.3 (paddy 0.4).
    assert set(np.unique(prob)) == {0.0, 1.0}
    np.testing.assert_array_equal(prob, (predicted > 0.3).astype("float32"))
    # next to D (Cd 1.0) it is exceeded, next to A, B, C (Cd 0.2) it is not
    assert at(90, 90) == 1.0
    assert at(10, 10) == at(90, 10) == at(10, 90) == 0.0
    # the centre is as far from all four samples: (3 × 0.2 + 1.0) / 4 = 0.4 > 0.3
    assert predicted[cell[50, 50]] == pytest.approx(0.4, abs=1e-6) and at(50, 50) == 1.0
    # B and C hold the same value: the map is symmetric about the diagonal A-D
    np.testing.assert_array_equal(prob, prob[::-1, ::-1].T)
    assert 0 < prob.mean() < 1
