"""When each step of ``farmland demo`` ran, in which process, and its CPU seconds.

Runs ``farmland demo`` (arguments passed through, e.g. ``--jobs 1``) and prints, after it,
one line per step: the process ("M" the demo's own, "W" the worker), start and end in
seconds from the start of this script, the step and the CPU seconds of its process while
it ran (:class:`farmland.cli.parallel.Outcome`). The step table of benchmarks/README.md
("Fourth pass") comes from it. Run from the repository root::

    python benchmarks/demo_timeline.py -o /tmp/demo/out --maps /tmp/demo/maps --overwrite
"""

from __future__ import annotations

import sys
import time


def main() -> None:
    t0 = time.perf_counter()
    from farmland.cli import demo
    from farmland.cli import main as cli

    rows = []
    show = demo._show

    def recording(step, outcome):
        rows.append((outcome.started - t0, outcome.seconds, outcome.cpu, step.key,
                     "W" if outcome.worker else "M"))
        show(step, outcome)

    demo._show = recording   # the demo passes its _show to run_graph at call time
    try:
        cli.main(args=["demo", *sys.argv[1:]], prog_name="farmland", standalone_mode=False)
    finally:
        print(f"total {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        for start, wall, cpu, key, who in sorted(rows):
            print(f"{who} {start:6.1f} -> {start + wall:6.1f}  {key:14s} cpu {cpu:5.1f}",
                  file=sys.stderr)


if __name__ == "__main__":   # the worker process is started with spawn: it imports this file
    main()
