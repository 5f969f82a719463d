"""Compare farmland's PMF with EPA's ESAT on the same matrix and uncertainties.

Not part of the test suite. ESAT (EPA's Environmental Source Apportionment Toolkit,
``pip install esat``) pins older numpy, pandas and scipy than farmland needs, so it is
never a farmland dependency: this script makes an isolated virtual environment for it
(``python -m venv`` + ``pip install esat==2025.0.1``; the wheel is built for Python 3.11),
writes the matrices to an ``.npz`` file, runs ESAT's ``BatchSA`` there in a subprocess
and reads its profiles back::

    pip install .                               # farmland itself
    python benchmarks/sources_esat.py           # demo county + synthetic (a few minutes)
    python benchmarks/sources_esat.py --quick   # fewer ESAT models, a smoke test
    python benchmarks/sources_esat.py --venv /tmp/esat-venv --out /tmp/esat-bench

Cases: the demo county's soil samples (``data/demo/soil_samples.csv``, read with
``farmland.io.read_soil_samples(path, crs="EPSG:4545")``, matrix by
``farmland.sources.sample_matrix``) with p from farmland's factor-count rule, and a
synthetic matrix with four known source profiles (``synthetic_mixture``, 1 500 samples).
ESAT runs its defaults (LS-NMF, column-mean initialisation, up to 20 000 iterations,
converged when Q fell by less than 0.1 over 100 iterations, 20 models, the best by
Q(robust)), on one core, three ways: its numpy update (the reference here), its compiled
(Rust) update as ESAT calls it, and the compiled update given Fortran-ordered arrays (as
ESAT 2025.0.1 passes C-ordered arrays, the W and H it returns do not reproduce the Q it
reports; see benchmarks/README.md). farmland runs twice: without robust mode (the
objective ESAT's training minimises) and with it (farmland's default). Factors are
matched one-to-one by the correlation of their profiles, each element divided by its
mean concentration; "overall" is the correlation of all matched profile values so scaled.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import venv
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
ESAT_VERSION = "2025.0.1"

#: runs inside the ESAT environment: reads in.npz, writes out.npz. Modes: "python" (ESAT's
#: numpy LS-NMF), "rust" (its compiled LS-NMF as ESAT calls it, with C-ordered arrays) and
#: "rust-fortran" (the compiled LS-NMF given Fortran-ordered arrays)
ESAT_RUNNER = '''
import sys, time
import numpy as np
from esat.model.batch_sa import BatchSA
from esat.model.sa import SA

data = np.load(sys.argv[1])
mode = sys.argv[3]
train = SA.train


def patched_train(self, *args, **kwargs):
    if mode == "python":
        self.optimized = False
    elif mode == "rust-fortran":
        rust = self.optimized_update
        self.optimized_update = lambda *a: rust(*(np.asfortranarray(x) if isinstance(x, np.ndarray)
                                                  else x for x in a))
    return train(self, *args, **kwargs)


SA.train = patched_train
t0 = time.perf_counter()
batch = BatchSA(V=data["X"], U=data["U"], factors=int(data["p"]), models=int(data["models"]),
                method="ls-nmf", seed=int(data["seed"]), parallel=False, verbose=False)
batch.train()
seconds = time.perf_counter() - t0
best = batch.results[batch.best_model]
np.savez(sys.argv[2], W=best.W, H=best.H, q_true=best.Qtrue, q_robust=best.Qrobust,
         seconds=seconds, converged=[m.converged for m in batch.results],
         steps=[m.converge_steps for m in batch.results])
'''


#: ESAT runner mode → row label
ESAT_MODES = {"python": f"ESAT {ESAT_VERSION} LS-NMF, numpy",
              "rust-fortran": f"ESAT {ESAT_VERSION} LS-NMF, Rust, Fortran-ordered input",
              "rust": f"ESAT {ESAT_VERSION} LS-NMF, Rust, as shipped"}


def esat_python(folder: Path) -> Path:
    """The Python of an ESAT virtual environment, created on first use."""
    python = folder / "bin" / "python"
    if not python.exists():
        print(f"creating {folder} and installing esat=={ESAT_VERSION} …", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(folder)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"esat=={ESAT_VERSION}"],
                       check=True)
    return python


def run_esat(python: Path, out: Path, name: str, X: np.ndarray, U: np.ndarray, p: int,
             models: int, seed: int, mode: str) -> dict:
    """Run ESAT's BatchSA on X, U in its own environment; profiles normalised like farmland's."""
    runner = out / "esat_runner.py"
    runner.write_text(ESAT_RUNNER, encoding="utf-8")
    src, dst = out / f"{name}_in.npz", out / f"{name}_esat_{mode}.npz"
    np.savez(src, X=X, U=U, p=p, models=models, seed=seed)
    with open(out / f"{name}_esat_{mode}.log", "w", encoding="utf-8") as log:
        subprocess.run([str(python), str(runner), str(src), str(dst), mode], check=True,
                       stdout=log, stderr=subprocess.STDOUT)
    res = np.load(dst)
    W, H = res["W"].astype(float), res["H"].astype(float)
    mean = W.mean(axis=0)
    return {"F": H * mean[:, None], "q_true": float(res["q_true"]),
            "q_robust": float(res["q_robust"]), "seconds": float(res["seconds"]),
            "converged": f"{int(res['converged'].sum())}/{len(res['converged'])}",
            "iterations": int(np.median(res["steps"]))}


def run_farmland(X: np.ndarray, U: np.ndarray, p: int, robust: bool, seed: int) -> dict:
    from farmland.sources import PMF

    t0 = time.perf_counter()
    model = PMF(p, robust=robust, seed=seed).fit(X, U)
    seconds = time.perf_counter() - t0
    return {"F": model.profiles_, "q_true": model.q_true_, "q_robust": model.q_robust_,
            "seconds": seconds, "converged": f"{int(model.runs_['converged'].sum())}/"
            f"{len(model.runs_)}", "iterations": int(model.runs_["n_iter"].median())}


def compare(reference: np.ndarray, other: np.ndarray, scale: np.ndarray) -> tuple[list, float]:
    """Per-factor correlation of matched profiles and the overall correlation."""
    from farmland.sources import match_factors

    match, corr = match_factors(reference, other, scale)
    a = (reference / scale).ravel()
    b = (other[match] / scale).ravel()
    return list(corr), float(np.corrcoef(a, b)[0, 1])


def cases() -> list[tuple[str, np.ndarray, np.ndarray, int, np.ndarray | None]]:
    """(name, X, U, p, true profiles or None)."""
    from farmland.io import read_soil_samples
    from farmland.sources import (
        choose_factor_count,
        factor_diagnostics,
        sample_matrix,
        synthetic_mixture,
    )

    samples = read_soil_samples(ROOT / "data" / "demo" / "soil_samples.csv", crs="EPSG:4545")
    demo = sample_matrix(samples)
    p = choose_factor_count(factor_diagnostics(demo.X, demo.U))
    mix = synthetic_mixture(1500, seed=1)
    return [("demo county", demo.X, demo.U, p, None),
            ("synthetic, 4 known sources", mix.X, mix.U, 4, mix.F)]


def markdown(table: pd.DataFrame) -> str:
    """A GitHub table (no tabulate dependency)."""
    cells = table.astype(object).where(table.notna(), "").astype(str)
    lines = ["| " + " | ".join(cells.columns) + " |", "|" + "---|" * len(cells.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells.to_numpy()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=Path("/tmp/farmland-esat-venv"),
                        help="ESAT's virtual environment (created when missing)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/farmland-esat"),
                        help="folder for the exchanged .npz files, logs and results.csv")
    parser.add_argument("--models", type=int, default=20, help="ESAT models (random starts)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--quick", action="store_true", help="3 ESAT models, a smoke test")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    python = esat_python(args.venv)
    models = 3 if args.quick else args.models
    reference = f"ESAT {ESAT_VERSION} LS-NMF, numpy"
    rows = []
    for name, X, U, p, truth in cases():
        key = name.split(",")[0].replace(" ", "_")
        scale = X.mean(axis=0)
        runs = {"farmland (non-robust)": run_farmland(X, U, p, False, args.seed),
                "farmland (robust, default)": run_farmland(X, U, p, True, args.seed)}
        for mode, label in ESAT_MODES.items():
            print(f"{name}: ESAT {mode} …", file=sys.stderr)
            runs[label] = run_esat(python, args.out, key, X, U, p, models, args.seed, mode)
        for tool, run in runs.items():
            row = {"case": name, "n": len(X), "p": p, "tool": tool,
                   "q_true": round(run["q_true"], 1), "q_robust": round(run["q_robust"], 1),
                   "seconds": round(run["seconds"], 1), "converged": run["converged"],
                   "median iterations": run["iterations"]}
            if tool != reference:
                per, overall = compare(runs[reference]["F"], run["F"], scale)
                row["r vs ESAT numpy per factor"] = " ".join(f"{r:.3f}" for r in per)
                row["r vs ESAT numpy overall"] = round(overall, 4)
            if truth is not None:
                per, overall = compare(truth, run["F"], scale)
                row["r vs truth per source"] = " ".join(f"{r:.3f}" for r in per)
                row["r vs truth overall"] = round(overall, 4)
            rows.append(row)
    table = pd.DataFrame(rows)
    table.to_csv(args.out / "results.csv", index=False)
    print(markdown(table))


if __name__ == "__main__":
    main()
