"""Incremental re-classification at province scale (issue 19 item 2).

On a province written by ``benchmarks/make_province.py`` (GeoParquet parcels, CSV soil
and crop samples) this runs ``farmland classify`` three times in fresh processes, with
one workspace:

1. ``full``: the province's samples (run R0001);
2. ``incremental``: the same plus N added 加密 samples (default 500), automatic
   incremental run from R0001 (the variograms are reused: 0.5 % of the values changed);
3. ``full again``: the same inputs with ``--since R0001 --full``, the reference.

and prints wall and CPU seconds and peak RSS of each, the incremental run's record from
its manifest, and whether its parcels, samples and crops layers equal the reference's.

The added samples are seeded: a random point inside N random parcels, each value the
nearest existing sample's times a log-normal factor (σ = 0.2; pH ± 0.2), ids ``JM000001…``.

Run: ``python benchmarks/make_province.py`` (1 M parcels; ``--scale 0.1`` for 100 k),
then ``python benchmarks/incremental.py --data /tmp/province [--added 500]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from scipy.spatial import cKDTree

RUN = """
import resource, sys, time
from farmland.cli import main
t = time.perf_counter()
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
else:
    code = 0
u = resource.getrusage(resource.RUSAGE_SELF)
print(f"BENCH {time.perf_counter() - t:.2f} {u.ru_utime + u.ru_stime:.2f} "
      f"{u.ru_maxrss / 1024 ** 2:.2f} {code}", file=sys.stderr)
"""


def added_samples(data: Path, n: int, seed: int) -> pd.DataFrame:
    """N new samples in random parcels, values from the nearest existing sample."""
    rng = np.random.default_rng(seed)
    soil = pd.read_csv(data / "soil_samples.csv", encoding="utf-8-sig")
    parcels = (gpd.read_parquet(data / "parcels.parquet", columns=["geometry"])
               if (data / "parcels.parquet").exists()
               else pyogrio.read_dataframe(data / "parcels.gpkg", columns=[]))
    pick = rng.choice(len(parcels), size=n, replace=False)
    xy = np.round(shapely.get_coordinates(
        shapely.point_on_surface(parcels.geometry.values[pick])), 2)
    _, near = cKDTree(soil[["X", "Y"]].to_numpy()).query(xy)
    new = soil.iloc[near].reset_index(drop=True).copy()
    new["样品编号"] = [f"JM{i:06d}" for i in range(1, n + 1)]
    new["X"], new["Y"] = xy[:, 0], xy[:, 1]
    new["pH"] = np.round(np.clip(new["pH"] + rng.uniform(-0.2, 0.2, n), 4.0, 9.0), 2)
    for col in ("镉", "汞", "砷", "铅", "铬"):
        new[col] = np.round(new[col] * np.exp(0.2 * rng.standard_normal(n)), 4)
    new["采样年份"] = 2024
    new["调查类型"] = "加密"
    return new


def classify(data: Path, work: Path, out: str, samples: list[Path], *extra: str) -> dict:
    parcels = data / "parcels.parquet"
    if not parcels.exists():
        parcels = data / "parcels.gpkg"
    argv = ["classify", "--parcels", str(parcels), "--crs", "EPSG:4545",
            "--crops", str(data / "crop_samples.csv"), "--workspace", str(work / "ws.gpkg"),
            "-o", str(work / out), "--overwrite", *extra]
    for s in samples:
        argv += ["--samples", str(s)]
    load = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, "-c", RUN, *argv], capture_output=True, text=True,
                          check=False)
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("BENCH ")]
    if proc.returncode or not line or line[-1].split()[4] != "0":
        sys.exit(f"{out} failed:\n{proc.stderr[-3000:]}")
    wall, cpu, rss, _ = line[-1].split()[1:]
    return {"run": out, "wall_s": float(wall), "cpu_s": float(cpu), "peak_gb": float(rss),
            "load": round(load, 2)}


def same_layers(a: Path, b: Path) -> bool:
    """The classification files hold the same layers in the same order with equal values
    (the incremental run's file is patched from R0001's, the reference written fresh)."""
    names = [pyogrio.list_layers(f / "classification.gpkg")[:, 0].tolist() for f in (a, b)]
    if names[0] != names[1]:
        print(f"layers differ: {names}")
        return False
    for layer in (n for n in names[0] if n != "layer_styles"):
        fa = pyogrio.read_dataframe(a / "classification.gpkg", layer=layer)
        fb = pyogrio.read_dataframe(b / "classification.gpkg", layer=layer)
        try:
            pd.testing.assert_frame_equal(fa, fb, check_exact=True)
        except AssertionError as exc:
            print(f"{layer} differs: {str(exc)[:400]}")
            return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/tmp/province"))
    ap.add_argument("--work", type=Path, default=None, help="default: DATA_incremental")
    ap.add_argument("--added", type=int, default=500)
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--keep-first", action="store_true",
                    help="reuse the workspace and R0001 of an earlier run of this script")
    args = ap.parse_args()
    work = args.work or args.data.with_name(args.data.name + "_incremental")
    work.mkdir(parents=True, exist_ok=True)
    added = work / "added.csv"
    soil = args.data / "soil_samples.csv"
    t = time.perf_counter()
    if not args.keep_first:
        (work / "ws.gpkg").unlink(missing_ok=True)
        added_samples(args.data, args.added, args.seed).to_csv(added, index=False,
                                                               encoding="utf-8-sig")
    rows = [] if args.keep_first else [classify(args.data, work, "full", [soil])]
    rows += [classify(args.data, work, "incremental", [soil, added], "--since", "R0001"),
            classify(args.data, work, "full_again", [soil, added], "--since", "R0001",
                     "--full")]
    manifest = json.loads((work / "incremental" / "manifest.json").read_text(encoding="utf-8"))
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    print("incremental record:", json.dumps(manifest.get("incremental"), ensure_ascii=False))
    print("variograms:", manifest["variograms"]["summary"])
    inc, ref = rows[-2], rows[-1]
    print(f"incremental / full (wall): {inc['wall_s'] / ref['wall_s']:.3f}; "
          f"CPU: {inc['cpu_s'] / ref['cpu_s']:.3f}")
    print("incremental = full:", same_layers(work / "incremental", work / "full_again"))
    print(f"total {time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()
