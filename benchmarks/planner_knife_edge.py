"""Which new points moved which parcels across the class-1/2 cut, in one harness county.

Plans N = 5 % of a synthetic county's samples with one mode (as
:mod:`farmland.validation.planner_effect` does), samples the truth there with the
scenario's lab, classifies again with the first run's variograms, and prints for every
new point: its lab and true Cd and pH, and the area of the parcels nearest it (by
centroid) that were classed 1 and became wrong ("made wrong") or were wrong and became
right ("fixed"); then the model's and the calibrated probabilities of the parcels it made
wrong, before and after. This is the probe behind benchmarks/README.md "Ten draws of the
noise" (the noisy-lab paragraph).

Usage::

    python benchmarks/planner_knife_edge.py [--scenario noisy] [--seed 10]
                                            [--mode uncertainty] [--draw 0]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import pandas as pd
import shapely

from farmland.rules import load_rules
from farmland.runs.pipeline import classify_run
from farmland.validation import make_county
from farmland.validation.planner_effect import (
    county_inputs,
    harness_plan,
    lab_part,
    reclassify,
)
from farmland.validation.synthetic import lab_report_at


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="noisy")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--parcels", type=int, default=3000)
    parser.add_argument("--mode", default="uncertainty")
    parser.add_argument("--draw", type=int, default=0, help="lab draw (0 = the tables' report)")
    args = parser.parse_args(argv)
    logging.getLogger("farmland").setLevel(logging.ERROR)

    county = make_county(args.scenario, args.seed, n_parcels=args.parcels)
    rules = load_rules(None)
    with tempfile.TemporaryDirectory(prefix="farmland-knife-") as tmp:
        folder = Path(tmp)
        inputs = county_inputs(county, folder)
        first = classify_run(inputs, rules=rules)
        parcels = first.parcels
        plan, _ = harness_plan(county, first, args.mode, rules)
        part = lab_part(args.draw)
        after = reclassify(county, plan, folder, inputs, rules, first.surfaces, part=part)
    xy = shapely.get_coordinates(plan.geometry.values)
    lab = lab_report_at(county, xy, part=part, prefix="N")
    true_at = county.values_at(xy)
    ids = parcels["parcel_id"].astype(str)
    later = after.set_index(after["parcel_id"].astype(str)).reindex(ids)
    before = parcels["final_class"].to_numpy(float)
    now = pd.to_numeric(later["final_class"], errors="coerce").to_numpy(float)
    truth = county.truth.set_index("parcel_id")["true_class"].reindex(ids).to_numpy(float)
    area = parcels["area_mu"].to_numpy(float)
    made_wrong = (before == 1) & (truth == 1) & (now != truth)
    fixed = (before == 1) & (truth != 1) & (now == truth)
    centres = shapely.get_coordinates(parcels.geometry.centroid.values)
    tree = shapely.STRtree(shapely.points(xy))
    nearest = tree.query_nearest(shapely.points(centres), return_distance=False,
                                 all_matches=False)[1]
    print(f"{args.scenario} seed {args.seed}, {args.mode}, lab draw {args.draw}: land classed 1 "
          f"made wrong {area[made_wrong].sum():.0f} 亩, fixed {area[fixed].sum():.0f} 亩\n")
    points = pd.DataFrame({
        "point": lab["sample_id"], "lab Cd": pd.to_numeric(lab["Cd"], errors="coerce"),
        "true Cd": true_at["cd"].to_numpy(), "lab pH": pd.to_numeric(lab["pH"], errors="coerce"),
        "true pH": true_at["ph"].to_numpy(),
        "made wrong 亩": [area[made_wrong & (nearest == i)].sum() for i in range(len(xy))],
        "fixed 亩": [area[fixed & (nearest == i)].sum() for i in range(len(xy))]})
    print(points.round(3).to_string(index=False))
    columns = ["p_class_1", "p_calibrated_1"]
    moved = pd.DataFrame({f"{c} before": parcels[c].to_numpy(float)[made_wrong] for c in columns}
                         | {f"{c} after": pd.to_numeric(later[c]).to_numpy(float)[made_wrong]
                            for c in columns})
    print("\nParcels made wrong (true class 1, classed 1 before, 2 after):")
    print(moved.describe().loc[["count", "min", "50%", "max"]].round(3).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
