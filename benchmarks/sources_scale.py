"""Time farmland.sources at county and province scale: hot spots, PMF, APCS.

Not part of the test suite. Needs only farmland (``pip install .``)::

    python benchmarks/sources_scale.py                 # demo county, 10 000, 100 000 samples
    python benchmarks/sources_scale.py --sizes 10000   # one synthetic size
    python benchmarks/sources_scale.py --esda          # also esda's own permutations, one element

Each size runs once in a fresh process; "peak MB" is that process's maximum resident
memory after the step (cumulative, so it only grows; about 150 MB is the interpreter and
imports). Steps: reading (demo county only), ``sample_matrix``, ``local_hotspots`` for every
metal (k = 8, 999 permutations), ``factor_diagnostics`` for p = 2…6 (5 starts each) with
``choose_factor_count``, ``PMF`` at that p (20 starts), ``bootstrap_profiles`` (100 runs;
20 above 10 000 samples) and ``APCS``. Synthetic counties are ``synthetic_samples``
(four sources, a smelter plume), spread so that the sample density stays that of a county
with 2 000 samples on 30 km × 30 km. ``--esda`` adds esda's ``G_Local`` (Gi*) and
``Moran_Local`` with their own 999 conditional permutations for Cd alone, one core (with
numba installed, esda compiles its permutation engine in each fresh process, and that
compilation is included).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo" / "soil_samples.csv"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _esda_reference(samples: object) -> None:
    import esda

    from farmland.sources import knn_neighbours
    from farmland.sources.hotspots import _graph

    xy = np.column_stack([samples.geometry.x, samples.geometry.y])
    y = np.log(samples["cd"].to_numpy())
    graph = _graph(knn_neighbours(xy, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        esda.G_Local(y - y.min() + 1, graph, transform="B", star=True, permutations=999,
                     n_jobs=1, seed=0, keep_simulations=False)
        esda.Moran_Local(y, graph, transformation="r", permutations=999, n_jobs=1, seed=0,
                         keep_simulations=False)


def _child(size: int, esda_too: bool, queue: mp.Queue) -> None:
    from farmland.io import read_soil_samples
    from farmland.sources import (
        APCS,
        PMF,
        bootstrap_profiles,
        choose_factor_count,
        factor_diagnostics,
        local_hotspots,
        sample_matrix,
        synthetic_samples,
    )

    steps = []

    def step(name: str, func, *args, **kwargs):
        t0 = time.perf_counter()
        result = func(*args, **kwargs)
        steps.append((name, time.perf_counter() - t0, _peak_mb()))
        return result

    if size == 0:
        samples = step("read soil samples", read_soil_samples, DEMO, crs="EPSG:4545")
    else:
        side = 30_000.0 * np.sqrt(size / 2000)
        samples = synthetic_samples(size, size_m=side, seed=1)
    matrix = step("sample_matrix", sample_matrix, samples)
    step("hot spots, 8 metals", local_hotspots, samples)
    if esda_too:
        import importlib.util

        numba = importlib.util.find_spec("numba") is not None
        step("esda G_Local + Moran_Local, Cd only, "
             + ("numba (compilation included)" if numba else "no numba"), _esda_reference,
             samples)
    X, U = matrix.X, matrix.U
    diagnostics = step("PMF factor diagnostics p = 2…6", factor_diagnostics, X, U)
    p = choose_factor_count(diagnostics)
    model = step(f"PMF p = {p}, 20 starts", PMF(p).fit, X, U)
    n_boot = 100 if len(X) <= 10_000 else 20
    step(f"PMF bootstrap, {n_boot} runs", bootstrap_profiles, model, X, U, n_boot=n_boot)
    step("APCS-MLR", APCS().fit, X)
    queue.put((len(X), steps))


def run(size: int, esda_too: bool) -> tuple[int, list]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(size, esda_too, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[0, 10_000, 100_000],
                        help="synthetic sample counts; 0 is the demo county (default: 0 10000 "
                             "100000)")
    parser.add_argument("--esda", action="store_true",
                        help="also time esda's own conditional permutations (Cd only)")
    args = parser.parse_args(argv)
    print(f"# sources benchmark — {os.cpu_count()} cores, load average at start "
          f"{os.getloadavg()[0]:.1f}, python {sys.version.split()[0]}\n")
    print("| samples | step | seconds | peak MB |")
    print("|---|---|---:|---:|")
    for size in args.sizes:
        n, steps = run(size, args.esda)
        label = f"demo county, {n:,}" if size == 0 else f"synthetic, {n:,}"
        total = 0.0
        for name, seconds, peak in steps:
            total += 0.0 if name.startswith("esda") else seconds
            print(f"| {label} | {name} | {seconds:.2f} | {peak:.0f} |", flush=True)
        print(f"| {label} | **total** (without esda) | **{total:.1f}** | |", flush=True)
    print(f"\nload average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
