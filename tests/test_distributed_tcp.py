"""`farmland classify --scheduler tcp://…` on a real cluster equals the single-process run.

The test starts a ``dask scheduler`` and two ``dask worker`` processes (one thread each,
no dashboard, no nanny) with the interpreter running the tests, waits until both workers
have joined, and classifies the demo county through the CLI twice: in this process and
on the cluster. The workers get ``PYTHONPATH`` with the folder farmland is imported from
here first, so they run the same source as the test, whether that is a checkout
(``PYTHONPATH=src``) or an installed package (CI: ``pip install ".[test]"``); the test
checks that they did. The processes are killed when the module's tests end, passed or
failed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from conftest import run_cli

pytest.importorskip("distributed", reason="dask[distributed] is not installed (extra 'dask')")

import farmland

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
#: seconds to wait for the scheduler file and for both workers
START_TIMEOUT = 90.0
N_WORKERS = 2


def _spawn(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    """A dask process of this interpreter in its own session (killed with its children)."""
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _stop(procs: list[subprocess.Popen], address: str | None) -> None:
    """Ask the scheduler to shut the cluster down; SIGTERM the process groups still alive
    after 5 s, SIGKILL those still alive 5 s later."""
    if address is not None:
        try:
            from dask.distributed import Client

            with Client(address, timeout=5) as client:
                client.shutdown()
        except Exception as exc:  # noqa: BLE001 - whatever is left is killed below
            print(f"dask shutdown: {exc!r}; killing the processes", file=sys.stderr)
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        alive = [p for p in procs if p.poll() is None]
        for p in alive if sig is not None else ():
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5.0
        for p in alive:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass


def _logs(folder: Path) -> str:
    return "\n".join(f"--- {f.name}\n{f.read_text(errors='replace')[-2000:]}"
                     for f in sorted(folder.glob("*.log")))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Address of a scheduler with two single-thread workers, stopped at module end."""
    from dask.distributed import Client

    tmp = tmp_path_factory.mktemp("dask")
    env = dict(os.environ)
    source = str(Path(farmland.__file__).resolve().parents[1])  # src/ or site-packages
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
    scheduler_file = tmp / "scheduler.json"
    procs, address = [], None
    try:
        procs.append(_spawn(["distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                             "--port", "0", "--no-dashboard",
                             "--scheduler-file", str(scheduler_file)], env, tmp / "scheduler.log"))
        deadline = time.monotonic() + START_TIMEOUT
        while address is None:
            try:
                address = json.loads(scheduler_file.read_text())["address"]
            except (OSError, ValueError, KeyError):  # not written yet, or half written
                if procs[0].poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the dask scheduler did not start\n" + _logs(tmp))
                time.sleep(0.2)
        for i in range(N_WORKERS):
            procs.append(_spawn(["distributed.cli.dask_worker", address, "--nthreads", "1",
                                 "--no-nanny", "--no-dashboard", "--host", "127.0.0.1",
                                 "--name", f"w{i}", "--local-directory", str(tmp / f"w{i}")],
                                env, tmp / f"worker{i}.log"))
        with Client(address, timeout=START_TIMEOUT) as client:
            try:
                client.wait_for_workers(N_WORKERS, timeout=START_TIMEOUT)
            except TimeoutError:
                pytest.fail(f"{N_WORKERS} dask workers did not connect\n" + _logs(tmp))
            where = client.run(lambda: __import__("farmland").__file__)
        yield address, where
    finally:
        _stop(procs, address)


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """The demo county classified by the CLI in this process and on the cluster."""
    address, _ = cluster
    tmp = tmp_path_factory.mktemp("tcp_runs")
    args = ["classify", "--parcels", DEMO / "parcels.gpkg", "--parcels-layer", "DLTB",
            "--townships", DEMO / "townships.gpkg", "--samples", DEMO / "soil_samples.csv",
            "--crops", DEMO / "crop_samples.csv", "--crs", "EPSG:4545"]
    single = run_cli("-q", *args, "-o", tmp / "single")
    assert single.exit_code == 0, single.output
    many = run_cli("-q", *args, "--scheduler", address, "-o", tmp / "tcp")
    assert many.exit_code == 0, many.output
    return tmp / "single" / "classification.gpkg", tmp / "tcp" / "classification.gpkg"


def test_workers_run_the_tests_farmland(cluster):
    _, where = cluster
    assert len(where) == N_WORKERS
    assert set(where.values()) == {farmland.__file__}


def test_tcp_cluster_parcels_equal_the_single_process_run(runs):
    single, many = runs
    a = gpd.read_file(single, layer="parcels")
    b = gpd.read_file(many, layer="parcels")
    assert len(a) == 30_155
    pd.testing.assert_frame_equal(b.drop(columns="geometry"), a.drop(columns="geometry"),
                                  check_exact=True)
    assert b.geometry.geom_equals_exact(a.geometry, tolerance=0).all()


def test_tcp_cluster_samples_and_crops_equal_the_single_process_run(runs):
    single, many = runs
    for layer in ("samples", "crops"):
        pd.testing.assert_frame_equal(gpd.read_file(many, layer=layer),
                                      gpd.read_file(single, layer=layer), check_exact=True)
