"""`farmland classify` options: --scheduler without the dask extra, --variograms."""

from __future__ import annotations

import sys

from conftest import make_parcels, make_samples, run_cli

DASK_MESSAGE = ("farmland: error: classifying on dask (--scheduler) needs the optional 'dask' "
                "extra, which is not installed. Fix: pip install \"farmland[dask]\" (or pip "
                "install \"dask[distributed]\"), or leave out --scheduler to classify in this "
                "process")


def test_cli_scheduler_without_dask_is_one_line_before_any_work(monkeypatch, tmp_path):
    """`farmland classify --scheduler local` without the extra (dask made unimportable):
    exit code 2, one line on stderr with the pip command, no traceback, no output."""
    for name in [m for m in sys.modules if m == "dask" or m.startswith(("dask.", "distributed"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "dask", None)          # import dask -> ModuleNotFoundError
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    make_parcels(n=2).to_file(tmp_path / "p.gpkg", layer="DLTB")
    soil = make_samples([(50, 50), (150, 50)])
    soil.assign(x=soil.geometry.x, y=soil.geometry.y).drop(columns="geometry").to_csv(
        tmp_path / "soil.csv", index=False)
    res = run_cli("classify", "--parcels", tmp_path / "p.gpkg", "--samples", tmp_path / "soil.csv",
                  "--crs", "EPSG:4545", "--scheduler", "local", "-o", tmp_path / "out")
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [DASK_MESSAGE]
    assert "Traceback" not in res.output and not (tmp_path / "out").exists()
