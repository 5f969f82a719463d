"""Province-scale benchmark: read -> classify (local kriging) -> cross-validation -> rate -> flags.

Each size runs in a fresh process (so the peak RSS is that run's); the table shows
seconds per step, the peak resident memory, and the ratio of each step's time
between the largest and the smallest size next to the n log n ratio.

Run (generate the data first with ``benchmarks/make_province.py``)::

    python benchmarks/province.py --data /tmp/province_0.1 /tmp/province
    python benchmarks/province.py --data /tmp/province_0.1 --scheduler local   # dask LocalCluster(2)
    python benchmarks/province.py --data data/demo --repeat 3

``--data`` folders hold ``parcels.parquet`` (or ``parcels.gpkg``), ``soil_samples.csv``,
``crop_samples.csv`` and ``measures.csv`` (``measures_2023.csv`` in the demo county).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

STEPS = ("read", "classify samples", "classify parcels", "cross-validation", "rate", "flags")


def _first(folder: Path, *names: str) -> Path:
    for name in names:
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(f"none of {names} in {folder}")


def run_once(folder: Path, scheduler: str | None, fmt: str) -> dict:
    """One full chain in this process; seconds per step and peak RSS (MB)."""
    import logging

    from farmland.classify.parcels import classify_parcels
    from farmland.classify.samples import classify_samples
    from farmland.geostats.quality import cross_validation_report
    from farmland.geostats.surfaces import fit_surface_models
    from farmland.io import readers as fio
    from farmland.rate.accounting import safe_utilisation_rate
    from farmland.rules import load_rules
    from farmland.runs.pipeline import ClassificationInputs, read_inputs
    from farmland.sampling.flags import flag_sparse
    from farmland.standards import load_standard

    logging.basicConfig(level=logging.WARNING)
    parcels_file = (_first(folder, "parcels.parquet", "parcels.gpkg") if fmt == "parquet"
                    else _first(folder, "parcels.gpkg"))
    inputs = ClassificationInputs(parcels=parcels_file,
                                  samples=[_first(folder, "soil_samples.csv")],
                                  crops=[_first(folder, "crop_samples.csv")],
                                  crs="EPSG:4545")
    rules, std = load_rules(), load_standard()
    t, times = time.perf_counter(), {}

    def lap(name):
        nonlocal t
        now = time.perf_counter()
        times[name] = now - t
        t = now

    parcels, samples, crops = read_inputs(inputs)
    measures = fio.read_measures(_first(folder, "measures.csv", "measures_2023.csv"))
    lap("read")
    classified = classify_samples(samples, parcels=parcels, standard=std, rules=rules)
    lap("classify samples")
    surfaces = fit_surface_models(classified[classified["usable"]], rules, "kriging")
    lap("fit variograms")
    if scheduler:
        from farmland.classify.distributed import classify_parcels_distributed
        out, classified, graded = classify_parcels_distributed(
            parcels, classified, crops=crops, rules=rules, interpolator=surfaces, standard=std,
            scheduler=scheduler)
    else:
        out, classified, graded = classify_parcels(parcels, classified, crops=crops, rules=rules,
                                                   interpolator=surfaces, standard=std)
    lap("classify parcels")
    cross_validation_report(classified, surfaces, standard=std)
    lap("cross-validation")
    safe_utilisation_rate(out, measures, crops=graded)
    lap("rate")
    flag_sparse(out, classified, crops=graded)
    lap("flags")
    times["total"] = sum(times.values())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"parcels": len(parcels), "samples": len(samples), "times": times,
            "peak_mb": peak_mb, "children_peak_mb": children,
            "unclassified": int(out["final_class"].isna().sum())}


def run_fresh(folder: Path, scheduler: str | None, fmt: str) -> dict:
    cmd = [sys.executable, __file__, "--one", str(folder), "--format", fmt]
    if scheduler:
        cmd += ["--scheduler", scheduler]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    """Markdown table: one row per step, one column per size, ratio last/first vs n log n."""
    sizes = [r["parcels"] for r in rows]
    head = "| step | " + " | ".join(f"{n:,} parcels" for n in sizes) + " |"
    ratio = len(rows) > 1
    if ratio:
        n0, n1 = sizes[0], sizes[-1]
        nlogn = n1 * math.log(n1) / (n0 * math.log(n0))
        head += f" ratio (n log n = {nlogn:.1f}) |"
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for step in (*STEPS, "total"):
        cells = [f"{r['times'][step]:.1f} s" for r in rows]
        line = f"| {step} | " + " | ".join(cells) + " |"
        if ratio:
            line += f" {rows[-1]['times'][step] / max(rows[0]['times'][step], 1e-3):.1f} |"
        lines.append(line)
    mem = [f"{r['peak_mb'] / 1024:.2f} GB" + (f" (+ workers {r['children_peak_mb'] / 1024:.2f})"
                                            if r.get("children_peak_mb", 0) > 1 else "")
           for r in rows]
    lines.append("| peak RSS | " + " | ".join(mem) + (" |  |" if ratio else " |"))
    return "\n".join(lines)


def median_run(runs: list[dict]) -> dict:
    out = dict(runs[0])
    out["times"] = {k: statistics.median(r["times"][k] for r in runs) for k in runs[0]["times"]}
    out["peak_mb"] = max(r["peak_mb"] for r in runs)
    out["children_peak_mb"] = max(r.get("children_peak_mb", 0) for r in runs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", type=Path, default=[])
    ap.add_argument("--repeat", type=int, default=1, help="runs per size (median shown)")
    ap.add_argument("--scheduler", default=None, help="local or tcp://HOST:PORT (dask)")
    ap.add_argument("--format", default="parquet", choices=["parquet", "gpkg"])
    ap.add_argument("--one", type=Path, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(run_once(a.one, a.scheduler, a.format)))
        return
    rows = []
    for folder in a.data:
        runs = [run_fresh(folder, a.scheduler, a.format) for _ in range(a.repeat)]
        for r in runs:
            print(f"{folder}: " + ", ".join(f"{k} {v:.1f}" for k, v in r["times"].items())
                  + f", peak {r['peak_mb']:.0f} MB", file=sys.stderr)
        rows.append(median_run(runs))
    print(table(rows))


if __name__ == "__main__":
    main()
