"""The tutorial notebooks run from top to bottom, and are committed without outputs.

The notebooks in ``notebooks/`` are executed with nbclient (kernel ``python3``, working
directory ``notebooks/``) on the bundled demo county; their outputs go to a temporary
folder through ``FARMLAND_NOTEBOOK_OUTPUT``. The kernel must run *this* interpreter, so
a temporary ``python3`` kernelspec pointing at ``sys.executable`` is put first on
``JUPYTER_PATH`` (a user-level kernelspec of another Python would otherwise win).

Needs ``nbclient``, ``nbformat`` and ``ipykernel`` (the ``test`` extra): skipped
locally when they are missing, a failure when ``CI`` is set. The clean-in-git check
reads the ``.ipynb`` JSON directly and always runs.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
QUICKSTART = "01_quickstart.ipynb"
DYNAMIC = "02_dynamic_adjustment_and_sampling.ipynb"
NAMES = (QUICKSTART, DYNAMIC)
CELL_TIMEOUT_S = 300
#: the brief: each notebook well under 2 minutes on 2 cores (about 10 s and 30 s here)
NOTEBOOK_BUDGET_S = 120.0


def _require(*modules: str) -> None:
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing and os.environ.get("CI"):
        pytest.fail(f"notebook tests cannot run in CI: {', '.join(missing)} not installed "
                    "(they belong to the 'test' extra)")
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (pip install '.[test]')")


def _read_json(name: str) -> dict:
    return json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))


# -- committed state --------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_has_no_outputs(name):
    nb = _read_json(name)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, f"{name} has no code cells"
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None
                  or "execution" in c.get("metadata", {}))]
    assert not dirty, (f"{name}: code cells {dirty} carry outputs or execution counts; "
                       f"clear them (see notebooks/README.md) before committing")


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_uses_python3_kernel_and_is_bilingual(name):
    nb = _read_json(name)
    assert nb["nbformat"] == 4
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    first = "".join(nb["cells"][0]["source"])
    assert nb["cells"][0]["cell_type"] == "markdown"
    assert re.search(r"[\u4e00-\u9fff]", first) and re.search(r"[A-Za-z]{4,}", first)


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_uses_only_the_public_api(name):
    """The tutorials teach ``import farmland as fl``: no ``from farmland.… import``, no
    ``from farmland import …`` and no ``import farmland.…`` of a submodule."""
    nb = _read_json(name)
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert re.search(r"^import farmland as fl\b", code, re.M), f"{name}: no 'import farmland as fl'"
    submodule = re.findall(r"^[ \t]*(?:from[ \t]+farmland\b.*\bimport\b.*|import[ \t]+farmland\..*)$",
                           code, re.M)
    assert not submodule, f"{name} imports from farmland's submodules: {submodule}"
    assert "from farmland." not in json.dumps(nb, ensure_ascii=False)


# -- execution --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """A ``python3`` kernelspec running ``sys.executable``, and an output folder."""
    _require("nbclient", "nbformat", "ipykernel")
    jupyter = tmp_path_factory.mktemp("jupyter")
    spec = jupyter / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (farmland tests)", "language": "python",
    }), encoding="utf-8")
    out = tmp_path_factory.mktemp("notebook_output")
    paths = [str(jupyter), *filter(None, os.environ.get("JUPYTER_PATH", "").split(os.pathsep))]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", os.pathsep.join(paths))
        mp.setenv("FARMLAND_NOTEBOOK_OUTPUT", str(out))
        mp.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # quiet debugpy in the kernel
        yield out


@pytest.fixture(scope="module")
def run_notebook(kernel_env):
    """Execute a notebook once per module; returns (executed notebook, seconds)."""
    import nbformat
    from nbclient import NotebookClient

    cache: dict[str, tuple] = {}

    def run(name: str):
        if name not in cache:
            nb = nbformat.read(NOTEBOOKS / name, as_version=4)
            client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                    resources={"metadata": {"path": str(NOTEBOOKS)}})
            started = time.perf_counter()
            client.execute()   # raises CellExecutionError (cell source + traceback) on error
            cache[name] = (nb, time.perf_counter() - started)
        return cache[name]

    return run


def _outputs(nb) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def _stdout(nb) -> str:
    return "".join(o["text"] for o in _outputs(nb)
                   if o["output_type"] == "stream" and o["name"] == "stdout")


def _rich(nb, mime: str) -> list[str]:
    return [o["data"][mime] for o in _outputs(nb)
            if o["output_type"] in ("display_data", "execute_result") and mime in o["data"]]


def _maps(nb) -> list[str]:
    return [h for h in _rich(nb, "text/html") if "<iframe" in h and "leaflet" in h.lower()]


def test_kernel_runs_this_interpreter(kernel_env):
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    assert KernelSpecManager().get_kernel_spec("python3").argv[0] == sys.executable
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import sys, farmland; print(sys.executable); print(farmland.__file__)")])
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    executable, package = _stdout(nb).split()
    assert Path(executable) == Path(sys.executable)
    import farmland
    assert Path(package) == Path(farmland.__file__)


def test_quickstart_runs_and_shows_the_chain(run_notebook, kernel_env):
    nb, seconds = run_notebook(QUICKSTART)
    assert seconds < NOTEBOOK_BUDGET_S
    text = _stdout(nb)
    rate = re.search(r"county safe-utilisation rate 2023: ([0-9.]+) %", text)
    assert rate, "the rate cell printed no county rate"
    # official accounting, 2023, without the closed loop: a little below the 91 % target
    # since issue 14 item 8 made the demo's crops respond to the measures (90.76 % when
    # recorded; 56.3 % before, with crops that ignored them). The precautionary class rule
    # moved it 90.76 -> 90.81 % (readings 90.8 / 17.0 / 97.0 %), inside the same range:
    # it classes more land 3 (4,515 亩), but without the closed loop any strict-control
    # measure counts it as controlled (96.5 % of it) — only `farmland demo`, which gates D
    # on the loop, drops to 88.7 %
    assert 89.0 < float(rate.group(1)) < 91.0
    assert re.search(r"readings: official [0-9.]+ %, parcel_verified [0-9.]+ %, "
                     r"measures_only 9[4-9]\.[0-9]+ %", text)
    before, after = map(float, re.search(r"with the plan: ([0-9.]+) % -> ([0-9.]+) %",
                                         text).groups())
    assert before == float(rate.group(1)) and after > before   # the plan raises the rate
    assert after >= 91.0   # ... and now reaches the county target
    only = re.search(r"measures only: ([0-9.]+) % -> ([0-9.]+) %", text)
    assert float(only.group(2)) >= 91.0   # measures alone close the gap in that reading
    tables = "".join(_rich(nb, "text/html"))
    assert "全县 County" in tables and "(亩)" in tables and "(hm²)" in tables
    assert re.search(r"依据 rule: interpolated:area_majority", text)
    assert len(_maps(nb)) == 2 and len(_rich(nb, "image/png")) == 1
    out = kernel_env / "01_quickstart"
    for name in ("demo_county_2023.html", "huangtang_2023.html", "class_area_2023.csv",
                 "gap_plan_2023.csv", "class_area_2023.png"):
        assert (out / name).stat().st_size > 0, name
    strays = [d / n for d in (ROOT, NOTEBOOKS) for n in ("demo_county_2023.html", "01_quickstart")]
    assert not any(p.exists() for p in strays), "notebook output written into the repository"


def test_dynamic_notebook_keeps_runs_diffs_and_plans(run_notebook, kernel_env):
    nb, seconds = run_notebook(DYNAMIC)
    assert seconds < NOTEBOOK_BUDGET_S
    text = _stdout(nb)
    assert "run 1: R0001" in text and "run 2: R0002" in text
    # the refit rule: 120 samples added to 1 500, the 2023 variograms reused
    assert "variograms: variograms reused from R0001 for ph, cd, hg, as, pb, cr" in text
    from farmland.runs.workspace import Workspace
    out = kernel_env / "02_dynamic"
    runs = Workspace(out / "farmland_runs.gpkg").runs()
    assert list(runs["run_id"]) == ["R0001", "R0002"]
    assert runs["n_crops"].tolist() == [400, 550]       # 2024 adds 150 crop samples
    effects = {k: float(v) for k, v in re.findall(
        r"(reclassification effect|measures effect|total change): +([+-][0-9.]+) pp", text)}
    assert set(effects) == {"reclassification effect", "measures effect", "total change"}
    assert effects["reclassification effect"] + effects["measures effect"] == pytest.approx(
        effects["total change"], abs=0.011)           # printed with 2 decimals
    assert "new points: 60" in text and "same seed, same plan: True" in text
    plan = pd.read_csv(out / "field_plan" / "plan.csv", encoding="utf-8-sig")
    assert len(plan) == 60 and plan.iloc[:, 0].is_unique
    for suffix in ("gpx", "kml", "gpkg"):
        assert (out / "field_plan" / f"plan.{suffix}").stat().st_size > 0
    assert len(_maps(nb)) == 1 and len(_rich(nb, "image/png")) == 1
