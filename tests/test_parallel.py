"""Steps of a chain side by side (farmland.cli.parallel): the order worked out by hand,
a step really run in the second process with its output kept, a failure stopping the
chain, and the demo's graph naming every step whose files a step reads."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from farmland.cli import main
from farmland.cli.demo import demo_steps
from farmland.cli.parallel import Graph, Step, check_graph, priorities, run_graph


def _diamond() -> list[Step]:
    # a (1 s) -> b (2 s), c (5 s) -> d (1 s)
    return [Step("a", "A", [], seconds=1), Step("b", "B", [], ("a",), 2),
            Step("c", "C", [], ("a",), 5), Step("d", "D", [], ("b", "c"), 1)]


def test_priority_is_the_longest_chain_of_seconds_still_to_come():
    # d: 1; c: 5 + 1 = 6; b: 2 + 1 = 3; a: 1 + max(3, 6) = 7
    assert priorities(_diamond()) == {"a": 7, "b": 3, "c": 6, "d": 1}


def test_graph_starts_the_ready_step_heading_the_longest_chain():
    g = Graph(_diamond())
    assert g.take().key == "a"
    assert g.take() is None                 # b and c wait for a
    g.finish("a", 0)
    assert [g.take().key, g.take().key] == ["c", "b"]   # c (6) before b (3)
    assert g.take() is None                 # d waits for both
    g.finish("c", 0)
    g.finish("b", 0)
    assert g.take().key == "d"
    assert not g.over
    g.finish("d", 0)
    assert g.over and g.failed is None


def test_equal_priorities_keep_the_order_of_the_list():
    g = Graph([Step("x", "X", []), Step("y", "Y", []), Step("z", "Z", [])])
    assert [g.take().key for _ in range(3)] == ["x", "y", "z"]


def test_a_process_that_ran_a_warm_step_takes_its_kin_first():
    """m1 and m2 share work a process keeps (warm "m", worth 1.3 s): after m1, the process
    that ran it takes m2 (1 + 1.3 = 2.3) before x (1.5); a process that did not takes x."""
    steps = [Step("m1", "M1", [], seconds=2, warm="m", warm_seconds=1.3),
             Step("x", "X", [], seconds=1.5),
             Step("m2", "M2", [], seconds=1, warm="m", warm_seconds=1.3)]
    g = Graph(steps)
    assert g.take("here").key == "m1"
    g.finish("m1", 0)
    assert g.take("worker").key == "x"
    assert g.take("here").key == "m2"
    g = Graph(steps)
    assert g.take("here").key == "m1"
    g.finish("m1", 0)
    assert g.take("here").key == "m2"
    assert g.take("worker").key == "x"


def test_a_step_left_to_the_other_process_is_taken_only_when_nothing_else_is_ready():
    steps = [Step("r", "R", [], seconds=4, prefer="worker"), Step("m", "M", [], seconds=1)]
    g = Graph(steps)
    assert g.take("here").key == "m"        # r (4 s) is the worker's while m waits
    assert g.take("worker").key == "r"
    g = Graph(steps)
    assert g.take("worker").key == "r"
    g = Graph(steps)
    g.take("here")
    g.finish("m", 0)
    assert g.take("here").key == "r"        # nothing else: this process takes it


def test_a_warm_step_of_the_other_process_is_left_to_it_once_it_has_run_one():
    """Maps (warm "m", preferring this process): before this process has drawn one the
    worker may take one when nothing else is ready; once it has, the worker leaves the
    rest to it, even idle, while they add up to no more than one would cost the worker
    (≈ 0.5 s a map here against ≈ 1.7 s for the first there on the demo)."""
    steps = [Step("m1", "M1", [], seconds=2, warm="m", warm_seconds=1.3, prefer="here"),
             Step("m2", "M2", [], seconds=1, warm="m", warm_seconds=1.3, prefer="here"),
             Step("x", "X", [], seconds=0.5)]
    g = Graph(steps)
    assert g.take("worker").key == "x"
    assert g.take("worker").key == "m1"     # nothing else ready, nobody warm yet
    g = Graph(steps)
    assert g.take("here").key == "m1"
    assert g.take("worker").key == "x"
    assert g.take("worker") is None         # m2 (1 s <= 1.3 + 1 s) waits for this process
    g.finish("m1", 0)
    assert g.take("here").key == "m2"


def test_a_long_backlog_of_warm_steps_is_shared():
    """Thirteen township maps of 0.6 s (a county job with ``townships = "all"``): more than
    one would cost the worker (1.3 + 0.6 s), so an idle worker takes some once this
    process has drawn one, and is then warm for the rest."""
    steps = [Step(f"t{i}", f"T{i}", [], seconds=0.6, warm="m", warm_seconds=1.3,
                  prefer="here") for i in range(13)]
    g = Graph(steps)
    assert g.take("here").key == "t0"
    assert g.take("worker").key == "t1"
    for i in range(2, 11):                  # the worker is warm now: it shares the rest
        assert g.take("here" if i % 2 else "worker") is not None
    assert g.take("worker").key == "t11"    # 2 left (1.2 s), but the worker is warm


def test_three_short_warm_steps_are_left_to_the_process_that_is_warm():
    """The demo's last maps (0.7 + 0.6 + 0.5 s = 1.8 s) cost the worker 1.3 + 0.7 s for
    the first alone: it leaves them to this process."""
    steps = [Step("m0", "M0", [], seconds=2, warm="m", warm_seconds=1.3, prefer="here"),
             *(Step(k, k.upper(), [], seconds=t, after=("m0",), warm="m", warm_seconds=1.3,
                    prefer="here") for k, t in (("src", 0.7), ("town", 0.6), ("diff", 0.5)))]
    g = Graph(steps)
    assert g.take("here").key == "m0"
    g.finish("m0", 0)
    assert g.take("worker") is None
    assert g.take("here").key == "src"


def test_a_failed_step_starts_nothing_new_and_the_graph_ends_when_none_runs():
    g = Graph(_diamond())
    g.take()
    g.finish("a", 0)
    b, c = g.take(), g.take()
    g.finish(b.key if b.key == "c" else c.key, 2)    # c fails while b still runs
    assert g.failed == "c" and g.take() is None and not g.over
    g.finish("b", 0)
    assert g.over


@pytest.mark.parametrize(("steps", "message"), [
    ([Step("a", "A", [], ("b",)), Step("b", "B", [])], "waits for 'b'"),
    ([Step("a", "A", [], ("zz",))], "waits for 'zz'"),
    ([Step("a", "A", []), Step("a", "A2", [])], "two steps are called 'a'"),
])
def test_a_step_may_only_wait_for_an_earlier_step(steps, message):
    with pytest.raises(ValueError, match=message):
        check_graph(steps)


def test_one_job_runs_the_list_in_order_and_stops_at_a_failure():
    ran, shown = [], []

    def here(step):
        ran.append(step.key)
        return 3 if step.key == "b" else 0

    failed = run_graph(_diamond(), run_here=here, show=lambda s, o: shown.append((s.key, o.code)),
                       jobs=1)
    assert failed == ("b", 3)
    assert ran == ["a", "b"] and shown == [("a", 0), ("b", 3)]


def _waiting_for(written):
    """``run_here`` of step "here": it waits until the worker's step has written
    ``written`` (so the worker ran it)."""
    def here(step):
        assert step.key == "here"
        deadline = time.monotonic() + 120
        while not written.exists():
            assert time.monotonic() < deadline, "the worker never ran its step"
            time.sleep(0.05)
        return 0

    return here


def test_the_second_process_runs_a_step_and_its_output_comes_back(tmp_path):
    """"here" runs in this process and waits until "there" (``farmland init``, in the
    worker) has written its file: so the worker ran it, and its printed line came back."""
    written = tmp_path / "county.toml"
    steps = [Step("here", "H", []), Step("there", "T", ["init", str(written)])]
    shown = {}

    failed = run_graph(steps, run_here=_waiting_for(written),
                       show=lambda s, o: shown.setdefault(s.key, o))
    assert failed is None
    assert not shown["here"].worker and shown["there"].worker and shown["there"].code == 0
    text = "".join(t for _, t in shown["there"].chunks)
    assert str(written) in text
    assert "[project]" in written.read_text("utf-8")


def test_one_worker_serves_two_graphs_in_turn(tmp_path):
    """``farmland run`` builds its map commands after the first graph: the worker it
    started serves both (its "ready" is kept) and is the caller's to close."""
    from farmland.cli.parallel import Worker

    worker = Worker()
    try:
        for n in (1, 2):
            written = tmp_path / f"graph{n}.toml"
            # a ready worker takes "there" first (its preference); a preference never
            # idles a core, so it may also take "here" before this process does: "here"
            # is a command that succeeds there too
            steps = [Step("here", "H", ["--version"], prefer="here"),
                     Step("there", "T", ["init", str(written)], prefer="worker")]
            shown = {}

            failed = run_graph(steps, run_here=_waiting_for(written), worker=worker,
                               show=lambda s, o, shown=shown: shown.setdefault(s.key, o))
            assert failed is None and shown["there"].worker and shown["there"].code == 0
            assert worker.process.is_alive()   # not closed by run_graph
    finally:
        worker.close()
    assert not worker.process.is_alive()


def test_a_failing_step_stops_the_chain_in_either_process(tmp_path):
    """Whichever process runs "bad", the chain stops there: "later" never starts, and
    the step's one-line error is what it printed."""
    missing = tmp_path / "missing.gpkg"
    steps = [Step("bad", "B", ["runs", "list", str(missing)]),
             Step("later", "L", ["init", str(tmp_path / "x.toml")], ("bad",))]
    shown = {}

    def here(step):
        return main.main(args=step.argv, prog_name="farmland", standalone_mode=False) or 0

    failed = run_graph(steps, run_here=here, show=lambda s, o: shown.setdefault(s.key, o))
    assert failed == ("bad", 2)
    assert list(shown) == ["bad"] and shown["bad"].code == 2
    assert not (tmp_path / "x.toml").exists()
    if shown["bad"].worker:
        err = "".join(t for s, t in shown["bad"].chunks if s == "err")
        assert "workspace not found" in err and "Traceback" not in err


def test_the_demo_graph_names_the_steps_whose_files_each_step_reads(tmp_path):
    """Every output path on a step's command line (a run folder, a file in one, the
    workspace, the diff folder) is written by a step it waits for, directly or not; and
    the steps that look up earlier runs in the workspace (the closed loop and the rate)
    never run while a classification writes it."""
    from farmland.runs import folder as f

    out, maps = tmp_path / "out", tmp_path / "maps"
    steps = demo_steps(Path("data/demo"), out, maps, overwrite=False)
    check_graph(steps)
    by_key = {s.key: s for s in steps}

    def ancestors(key: str) -> set[str]:
        seen, todo = set(), list(by_key[key].after)
        while todo:
            k = todo.pop()
            if k not in seen:
                seen.add(k)
                todo.extend(by_key[k].after)
        return seen

    # what each kind of step writes into its -o folder
    writes = {"classify": f.CLASSIFY_FILES, "rate": f.RATE_FILES, "flag": f.FLAG_FILES,
              "plan": (*f.PLAN_FILES, f.PLAN_EFFECT), "control": f.CONTROL_FILES,
              "sources": f.SOURCES_FILES, "diff": f.DIFF_FILES}
    target = {s.key: Path(s.argv[s.argv.index("-o") + 1]) for s in steps}
    writers: dict[Path, set[str]] = {}
    for s in steps:
        for p in (target[s.key], *(target[s.key] / n for n in writes.get(s.argv[0], ()))):
            writers.setdefault(p, set()).add(s.key)
    classify_of = {target[s.key]: s.key for s in steps if s.argv[0] == "classify"}
    checked = 0
    for i, s in enumerate(steps):
        for arg in s.argv[1:]:
            p = Path(arg)
            if p == target[s.key] or not p.is_relative_to(out):
                continue
            if p in classify_of:         # a run folder: its classification
                needed = {classify_of[p]}
            elif p == out / f.WORKSPACE:   # the run history: the classifications before
                needed = {k for k in classify_of.values() if steps.index(by_key[k]) < i}
                if s.argv[0] == "classify" and not needed:
                    continue             # the first classification starts it
            else:
                needed = writers.get(p, set())
            assert needed, f"{s.key}: no step writes {p}"
            assert needed <= ancestors(s.key), (s.key, str(p), needed - ancestors(s.key))
            checked += 1
    assert checked >= 19
    # run ids on the diff's command line are the two classifications
    assert {"classify23", "classify24"} <= ancestors("diff")
    # carried designations: the 2024 loop, rate and diff read the 2023 loop
    for key in ("control24", "rate24", "diff"):
        assert "control23" in ancestors(key), key
    # the workspace readers are done before the second classification writes to it
    assert {"control23", "rate23"} <= ancestors("classify24")
    # the report reads every 2023 output
    assert {"control23", "rate23", "sources23", "flag23", "plan23"} <= ancestors("report23")


def test_the_demo_stops_at_a_bad_input_in_either_process(tmp_path):
    """A wind rose with a typo stops the demo at the source step (run by whichever
    process takes it): exit code 2, the step's one-line error, no traceback, and no
    step that waits for it (the report, the sources map) has written anything."""
    import shutil

    from click.testing import CliRunner

    data = tmp_path / "demo"
    shutil.copytree(Path(__file__).resolve().parents[1] / "data" / "demo", data)
    (data / "wind_rose.csv").write_text("direction,frequency\nN,abc\n", encoding="utf-8")
    out, maps = tmp_path / "out", tmp_path / "maps"
    result = CliRunner().invoke(main, ["-q", "demo", "--data", str(data), "-o", str(out),
                                       "--maps", str(maps), "--jobs", "2"])
    assert result.exit_code == 2, result.output
    assert ("wind_rose.csv, row/id line 2, column 'frequency': not a number (got 'abc')"
            in result.output)
    assert "demo stopped at step: 2c Where the cadmium comes from" in result.output
    assert "Traceback" not in result.output
    assert not (out / "2023" / "report").exists()
    assert not (maps / "demo_sources.html").exists()
    assert not (out / "2023" / "sources.gpkg").exists()
