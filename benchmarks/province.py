"""Province-scale benchmark: read -> classify (local kriging) -> cross-validation -> rate ->
flags -> zones -> sampling plan.

Each size runs in a fresh process (so the peak RSS is that run's); the table shows
seconds per step, the peak resident memory, and the ratio of each step's time
between the largest and the smallest size next to the n log n ratio. ``--steps`` prints
a second table per step: seconds and CPU seconds (user + sys) at each size, their ratio,
the peak RSS after the step, and the load average at the start and end of each run.

Zones are the strict-control (class 3) and safe-utilisation (class 2) contiguous zones
with the 30 m gap (``farmland flag`` writes the first; ``flags`` dissolves both again
for its thin-zone flag). The plan is ``farmland plan``'s: ``plan_sampling`` in mode
``combined`` (coverage inside the flags, the fitted variogram of the main driving
metal), then ``plan_effect``; ``--plan-n`` points (default 500, the same at every size:
a plan is a field campaign's batch, and the greedy picks rescan the candidates per point).

Run (generate the data first with ``benchmarks/make_province.py``)::

    python benchmarks/province.py --data /tmp/province_0.1 /tmp/province
    python benchmarks/province.py --data /tmp/province_0.1 --scheduler local   # dask LocalCluster(2)
    python benchmarks/province.py --data /tmp/province_0.1 --scheduler tcp     # dask scheduler +
    #   2 `dask worker` processes (1 thread each) started for the run; or tcp://HOST:PORT
    python benchmarks/province.py --data data/demo --repeat 3

``--data`` folders hold ``parcels.parquet`` (or ``parcels.gpkg``), ``soil_samples.csv``,
``crop_samples.csv`` and ``measures.csv`` (``measures_2023.csv`` in the demo county).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEPS = ("read", "classify samples", "fit variograms", "classify parcels", "cross-validation",
         "rate", "flags", "zones", "plan", "plan effect")
#: steps after the classification (issue 19: "the rest of the chain at scale")
REST = ("rate", "flags", "zones", "plan", "plan effect")
#: workers of ``--scheduler tcp``
TCP_WORKERS = 2


def _first(folder: Path, *names: str) -> Path:
    for name in names:
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(f"none of {names} in {folder}")


def _rusage() -> tuple[float, float]:
    """CPU seconds (user + sys) and peak RSS (MB) of this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_maxrss / 1024


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run_once(folder: Path, scheduler: str | None, fmt: str, plan_n: int) -> dict:
    """One full chain in this process; seconds, CPU seconds and peak RSS (MB) per step."""
    import logging

    from farmland.classify.parcels import classify_parcels
    from farmland.classify.samples import classify_samples
    from farmland.geostats.quality import cross_validation_report
    from farmland.geostats.surfaces import fit_surface_models
    from farmland.io import readers as fio
    from farmland.rate.accounting import safe_utilisation_rate
    from farmland.rules import load_rules
    from farmland.runs.pipeline import ClassificationInputs, read_inputs
    from farmland.sampling.effect import plan_effect
    from farmland.sampling.expected import main_variogram
    from farmland.sampling.flags import flag_sparse
    from farmland.sampling.planner import plan_sampling
    from farmland.sampling.zones import class_zones, strict_control_zones
    from farmland.standards import load_standard

    logging.basicConfig(level=logging.WARNING)
    parcels_file = (_first(folder, "parcels.parquet", "parcels.gpkg") if fmt == "parquet"
                    else _first(folder, "parcels.gpkg"))
    inputs = ClassificationInputs(parcels=parcels_file,
                                  samples=[_first(folder, "soil_samples.csv")],
                                  crops=[_first(folder, "crop_samples.csv")],
                                  crs="EPSG:4545")
    rules, std = load_rules(), load_standard()
    load_start = _load()
    t, times, cpu, rss = time.perf_counter(), {}, {}, {}
    c = _rusage()[0]

    def lap(name):
        nonlocal t, c
        now, (now_cpu, peak) = time.perf_counter(), _rusage()
        times[name], cpu[name], rss[name] = now - t, now_cpu - c, peak
        t, c = now, now_cpu

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
    _, _, models = cross_validation_report(classified, surfaces, standard=std)
    lap("cross-validation")
    safe_utilisation_rate(out, measures, crops=graded)
    lap("rate")
    flags = flag_sparse(out, classified, crops=graded)
    lap("flags")
    strict = strict_control_zones(out, classified)
    safe_use = class_zones(out, classified, final_class=2)
    lap("zones")
    plan = plan_sampling(out, classified, n=plan_n, mode="combined", flags=flags,
                         variogram=main_variogram(models, out), rules=rules, seed=0)
    lap("plan")
    plan_effect(out, classified, plan)
    lap("plan effect")
    times["total"] = sum(times.values())
    cpu["total"] = sum(cpu.values())
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"parcels": len(parcels), "samples": len(samples), "times": times, "cpu": cpu,
            "rss_mb": rss, "peak_mb": max(rss.values()), "children_peak_mb": children,
            "load": [load_start, _load()], "plan_points": len(plan),
            "zones": [len(strict), len(safe_use)],
            "unclassified": int(out["final_class"].isna().sum())}


def run_fresh(folder: Path, scheduler: str | None, fmt: str, plan_n: int) -> dict:
    if scheduler == "tcp":
        with tcp_cluster(TCP_WORKERS) as client:
            before = client.run(_rusage)  # the workers' CPU seconds and peak RSS (MB)
            out = run_fresh(folder, client.scheduler.address, fmt, plan_n)
            usage = client.run(_rusage)
        # CPU the workers spent during the run (importing farmland included)
        out["workers_cpu"] = sum(cpu - before[w][0] for w, (cpu, _) in usage.items())
        out["children_peak_mb"] = max(mb for _, mb in usage.values())
        return out
    cmd = [sys.executable, __file__, "--one", str(folder), "--format", fmt,
           "--plan-n", str(plan_n)]
    if scheduler:
        cmd += ["--scheduler", scheduler]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def tcp_cluster(n_workers: int):
    """A ``dask scheduler`` and ``n_workers`` ``dask worker`` processes (one thread, no
    nanny, no dashboard) of this interpreter on 127.0.0.1; yields a client of the scheduler
    and kills them afterwards. Workers import farmland as this process does (PYTHONPATH)."""
    from dask.distributed import Client

    import farmland

    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        src = str(Path(farmland.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        file = str(Path(tmp) / "scheduler.json")
        common = ["--no-dashboard", "--scheduler-file", file]
        cmds = [["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0"]]
        cmds += [["distributed.cli.dask_worker", "--nthreads", "1", "--no-nanny", "--host",
                  "127.0.0.1", "--local-directory", tmp]] * n_workers
        procs = [subprocess.Popen([sys.executable, "-m", *cmd, *common], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True) for cmd in cmds]
        try:
            with Client(scheduler_file=file, timeout=120) as client:
                client.wait_for_workers(n_workers, timeout=120)
                yield client
        finally:
            for p in procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()


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
    cpu = [f"{r['cpu']['total']:.1f} s" + (f" (+ workers {r['workers_cpu']:.1f} s)"
                                          if "workers_cpu" in r else "") for r in rows]
    lines.append("| CPU, user + sys | " + " | ".join(cpu) + (" |  |" if ratio else " |"))
    lines.append("| load average (start → end) | " + " | ".join(" → ".join(r["load"])
                                                         for r in rows) + (" |  |" if ratio else " |"))
    return "\n".join(lines)


def step_table(rows: list[dict], steps=REST) -> str:
    """Markdown table of ``steps`` (first and last size): wall and CPU seconds, their ratio
    against n log n, the peak RSS after the step and the load average of each run."""
    r0, r1 = rows[0], rows[-1]
    n0, n1 = r0["parcels"], r1["parcels"]
    nlogn = n1 * math.log(n1) / (n0 * math.log(n0))
    head = (f"| step | {n0:,} parcels: wall (CPU) | {n1:,} parcels: wall (CPU) | "
            f"ratio wall (CPU); n log n = {nlogn:.1f} | peak RSS after the step | "
            f"load average (start → end of run) |")
    lines = [head, "|---|---:|---:|---:|---:|---|"]
    for step in (*steps, "total"):
        w0, w1 = r0["times"][step], r1["times"][step]
        c0, c1 = r0["cpu"][step], r1["cpu"][step]
        rss = ("" if step == "total" else
               f"{r0['rss_mb'][step] / 1024:.2f} → {r1['rss_mb'][step] / 1024:.2f} GB")
        load = "" if step != steps[0] else " / ".join(" → ".join(r["load"]) for r in (r0, r1))
        lines.append(f"| {step} | {w0:.1f} s ({c0:.1f} s) | {w1:.1f} s ({c1:.1f} s) | "
                     f"{w1 / max(w0, 1e-3):.1f} ({c1 / max(c0, 1e-3):.1f}) | {rss} | {load} |")
    return "\n".join(lines)


def median_run(runs: list[dict]) -> dict:
    out = dict(runs[0])
    for key in ("times", "cpu"):
        out[key] = {k: statistics.median(r[key][k] for r in runs) for k in runs[0][key]}
    out["rss_mb"] = {k: max(r["rss_mb"][k] for r in runs) for k in runs[0]["rss_mb"]}
    out["peak_mb"] = max(r["peak_mb"] for r in runs)
    out["children_peak_mb"] = max(r.get("children_peak_mb", 0) for r in runs)
    if "workers_cpu" in runs[0]:
        out["workers_cpu"] = statistics.median(r["workers_cpu"] for r in runs)
    out["load"] = [runs[0]["load"][0], runs[-1]["load"][1]]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", type=Path, default=[])
    ap.add_argument("--repeat", type=int, default=1, help="runs per size (median shown)")
    ap.add_argument("--scheduler", default=None,
                    help="dask: local (LocalCluster), tcp (scheduler + 2 worker processes "
                         "started for each run) or tcp://HOST:PORT")
    ap.add_argument("--format", default="parquet", choices=["parquet", "gpkg"])
    ap.add_argument("--plan-n", type=int, default=500, help="points of the sampling plan")
    ap.add_argument("--steps", action="store_true",
                    help="also print the rate/flags/zones/plan table (first vs last size)")
    ap.add_argument("--json", type=Path, default=None, help="also write the runs here")
    ap.add_argument("--one", type=Path, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(run_once(a.one, a.scheduler, a.format, a.plan_n)))
        return
    rows = []
    for folder in a.data:
        runs = [run_fresh(folder, a.scheduler, a.format, a.plan_n) for _ in range(a.repeat)]
        for r in runs:
            print(f"{folder}: " + ", ".join(f"{k} {v:.1f}" for k, v in r["times"].items())
                  + f", peak {r['peak_mb']:.0f} MB, load {' -> '.join(r['load'])}",
                  file=sys.stderr)
        rows.append(median_run(runs))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    print(table(rows))
    if a.steps and len(rows) > 1:
        print()
        print(step_table(rows))


if __name__ == "__main__":
    main()
