"""Benchmark local ordinary kriging: farmland vs PyKrige (moving window, C) vs GSTools (global).

Not part of the test suite. PyKrige is a benchmark-only dependency::

    pip install pykrige
    python benchmarks/kriging.py            # full run (several minutes)
    python benchmarks/kriging.py --quick    # small sizes, smoke test

Every case runs once, in a fresh process (peak RSS is that process's maximum
resident memory). All tools get the same samples, the same variogram (spherical,
nugget 0.1, sill 1.0, range 5 000 m, on ln-values) and, for the moving windows,
the same k. Predictions are compared on the log scale (kriging mean of ln Z), so
the difference reflects the solvers, not back-transforms. Samples are a seeded
GSTools lognormal field over a 50 km × 50 km square; targets are a regular grid.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

EXTENT = 50_000.0
SILL, NUGGET, RANGE = 1.0, 0.1, 5_000.0


def make_data(folder: Path, n: int, cells: int, seed: int = 0) -> Path:
    """Samples (x, y, ln z) of a simulated field and a square grid of ~``cells`` targets."""
    import gstools as gs

    path = folder / f"data_{n}_{cells}.npz"
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, EXTENT, (n, 2))
    model = gs.Spherical(dim=2, var=SILL - NUGGET, len_scale=RANGE, nugget=NUGGET)
    lnz = gs.SRF(model, mean=-1.0, seed=seed)((xy[:, 0], xy[:, 1]))
    side = round(float(np.sqrt(cells)))
    centres = (np.arange(side) + 0.5) * EXTENT / side
    gx, gy = np.meshgrid(centres, centres)
    np.savez(path, xy=xy, lnz=lnz, targets=np.column_stack([gx.ravel(), gy.ravel()]))
    return path


def run_farmland(data: dict, k: int) -> dict:
    from farmland.geostats.estimators import LocalKriging
    from farmland.geostats.variogram import VariogramModel

    model = VariogramModel("spherical", NUGGET, SILL, RANGE)
    t0 = time.perf_counter()
    est = LocalKriging(k=k, variogram=model).fit(data["xy"], np.exp(data["lnz"]))
    mean, var = est.predict_distribution(data["targets"])
    return {"seconds": time.perf_counter() - t0, "mean": mean, "var": var}


def run_farmland_fit(data: dict, k: int) -> dict:
    """Fit the variogram (auto model) as well, then predict."""
    from farmland.geostats.estimators import LocalKriging

    t0 = time.perf_counter()
    est = LocalKriging(k=k).fit(data["xy"], np.exp(data["lnz"]))
    fitted = time.perf_counter() - t0
    est.predict(data["targets"])
    note = est.variogram_.describe() if est.variogram_ else est.fallback_
    return {"seconds": time.perf_counter() - t0, "note": f"variogram fit {fitted:.1f} s: {note}"}


def run_idw(data: dict, k: int) -> dict:
    from farmland.geostats.estimators import IDW

    t0 = time.perf_counter()
    IDW(k=k, log=True).fit(data["xy"], np.exp(data["lnz"])).predict(data["targets"])
    return {"seconds": time.perf_counter() - t0}


def run_pykrige(data: dict, k: int) -> dict:
    from pykrige.ok import OrdinaryKriging

    t0 = time.perf_counter()
    ok = OrdinaryKriging(
        data["xy"][:, 0],
        data["xy"][:, 1],
        data["lnz"],
        variogram_model="spherical",
        variogram_parameters={"sill": SILL, "range": RANGE, "nugget": NUGGET},
    )
    built = time.perf_counter() - t0
    mean, var = ok.execute(
        "points", data["targets"][:, 0], data["targets"][:, 1], backend="C", n_closest_points=k
    )
    total = time.perf_counter() - t0
    return {
        "seconds": total,
        "mean": np.asarray(mean),
        "var": np.asarray(var),
        "note": f"construction {built:.1f} s + execute {total - built:.1f} s",
    }


def run_gstools(data: dict, k: int) -> dict:
    import gstools as gs

    model = gs.Spherical(dim=2, var=SILL - NUGGET, len_scale=RANGE, nugget=NUGGET)
    t0 = time.perf_counter()
    krig = gs.krige.Ordinary(
        model, cond_pos=(data["xy"][:, 0], data["xy"][:, 1]), cond_val=data["lnz"], exact=True
    )
    mean, var = krig((data["targets"][:, 0], data["targets"][:, 1]), return_var=True)
    return {"seconds": time.perf_counter() - t0, "mean": np.asarray(mean), "var": np.asarray(var)}


RUNNERS = {
    "farmland": run_farmland,
    "farmland+fit": run_farmland_fit,
    "idw": run_idw,
    "pykrige": run_pykrige,
    "gstools": run_gstools,
}


def _child(tool: str, data_path: str, k: int, out_path: str) -> None:
    with np.load(data_path) as f:
        data = {key: f[key] for key in f.files}
    try:
        res = RUNNERS[tool](data, k)
    except MemoryError as exc:
        res = {"seconds": np.nan, "note": f"MemoryError {exc}"}
    res["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    np.save(out_path, res, allow_pickle=True)


def run_case(tool: str, data_path: Path, k: int, folder: Path) -> dict:
    out = folder / f"out_{tool}_{os.getpid()}_{time.monotonic_ns()}.npy"
    proc = mp.get_context("spawn").Process(target=_child, args=(tool, str(data_path), k, str(out)))
    proc.start()
    proc.join()
    if proc.exitcode != 0 or not out.exists():
        return {"seconds": np.nan, "peak_mb": np.nan, "note": f"process exit {proc.exitcode}"}
    return np.load(out, allow_pickle=True).item()


def _diff(a: dict, b: dict, key: str) -> str:
    if key not in a or key not in b:
        return ""
    return f"{np.nanmax(np.abs(a[key] - b[key])):.1e}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (smoke test)")
    args = parser.parse_args(argv)
    scale = 0.01 if args.quick else 1.0
    # (tool, compared-with tool, samples, cells, k)
    plan = [
        ("farmland", None, 1_000, 250_000, 32),
        ("pykrige", "farmland", 1_000, 250_000, 32),
        ("farmland", None, 10_000, 1_000_000, 32),
        ("pykrige", "farmland", 10_000, 1_000_000, 32),
        ("farmland", None, 100_000, 250_000, 16),
        ("farmland", None, 100_000, 250_000, 32),
        ("farmland+fit", None, 100_000, 250_000, 16),
        ("idw", None, 100_000, 250_000, 12),
        ("farmland", None, 2_000, 5_000, 32),
        ("gstools", "farmland", 2_000, 5_000, 32),
        ("farmland", None, 200, 2_000, 200),
        ("gstools", "farmland", 200, 2_000, 200),
    ]
    print(
        f"# kriging benchmark — {os.cpu_count()} cores, load average at start "
        f"{os.getloadavg()[0]:.1f}, python {sys.version.split()[0]}\n"
    )
    print(
        "| tool | samples | cells | k | seconds | peak MB "
        "| max abs diff ln-mean | max abs diff var | note |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        folder, last = Path(tmp), {}
        for tool, ref, n, cells, k in plan:
            n, cells = max(50, int(n * scale)), max(100, int(cells * scale))
            k = min(k, n)
            res = run_case(tool, make_data(folder, n, cells), k, folder)
            other = last.get((ref, n, cells, k), {}) if ref else {}
            last[(tool, n, cells, k)] = res
            print(
                f"| {tool} | {n:,} | {cells:,} | {k} | {res['seconds']:.2f} | "
                f"{res['peak_mb']:.0f} | {_diff(res, other, 'mean')} | "
                f"{_diff(res, other, 'var')} | "
                f"{res.get('note', '')} |",
                flush=True,
            )
    print(f"\nload average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
