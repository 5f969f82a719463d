"""``farmland init`` / ``farmland run CONFIG.toml``: the config file, its validation,
the steps it builds, the progress helpers and the closing summary (was test_config.py).

The end-to-end runs use a small county cut from the demo data (a 2.5 km square of
east 东岩乡: about 330 parcels, 60 soil and 30 crop samples), never the whole demo.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import time
import tomllib
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from conftest import run_cli

from farmland.cli.config import RESOLVED_FILE, load_config, parse_overrides
from farmland.cli.init import demo_data_dir, render_template
from farmland.cli.parallel import global_flags
from farmland.cli.run import chain_steps, closing_figures, closing_lines
from farmland.cli.steps import check_before_run, plan_steps, step_commands
from farmland.errors import InputError
from farmland.progress import step, track

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "demo"
BOX = (613_500.0, 2_721_000.0, 616_000.0, 2_723_500.0)  # EPSG:4545 metres


# --------------------------------------------------------------------- small county
@pytest.fixture(scope="module")
def county(tmp_path_factory) -> Path:
    """Parcels whose centroid lies in BOX, the samples in BOX, their measures."""
    d = tmp_path_factory.mktemp("county")
    parcels = gpd.read_file(DEMO / "parcels.gpkg", layer="DLTB", bbox=BOX)
    c = parcels.geometry.centroid
    parcels = parcels[c.x.between(BOX[0], BOX[2]) & c.y.between(BOX[1], BOX[3])]
    parcels.to_file(d / "parcels.gpkg", layer="DLTB")
    for name in ("soil_samples.csv", "crop_samples.csv"):
        table = pd.read_csv(DEMO / name, encoding="utf-8-sig", dtype=str)
        x, y = table["X"].astype(float), table["Y"].astype(float)
        inside = x.between(BOX[0], BOX[2]) & y.between(BOX[1], BOX[3])
        table[inside].to_csv(d / name, index=False, encoding="utf-8-sig")
    ledger = pd.read_csv(DEMO / "measures_2023.csv", encoding="utf-8-sig", dtype=str)
    ledger[ledger["图斑编号"].isin(parcels["BSM"])].to_csv(d / "measures.csv", index=False,
                                                         encoding="utf-8-sig")
    shutil.copy(DEMO / "townships.gpkg", d / "townships.gpkg")
    return d


def _fill_in(text: str) -> str:
    """What a user does to the template: their files, their options."""
    for old, new in [('"path/to/parcels.gpkg"', '"parcels.gpkg"'),
                     ('["path/to/soil_samples.csv"]', '["soil_samples.csv"]'),
                     ('["path/to/crop_samples.csv"]', '["crop_samples.csv"]'),
                     ('"path/to/measures.xlsx"', '"measures.csv"'),
                     ('"path/to/pollution_sources.csv"', '""'),
                     ('"path/to/townships.shp"', '"townships.gpkg"'),
                     ('parcels_layer = ""', 'parcels_layer = "DLTB"'),
                     ('crs = ""', 'crs = "EPSG:4545"'),
                     ('interpolator = "kriging"', 'interpolator = "idw"'),
                     ("min_spacing = 250.0", "min_spacing = 150.0"),
                     ("townships = []", 'townships = ["东岩乡"]')]:
        assert old in text, old
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def job(county, tmp_path_factory):
    """``farmland init`` in the county folder, the user's edits, then ``farmland run``
    from another folder with the override ``plan.n=5``."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    result = run_cli("init", cwd=county)
    assert result.exit_code == 0, result.output
    config = county / "farmland.toml"
    config.write_text(_fill_in(config.read_text(encoding="utf-8")), encoding="utf-8")
    result = run_cli("-q", "run", str(config), "plan.n=5", cwd=elsewhere)
    assert result.exit_code == 0, result.output
    return config, county / "farmland_output" / "2023", result.output


# ------------------------------------------------------------------------- template
def test_demo_template_parses_validates_and_points_at_the_demo_county(tmp_path):
    data_dir = demo_data_dir(tmp_path / "farmland.toml", cwd=REPO)
    assert not Path(data_dir).is_absolute() and (tmp_path / data_dir).resolve() == DEMO
    text = render_template(data_dir=data_dir)
    assert tomllib.loads(text)["inputs"]["parcels"] == f"{data_dir}/parcels.gpkg"
    (tmp_path / "farmland.toml").write_text(text, encoding="utf-8")
    cfg = load_config(tmp_path / "farmland.toml")
    assert cfg["inputs"]["parcels"] == str(DEMO / "parcels.gpkg")
    assert cfg["inputs"]["soil_samples"] == [str(DEMO / "soil_samples.csv")]
    assert cfg["inputs"]["measures"] == str(DEMO / "measures_2023.csv")
    assert cfg["inputs"]["parcels_layer"] == "DLTB"
    assert cfg["project"]["crs"] == "EPSG:4545"
    assert (cfg["project"]["year"], cfg["project"]["target"]) == (2023, 0.91)
    assert cfg["plan"]["seed"] == cfg["project"]["seed"] == 0
    assert cfg["project"]["workspace"] == str(tmp_path / "farmland_output" / "farmland_runs.gpkg")
    assert cfg.run_dir == tmp_path / "farmland_output" / "2023"
    assert render_template(data_dir="data/demo").count('"data/demo/') == 10


def test_generic_template_parses_but_run_refuses_its_placeholders(tmp_path):
    path = tmp_path / "farmland.toml"
    path.write_text(render_template(data_dir=None), encoding="utf-8")
    cfg = load_config(path, check_files=False)
    assert cfg["inputs"]["parcels"] == str(tmp_path / "path" / "to" / "parcels.gpkg")
    with pytest.raises(InputError, match=r"farmland\.toml: template placeholders path/to/… "
                                         r"still in place: inputs\.parcels, "
                                         r"inputs\.soil_samples, inputs\.crop_samples"):
        load_config(path)


def test_init_writes_demo_paths_relative_to_its_folder_and_refuses_to_overwrite(tmp_path):
    (tmp_path / "data" / "demo").mkdir(parents=True)
    (tmp_path / "data" / "demo" / "parcels.gpkg").write_bytes(b"")
    result = run_cli("init", "jobs/county.toml", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    written = tomllib.loads((tmp_path / "jobs" / "county.toml").read_text(encoding="utf-8"))
    assert written["inputs"]["parcels"] == "../data/demo/parcels.gpkg"
    assert written["inputs"]["soil_samples"] == ["../data/demo/soil_samples.csv"]
    again = run_cli("init", "jobs/county.toml", cwd=tmp_path)
    assert again.exit_code == 2
    assert "county.toml: output already exists" in again.output
    assert run_cli("init", "jobs/county.toml", "--overwrite", cwd=tmp_path).exit_code == 0


# ----------------------------------------------------------------------- validation
def _config(tmp_path: Path, county: Path, extra: str = "") -> Path:
    path = tmp_path / "job.toml"
    path.write_text(f'[project]\nyear = 2023\n[inputs]\nparcels = "{county / "parcels.gpkg"}"\n'
                    f'soil_samples = "{county / "soil_samples.csv"}"\n{extra}', encoding="utf-8")
    return path


def test_unknown_key_is_refused_with_exit_2_and_one_line(tmp_path, county):
    path = _config(tmp_path, county, "[plan]\nnn = 3\n")
    result = run_cli("run", str(path), cwd=tmp_path)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0] == (f"farmland: error: {path}: unknown key 'plan.nn'. Fix: allowed keys in "
                        "[plan]: n, mode, min_spacing, exclusions, seed")


def test_unknown_section_and_override_key_are_refused(tmp_path, county):
    with pytest.raises(InputError, match=r"unknown section \[plann\]\. Fix: allowed sections: "
                                         r"project, inputs, classify"):
        load_config(_config(tmp_path, county, "[plann]\nn = 3\n"))
    (tmp_path / "top.toml").write_text("year = 2023\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"top\.toml: key 'year' is outside any section\. "
                                         r"Fix: move it under \[project\]$"):
        load_config(tmp_path / "top.toml")
    with pytest.raises(InputError, match=r"^command line override: unknown key 'report\.language'"):
        load_config(_config(tmp_path, county), overrides=["report.language=en"])


def test_wrong_types_and_ranges_are_reported_together(tmp_path, county):
    path = _config(tmp_path, county, '[plan]\nn = "many"\n[project2]\n[report]\nlang = "fr"\n')
    with pytest.raises(InputError) as err:
        load_config(path)
    text = str(err.value)
    assert text.startswith(f"{path}: 3 problems: 'plan.n' must be an integer 1..100000 "
                           "(got 'many')")
    assert "unknown section [project2]" in text
    assert "'report.lang' must be \"zh\" or \"en\" (got 'fr')" in text
    with pytest.raises(InputError, match=r"'project\.target' must be a share 0\.\.1, "
                                         r"e\.g\. 0\.91 \(got 1\.5\)$"):
        load_config(_config(tmp_path, county), overrides=["project.target=1.5"])
    with pytest.raises(InputError, match=r"'rate\.count_unverified' must be true or false"):
        load_config(_config(tmp_path, county, "[rate]\ncount_unverified = 1\n"))


def test_missing_required_inputs_and_files(tmp_path, county):
    (tmp_path / "bare.toml").write_text("[project]\nyear = 2023\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"2 problems: 'inputs\.parcels' is required"):
        load_config(tmp_path / "bare.toml")
    path = _config(tmp_path, county)
    with pytest.raises(InputError, match=r"^command line override: 'inputs\.measures': file "
                                         r"not found: .*nope\.csv"):
        load_config(path, overrides=["inputs.measures=nope.csv"], cwd=tmp_path)
    path.write_text(path.read_text(encoding="utf-8") + 'measures = "gone.csv"\n',
                    encoding="utf-8")
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}: 'inputs\.measures': "
                                         r"file not found: .*gone\.csv"):
        load_config(path)
    path = _config(tmp_path, county)
    with pytest.raises(InputError, match=r"^command line override: 'project\.crs' must be an "
                                         r"EPSG code pyproj knows.*\(got 'EPSG:99999'\)"):
        load_config(path, overrides=["project.crs=EPSG:99999"])
    with pytest.raises(InputError, match=r"'plan\.mode' is \"sources\" but "
                                         r"'inputs\.pollution_sources' is empty"):
        load_config(path, overrides=["plan.mode=sources"])


def test_overrides_are_typed_and_paths_start_at_the_current_folder(tmp_path, county):
    assert parse_overrides(["plan.n=80", "project.name=2024", "report.lang=en",
                            "project.crs=EPSG:4545", 'inputs.crop_samples=["a.csv", "b.csv"]',
                            "rate.count_unverified=false"]) == {
        "plan": {"n": 80}, "project": {"name": "2024", "crs": "EPSG:4545"},
        "report": {"lang": "en"}, "inputs": {"crop_samples": ["a.csv", "b.csv"]},
        "rate": {"count_unverified": False}}
    with pytest.raises(InputError, match=r"an override must look like section\.key=value "
                                         r"\(got 'n=80'\)"):
        parse_overrides(["n=80"])
    cfg = load_config(_config(tmp_path, county),
                      overrides=["project.output=out", "project.year=2024", "plan.n=5"],
                      cwd=county)
    assert cfg["project"]["output"] == str(county / "out")
    assert cfg.run_dir == county / "out" / "2024"
    assert cfg["plan"]["n"] == 5 and cfg["plan"]["seed"] == 0


# ---------------------------------------------------------------------------- steps
def test_steps_skip_rate_without_measures_and_only_is_checked(tmp_path, county):
    cfg = load_config(_config(tmp_path, county))
    steps = plan_steps(cfg)
    assert [s.name for s in steps] == ["classify", "rate", "sources", "flag", "plan", "map",
                                       "report"]
    assert steps[1].skip == "未提供措施台账 / no measures ledger ([inputs] measures is empty)"
    assert steps[2].skip == ("未提供污染源 / no pollution sources ([inputs] pollution_sources "
                             "is empty)")
    assert [s.name for s in plan_steps(cfg, only="plan,classify")] == ["classify", "plan"]
    with pytest.raises(InputError, match=r"unknown step in --only \(got 'classfy'\)\. "
                                         r"Fix: choose from classify,rate,sources,flag,plan,map,"
                                         r"report"):
        plan_steps(cfg, only="classfy")
    with pytest.raises(InputError, match=r"the rate step needs a measures ledger"):
        plan_steps(cfg, only="rate")
    with pytest.raises(InputError, match=r"the sources step needs the pollution sources"):
        plan_steps(cfg, only="sources")
    with pytest.raises(InputError, match=r"no classification in the run folder"):
        check_before_run(cfg, plan_steps(cfg, only="flag"), overwrite=False)


def test_step_commands_match_the_subcommand_options(tmp_path, county):
    path = _config(tmp_path, county, '[rate]\ncount_unverified = false\ngap_order = "risk"\n'
                                     '[classify]\ninterpolator = "idw"\n')
    cfg = load_config(path, overrides=["project.workspace=ws.gpkg", "project.name=详查",
                                       f"inputs.measures={county / 'measures.csv'}"], cwd=tmp_path)
    run = str(tmp_path / "farmland_output" / "2023")
    [(title, argv)] = step_commands("classify", cfg, overwrite=True, record_config=True)
    assert title == "1  分类 / Classify"
    assert argv == ["classify", "--parcels", str(county / "parcels.gpkg"),
                    "--samples", str(county / "soil_samples.csv"), "--interpolator", "idw",
                    "--outliers", "flag", "--workspace", str(tmp_path / "ws.gpkg"), "--label", "2023 详查",
                    "--seed", "0", "-o", run, "--run-config", f"{run}/{RESOLVED_FILE}",
                    "--overwrite"]
    [(_, argv)] = step_commands("rate", cfg)
    assert argv == ["rate", run, "--measures", str(county / "measures.csv"), "--year", "2023",
                    "--target", "0.91", "--order", "risk", "--accounting", "parcel_verified",
                    "--min-township-samples", "5", "-o", run]
    cfg_src = load_config(path, overrides=[f"inputs.pollution_sources={county / 'measures.csv'}",
                                           f"inputs.wind_rose={county / 'measures.csv'}"],
                          cwd=tmp_path)
    [(title, argv)] = step_commands("sources", cfg_src)
    assert title == "3  污染成因排查 / Where the cadmium comes from"
    assert argv == ["sources", run, "--sources", str(county / "measures.csv"),
                    "--wind", str(county / "measures.csv"), "--seed", "0", "-o", run]
    [(_, argv)] = step_commands("plan", cfg)
    assert argv == ["plan", run, "--n", "60", "--mode", "combined", "--min-spacing", "250.0",
                    "--seed", "0", "-o", run]
    # after the flag step of the same job the plan places its coverage points in the
    # flags that step wrote with the [flag] settings
    [(_, argv)] = step_commands("plan", cfg, after_flag=True)
    assert argv == ["plan", run, "--n", "60", "--mode", "combined", "--min-spacing", "250.0",
                    "--seed", "0", "--flags", f"{run}/flags.gpkg", "-o", run]
    steps = {s.key: s for s in chain_steps(["classify", "flag", "plan"], cfg, False)}
    assert steps["plan"].after == ("classify", "flag") and "--flags" in steps["plan"].argv
    alone = {s.key: s for s in chain_steps(["classify", "plan"], cfg, False)}
    assert alone["plan"].after == ("classify",) and "--flags" not in alone["plan"].argv


def test_map_commands_draw_what_the_run_folder_holds(tmp_path, county):
    cfg = load_config(_config(tmp_path, county),
                      overrides=["project.county=甲县", "map.townships=all"])
    run, maps = cfg.run_dir, tmp_path / "maps"
    run.mkdir(parents=True)
    pd.DataFrame({"township": ["甲镇", "乙乡", "全县 County"]}).to_csv(
        run / "summary.csv", index=False, encoding="utf-8-sig")
    (run / "rate.json").write_text(json.dumps({"rows": [{"level": "county", "name": "全县"},
                                                        {"level": "township", "name": "甲镇"}]}),
                                   encoding="utf-8")
    (run / "flags.gpkg").write_bytes(b"")
    gpkg, flags, rate = str(run / "classification.gpkg"), str(run / "flags.gpkg"), str(
        run / "rate.json")
    classes = "耕地土壤环境质量类别图 Farmland soil classes"
    assert step_commands("map", cfg) == [
        ("6  地图 / Maps: 全县 county",
         ["map", gpkg, "-o", str(maps / "county_2023.html"), "--layers",
          "parcels,samples,outliers,zones,sources,townships", "--title", f"甲县 2023 {classes}",
          "--zones", flags, "--rate-json", rate, "--tiles", "none"]),
        ("6  地图 / Maps: 加密采样 sampling",
         ["map", gpkg, "-o", str(maps / "sampling_2023.html"), "--layers",
          "parcels,samples,crops,flags,plan,sources,townships", "--title",
          "甲县 2023 加密采样需求与布点 Sampling needs and planned points", "--flags", flags,
          "--tiles", "none"]),
        ("6  地图 / Maps: 甲镇",
         ["map", gpkg, "-o", str(maps / "甲镇_2023.html"), "--township", "甲镇", "--title",
          f"甲县 甲镇 2023 {classes}", "--zones", flags, "--rate-json", rate, "--tiles", "none"]),
        ("6  地图 / Maps: 乙乡",
         ["map", gpkg, "-o", str(maps / "乙乡_2023.html"), "--township", "乙乡", "--title",
          f"甲县 乙乡 2023 {classes}", "--zones", flags, "--tiles", "none"])]
    cfg = load_config(_config(tmp_path, county), overrides=['map.townships=["丙村"]'])
    with pytest.raises(InputError, match=r"job\.toml, column 'map\.townships': no such "
                                         r"township in the classification \(got '丙村'\)\. "
                                         r"Fix: choose from 甲镇, 乙乡 or \"all\"$"):
        step_commands("map", cfg)


# ------------------------------------------------------------------------ whole run
def test_init_and_run_produce_every_output_and_the_resolved_config(job):
    config, run, _ = job
    for name in ("classification.gpkg", "summary.csv", "manifest.json", "rate.json",
                 "gap_plan.csv", "flags.gpkg", "flag_summary.csv", "plan.csv", "plan.gpx",
                 "report/report.xlsx", "report/report.html", RESOLVED_FILE):
        assert (run / name).is_file(), name
    maps = config.parent / "maps"
    assert sorted(p.name for p in maps.iterdir()) == ["county_2023.html", "sampling_2023.html",
                                                      "东岩乡_2023.html"]
    assert (config.parent / "farmland_output" / "farmland_runs.gpkg").is_file()
    resolved = tomllib.loads((run / RESOLVED_FILE).read_text(encoding="utf-8"))
    assert resolved["inputs"]["parcels"] == str(config.parent / "parcels.gpkg")
    assert resolved["inputs"]["pollution_sources"] == ""
    assert resolved["plan"] == {"n": 5, "mode": "combined", "min_spacing": 150.0,
                                "exclusions": "", "seed": 0}
    assert resolved["flag"]["cell_size"] == 1000.0
    assert load_config(run / RESOLVED_FILE).values == resolved  # a valid config itself


def test_override_plan_n_takes_effect(job):
    _, run, _ = job
    assert len(pd.read_csv(run / "plan.csv", encoding="utf-8-sig")) == 5


def test_run_prints_each_command_and_a_closing_summary(job):
    _, _, output = job
    assert "$ farmland classify --parcels" in output
    if (os.cpu_count() or 1) >= 2:   # two steps at a time by default
        assert "(two steps at a time in two processes; --jobs 1: one after another)" in output
        assert " s, second process)" in output
    assert "== 6  地图 / Maps: 东岩乡" in output
    summary = output[output.index("== 结果汇总 / Summary"):]
    for heading in ("优先保护类 Priority protection", "安全利用率 Safe-utilisation rate",
                    "标记 Flags", "加密布点 Planned points", "report.html", "东岩乡_2023.html"):
        assert heading in summary, heading


def test_one_step_at_a_time_gives_the_same_files_as_two(job, tmp_path):
    """The job ran two steps at a time (on a machine with two cores; CI has two): again
    with --jobs 1 into another folder, every file is the same byte for byte except the
    ones that carry a timestamp or a path."""
    config, run, _ = job
    result = run_cli("-q", "run", str(config), "plan.n=5", "--jobs", "1",
                     f"project.output={tmp_path / 'out'}", f"project.maps={tmp_path / 'maps'}",
                     f"project.workspace={tmp_path / 'out' / 'runs.gpkg'}", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert "(one step after another)" in result.output
    again = tmp_path / "out" / "2023"
    files = sorted(p.relative_to(run) for p in run.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    stamped = {"manifest.json", "report.xlsx", "report.html", "rate.json",
               RESOLVED_FILE}   # a timestamp, or the output paths (they differ here)
    different = [str(p) for p in files if p.name not in stamped
                 and (run / p).read_bytes() != (again / p).read_bytes()]
    assert different == []
    maps = config.parent / "maps"
    for page in maps.iterdir():   # the maps name no output path
        assert page.read_bytes() == (tmp_path / "maps" / page.name).read_bytes(), page.name
    # one step at a time runs them in chain order (the skipped step is said first)
    steps = [line for line in result.output.splitlines() if line.startswith("== ")]
    assert steps[0].startswith("== 3  污染成因排查") and "跳过 skipped" in steps[0]
    ran = [int(line.split()[1]) for line in steps[1:-1]]
    assert ran == [1, 2, 4, 5, 6, 6, 6, 7]


def test_classify_records_the_resolved_config_in_the_manifest(job):
    _, run, _ = job
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    resolved = tomllib.loads((run / RESOLVED_FILE).read_text(encoding="utf-8"))
    assert manifest["parameters"]["run_config"] == resolved


def test_rerun_refuses_before_any_work_then_only_classify_runs_only_classify(job, tmp_path):
    config, run, _ = job
    before = (run / "summary.csv").stat().st_mtime_ns
    result = run_cli("run", str(config), cwd=tmp_path)
    assert result.exit_code == 2
    assert f"{run / RESOLVED_FILE}: output already exists" in result.output
    assert (run / "summary.csv").stat().st_mtime_ns == before
    result = run_cli("-q", "run", str(config), "--only", "classify",
                     "project.output=only_classify", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    other = tmp_path / "only_classify" / "2023"
    assert sorted(p.name for p in other.iterdir() if p.suffix != ".csv" or
                  p.name == "summary.csv") == sorted(
        ["classification.gpkg", "manifest.json", "summary.csv", RESOLVED_FILE])
    assert not (other / "rate.json").exists() and not (other / "plan.csv").exists()
    assert "$ farmland rate" not in result.output and "$ farmland map" not in result.output


def test_a_failed_run_leaves_nothing_behind_and_the_fixed_rerun_needs_no_overwrite(tmp_path,
                                                                                   county):
    bad = tmp_path / "ledger.csv"
    bad.write_text("图斑编号,年份\nX1,2023\n", encoding="utf-8")   # no measure column
    path = _config(tmp_path, county)
    path.write_text(path.read_text(encoding="utf-8").replace(
        "[inputs]\n", f'[inputs]\nmeasures = "{bad}"\n'), encoding="utf-8")
    run = tmp_path / "farmland_output" / "2023"
    options = ["--only", "classify,rate", "classify.interpolator=idw", "project.crs=EPSG:4545"]
    result = run_cli("run", str(path), *options, cwd=tmp_path)
    assert result.exit_code == 2
    assert "farmland run stopped at step: 2" in result.output
    assert "outputs this run had written were removed" in result.output
    assert not (run / RESOLVED_FILE).exists() and not (run / "classification.gpkg").exists()
    assert not run.exists() or [p.name for p in run.iterdir()] == []
    good = tmp_path / "good.csv"
    good.write_text("图斑编号,措施类型,年份\nX1,休耕,2023\n", encoding="utf-8")
    path.write_text(path.read_text(encoding="utf-8").replace(str(bad), str(good)),
                    encoding="utf-8")
    result = run_cli("-q", "run", str(path), *options, cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert (run / "rate.json").is_file() and (run / RESOLVED_FILE).is_file()


def test_a_failed_run_takes_its_runs_out_of_the_workspace(tmp_path, county):
    """The classification of a run that fails later is removed with its outputs, so its
    workspace entry goes too: a new workspace is removed, an existing one loses only the
    run this one added (no orphan pointing at removed outputs, no duplicate on retry)."""
    from farmland.runs.workspace import Workspace

    bad = tmp_path / "ledger.csv"
    bad.write_text("图斑编号,年份\nX1,2023\n", encoding="utf-8")   # no measure column
    path = _config(tmp_path, county)
    path.write_text(path.read_text(encoding="utf-8").replace(
        "[inputs]\n", f'[inputs]\nmeasures = "{bad}"\n'), encoding="utf-8")
    ws = tmp_path / "runs.gpkg"
    options = ["classify.interpolator=idw", "project.crs=EPSG:4545",
               f"project.workspace={ws}"]
    result = run_cli("run", str(path), "--only", "classify,rate", *options, cwd=tmp_path)
    assert result.exit_code == 2
    assert f"and the new workspace {ws} with them" in result.output
    assert not ws.exists() and not ws.with_name("runs.gpkg.cache").exists()
    # a workspace that holds a run already keeps it and loses only the failed run's
    result = run_cli("-q", "run", str(path), "--only", "classify", *options,
                     "project.output=first", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert Workspace(ws).runs()["run_id"].tolist() == ["R0001"]
    result = run_cli("run", str(path), "--only", "classify,rate", *options,
                     "project.output=second", cwd=tmp_path)
    assert result.exit_code == 2
    assert f"and run R0002 was taken out of {ws}" in result.output
    runs = Workspace(ws).runs()
    assert runs["run_id"].tolist() == ["R0001"]
    assert Path(runs["output"].iloc[0]).parts[-2:] == ("first", "2023")


def test_classify_help_shows_the_run_config_option_the_run_echoes():
    result = run_cli("classify", "--help")
    assert "--run-config" in result.output


# ------------------------------------------------------------------- closing summary
def test_closing_figures_read_from_hand_written_outputs(tmp_path):
    pd.DataFrame({"township": ["甲镇", "乙乡", "全县 County"], "class1_mu": [10.0, 20.0, 30.0],
                  "class2_mu": [5.0, 0.0, 5.0], "class3_mu": [0.0, 5.0, 5.0],
                  "unclassified_mu": [0.0, 0.0, 0.0]}).to_csv(
        tmp_path / "summary.csv", index=False, encoding="utf-8-sig")
    (tmp_path / "rate.json").write_text(json.dumps({"rows": [
        {"level": "township", "name": "甲镇", "rate": 1.0},
        {"level": "county", "name": "全县", "rate": 0.8, "target": 0.91, "met": False,
         "gap_mu": 1.1}]}), encoding="utf-8")
    pd.DataFrame({"乡镇 township": ["甲镇", "乙乡", "全县 County"],
                  "密度不足 sparse": [True, False, False],
                  "空白网格 empty cells": [2, 1, 3], "点位不足连片区 thin zones": [0, 1, 1],
                  "类别不确定图斑 uncertain parcels": [4, 0, 4],
                  "优先保护类农产品超标 crop exceedances on class 1": [0, 0, 0],
                  "未分类图斑 unclassified": [0, 0, 0]}).to_csv(
        tmp_path / "flag_summary.csv", index=False, encoding="utf-8-sig")
    pd.DataFrame({"点位编号 point_id": ["P001", "P002"]}).to_csv(tmp_path / "plan.csv", index=False)
    figures = closing_figures(tmp_path)
    assert figures["class_mu"] == {1: 30.0, 2: 5.0, 3: 5.0, None: 0.0}
    assert figures["rate"] == {"rate": 0.8, "target": 0.91, "met": False, "gap_mu": 1.1}
    assert figures["flags"] == {"empty_cells": 3, "thin_zones": 1, "uncertain_parcels": 4,
                                "crop_exceedance_class1": 0, "unclassified": 0,
                                "sparse_townships": 1}
    assert figures["plan_points"] == 2
    assert figures["outputs"] == [tmp_path / "plan.csv"]
    assert closing_lines(figures) == [
        ("优先保护类 Priority protection", "30.0 亩 (75.0 %)"),
        ("安全利用类 Safe utilisation", "5.0 亩 (12.5 %)"),
        ("严格管控类 Strict control", "5.0 亩 (12.5 %)"),  # unclassified: 0 亩, left out
        ("安全利用率 Safe-utilisation rate",
         "80.0 % / 目标 target 91 % — 未达成 NOT met, 缺口 gap 1.1 亩"),
        ("标记 Flags", "空白网格 empty 1 km cells: 3"), ("", "点位不足连片区 thin zones: 1"),
        ("", "类别不确定图斑 uncertain parcels: 4"),
        ("", "优先保护类农产品超标 crop exceedances on class 1: 0"),
        ("", "未分类图斑 unclassified parcels: 0"), ("", "密度不足乡镇 sparse townships: 1"),
        ("加密布点 Planned points", "2 (plan.csv)")]


def test_closing_figures_of_an_empty_folder(tmp_path):
    assert closing_figures(tmp_path) == {"outputs": []}
    assert closing_lines({"outputs": []}) == []


# -------------------------------------------------------------------------- progress
def test_step_draws_a_spinner_on_a_terminal_after_its_delay(monkeypatch, capsys):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("TTY_INTERACTIVE", "1")
    with step("快步 quick step", quiet=False, delay=5.0):
        pass
    with step("慢步 slow step", quiet=False, delay=0.05):
        time.sleep(0.3)
    with step("静默 quiet step", quiet=True, delay=0.0):
        time.sleep(0.2)
    err = capsys.readouterr().err
    assert "慢步 slow step" in err
    assert "快步" not in err and "静默" not in err


def test_log_handlers_point_at_stderr_again_after_a_step(monkeypatch, capsys):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    handler = logging.StreamHandler(sys.stderr)
    original = handler.stream
    logging.getLogger().addHandler(handler)
    try:
        with step("日志 logging", quiet=False, delay=0.0):
            time.sleep(0.1)
            logging.getLogger("farmland.test").warning("a log line")
        assert handler.stream is original
    finally:
        logging.getLogger().removeHandler(handler)
    assert "a log line" in capsys.readouterr().err


def test_track_yields_every_item_and_is_silent_when_quiet(monkeypatch, capsys):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    assert list(track(iter("abc"), "字母 letters", total=3, quiet=False)) == ["a", "b", "c"]
    assert "字母 letters" in capsys.readouterr().err
    assert list(track(range(4), "数字 numbers", quiet=True)) == [0, 1, 2, 3]
    assert capsys.readouterr().err == ""
    with step("外层 outer", quiet=False, delay=0.0):  # one live display at a time
        assert list(track(range(2), "内层 inner", quiet=False)) == [0, 1]


def test_global_flags_keep_the_users_verbosity(monkeypatch):
    assert global_flags(True) == ["-q"]
    monkeypatch.setattr(logging.getLogger(), "level", logging.DEBUG)
    assert global_flags(False) == ["-vv"]
    monkeypatch.setattr(logging.getLogger(), "level", logging.INFO)
    assert global_flags(False) == []


@pytest.mark.parametrize("command", ["classify", "rate", "control", "flag", "plan", "map",
                                     "report", "diff", "sources", "demo", "init", "run"])
def test_every_main_command_says_what_it_does_in_chinese_too(command):
    """Help is read by analysts: every chain command's help has a Chinese line."""
    result = run_cli(command, "--help")
    assert result.exit_code == 0
    assert any("\u4e00" <= ch <= "\u9fff" for ch in result.output), command


def test_closing_summary_marks_outputs_an_earlier_run_wrote(tmp_path, capsys):
    """`farmland run --only plan` lists the report and maps too: those it did not write
    are marked as an earlier run's."""
    from farmland.cli.run import print_closing_summary

    began = time.time() - 1                                 # this run began; it wrote the plan
    (tmp_path / "plan.csv").write_text("point_id\nP001\n", encoding="utf-8-sig")
    (tmp_path / "report").mkdir()
    old = tmp_path / "report" / "report.xlsx"
    old.write_bytes(b"x")
    os.utime(old, (began - 3600, began - 3600))             # an earlier run's report
    print_closing_summary(tmp_path, since=began)
    text = "".join(capsys.readouterr().out.split())   # the table may wrap long paths
    assert "report.xlsx（此前运行fromanearlierrun）" in text
    assert "plan.csv（此前运行" not in text and "plan.csv" in text
