"""Running the ``farmland`` subcommands of a chain side by side, as a graph of steps.

``farmland demo`` runs seventeen subcommands. Many of them need only the 2023
classification, not each other (the source analysis, the sampling plan, the 2024
re-classification), so on a machine with two cores two of them can run at once. Each
:class:`Step` names the steps whose outputs it reads (``after``); a step starts when those
have finished, and among the steps that could start, the one heading the longest chain of
work still to come (by the typical ``seconds`` of each step) goes first.

One step at a time runs in this process, with its output printed as it comes; the other
runs in one worker process (started with ``spawn``: nothing is inherited half-way), whose
output is kept and printed as one block, between two steps of this process, once the step
has finished. Every step is the same subcommand with the same arguments as when the steps
run one after another, writes its own files (atomically, as every subcommand does) and
reads only files of the steps it names, so the outputs do not depend on the order: the
demo's tests compare a run with one process and a run with two byte for byte.
``farmland run`` (a county job) uses the same machinery in two graphs (its map commands
are built from what the steps before them wrote).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Step:
    """A subcommand of a chain: ``key`` names it for ``after``; ``seconds`` is its typical
    duration (used only to choose which ready step goes first)."""

    key: str
    title: str
    argv: list[str]
    after: tuple[str, ...] = ()
    seconds: float = 1.0
    #: steps with the same ``warm`` share work a process keeps in memory (a map's parcels
    #: simplified and reprojected): a process that ran one gains ``warm_seconds`` of
    #: priority for the others
    warm: str = ""
    warm_seconds: float = 0.0
    #: ``"worker"`` or ``"here"``: the process that should run it (it imported what the
    #: step needs, say); the other takes it only when nothing else is ready
    prefer: str = ""


@dataclass
class Outcome:
    """A finished step: exit code, seconds, its output as (stream, text) chunks in the order
    written (empty for a step run in this process: its output was printed as it came),
    whether the worker ran it, when it started (``time.perf_counter``, one clock for
    both processes on Linux; for a timeline) and the CPU seconds of its process meanwhile
    (every thread; for the benchmark)."""

    key: str
    code: int
    seconds: float
    chunks: list[tuple[str, str]] = field(default_factory=list)
    worker: bool = False
    started: float = 0.0
    cpu: float = 0.0


def check_graph(steps: Sequence[Step]) -> None:
    """Refuse a step that waits for an unknown or a later step (which would also be how a
    cycle shows): the list must already be in an order that can run one after another."""
    seen: set[str] = set()
    for s in steps:
        bad = [k for k in s.after if k not in seen]
        if bad:
            raise ValueError(f"step {s.key!r} waits for {bad[0]!r}, which is not an earlier step")
        if s.key in seen:
            raise ValueError(f"two steps are called {s.key!r}")
        seen.add(s.key)


def priorities(steps: Sequence[Step]) -> dict[str, float]:
    """Each step's seconds plus the longest chain of seconds of the steps waiting for it
    (the "bottom level" of list scheduling): the higher, the sooner it should start."""
    check_graph(steps)
    waiting: dict[str, list[str]] = {s.key: [] for s in steps}
    for s in steps:
        for k in s.after:
            waiting[k].append(s.key)
    level: dict[str, float] = {}
    for s in reversed(steps):
        level[s.key] = s.seconds + max((level[k] for k in waiting[s.key]), default=0.0)
    return level


class Graph:
    """Which steps are done, running, and ready; the pick for a process (``who``:
    ``"here"`` or ``"worker"``) is, among the ready steps it is not asked to leave to the
    other (``prefer``), the one of highest priority (plus the ``warm_seconds`` of a step
    whose ``warm`` that process has run), ties by their order in the list. Steps left to
    the other process whose ``warm`` that process has run and this one has not are not
    taken here while their ready ones add up to no more than ``warm_seconds`` plus the
    step's own: the other process finishes them all before this one would finish that
    one (the demo's last maps: ≈ 0.5 s each there, ≈ 1.7 s for the first in the worker);
    a longer backlog (a county job's township maps) is shared. Not thread-safe: callers
    hold a lock."""

    def __init__(self, steps: Sequence[Step]):
        self.steps = {s.key: s for s in steps}
        self.order = [s.key for s in steps]
        self.level = priorities(steps)
        self.done: set[str] = set()
        self.running: set[str] = set()
        self.failed: str | None = None
        self.failed_code = 0
        self.warm: dict[str, set[str]] = {}

    def take(self, who: str = "here") -> Step | None:
        """The step for process ``who`` to start now (marked running), or ``None`` when
        none is ready or a step failed."""
        if self.failed is not None:
            return None
        warm = self.warm.setdefault(who, set())
        ready = [k for k in self.order if k not in self.done and k not in self.running
                 and all(a in self.done for a in self.steps[k].after)]
        ready = self._not_theirs(ready, who, warm)
        if not ready:
            return None

        def rank(k: str) -> tuple[bool, float, int]:
            s = self.steps[k]
            return not s.prefer or s.prefer == who, \
                self.level[k] + (s.warm_seconds if s.warm in warm else 0.0), \
                -self.order.index(k)

        step = self.steps[max(ready, key=rank)]
        self.running.add(step.key)
        if step.warm:
            warm.add(step.warm)
        return step

    def _not_theirs(self, ready: list[str], who: str, warm: set[str]) -> list[str]:
        """``ready`` without the steps left to the other process: those it prefers, whose
        ``warm`` it has and ``who`` has not, while their ready seconds are at most what
        one of them would cost ``who`` (its ``warm_seconds`` and its own)."""
        def theirs(s: Step) -> bool:
            return bool(s.prefer and s.prefer != who and s.warm and s.warm not in warm
                        and s.warm in self.warm.get(s.prefer, ()))

        backlog: dict[str, float] = {}
        for k in ready:
            s = self.steps[k]
            if theirs(s):
                backlog[s.warm] = backlog.get(s.warm, 0.0) + s.seconds
        return [k for k in ready if not (
            theirs(s := self.steps[k]) and backlog[s.warm] <= s.warm_seconds + s.seconds)]

    def finish(self, key: str, code: int) -> None:
        self.running.discard(key)
        self.done.add(key)
        if code and self.failed is None:
            self.failed, self.failed_code = key, code

    @property
    def over(self) -> bool:
        """All steps done, or a step failed and none is still running."""
        if self.failed is not None:
            return not self.running
        return len(self.done) == len(self.order)


class _Capture:
    """A text stream that keeps what is written as (stream, text) chunks; ``isatty`` as
    given, so that tables keep the colours and width of the terminal of the demo."""

    def __init__(self, name: str, chunks: list[tuple[str, str]], tty: bool, encoding: str):
        self.name, self.chunks, self.tty, self.encoding = name, chunks, tty, encoding

    def write(self, text: str) -> int:
        if not isinstance(text, str):   # how click tells a text stream from a binary one
            raise TypeError("write() argument must be str")
        if text:
            self.chunks.append((self.name, text))
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return self.tty

    def fileno(self) -> int:  # not a file: rich and click then treat it as a plain stream
        raise OSError("captured stream")


#: what the second process imports while this one classifies (the libraries of the steps
#: after the classification; it would import them for its first steps anyway)
CHAIN_IMPORTS = ("farmland.cli.classify", "farmland.runs.pipeline", "farmland.cli.plan",
                 "farmland.sampling", "farmland.cli.sources", "farmland.sources",
                 "libpysal.graph", "esda", "farmland.cli.map", "farmland.maps",
                 "farmland.cli.report", "farmland.report.charts", "farmland.cli.control",
                 "farmland.control", "farmland.cli.diff")


def default_jobs(jobs: int | None) -> int:
    """``--jobs`` as given, else 2 where there are two or more cores."""
    return jobs or min(2, os.cpu_count() or 1)


def processes(jobs: int) -> str:
    """How the steps ran, for the closing line."""
    return ("two steps at a time in two processes; --jobs 1: one after another" if jobs > 1
            else "one step after another")


def global_flags(quiet: bool) -> list[str]:
    """The group options of this invocation (``-q``, ``-v``/``-vv``) for a nested command,
    so that a step keeps the verbosity the user chose."""
    if quiet:
        return ["-q"]
    return ["-vv"] if logging.getLogger().getEffectiveLevel() <= logging.DEBUG else []


def header(step: Step) -> None:
    """A step's title and command line, as the chain prints them."""
    import shlex

    import click

    click.secho(f"\n== {step.title}", bold=True)
    click.secho("$ farmland " + shlex.join(step.argv), fg="cyan")


def run_here(ctx, step: Step, flags: Sequence[str]) -> int:
    """Run a step in this process, its output printed as it comes (a spinner on a
    terminal); its exit code (a failed step printed its error already)."""
    from farmland.cli import main
    from farmland.progress import step as spinner

    header(step)
    with spinner(step.title.split("/")[0].strip()):
        code = main.main(args=[*flags, *step.argv], prog_name="farmland", standalone_mode=False,
                         obj=ctx.obj)
    return int(code or 0)


def show(step: Step, outcome: Outcome) -> None:
    """A finished step: the kept output of a step of the second process, then the time."""
    import click

    if outcome.worker:
        header(step)
        for stream, text in outcome.chunks:
            click.echo(text, nl=False, err=stream == "err")
    if not outcome.code:
        where = ", second process" if outcome.worker else ""
        click.echo(f"({outcome.seconds:.1f} s{where})")


#: two processes on two cores: each computes with one thread (BLAS, OpenMP, numba), so
#: that four threads do not take turns on two cores (same results: the demo's tests
#: compare the outputs with those of one process)
ONE_THREAD = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                     "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}


@contextmanager
def one_thread() -> Iterator[None]:
    """This process computes with one thread inside the context: numba's and, when
    threadpoolctl is installed (scikit-learn brings it), the BLAS pools."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limits = nullcontext()
    else:
        limits = threadpool_limits(1)
    try:
        with limits:
            yield
    finally:
        numba.set_num_threads(before)


def _serve(conn, stdout_tty: bool, imports: Sequence[str]) -> None:
    """The worker: compile the kriging kernels (:func:`farmland.geostats.kernels.warm_up`:
    idle until the first step has finished, it compiles them on a first run after
    installing while the other process imports and reads, which then loads them from
    numba's cache), import ``imports``, say it is ready, then run the ``farmland`` argv
    lists it is sent until it is sent ``None``."""
    import importlib

    os.environ.update(ONE_THREAD)   # before numpy and numba are imported here
    try:
        from farmland.geostats.kernels import warm_up

        try:
            warm_up()
        except Exception:   # only a head start: a step that needs a kernel compiles it
            logging.getLogger(__name__).debug("kernel warm-up failed", exc_info=True)
        from farmland.cli import main
        from farmland.io.read_cache import reusing_reads

        for module in imports:
            importlib.import_module(module)
    except KeyboardInterrupt:   # Ctrl-C while starting: the demo's process says "Aborted!"
        return
    conn.send("ready")
    with reusing_reads():
        while True:
            try:
                task = conn.recv()
            except (EOFError, KeyboardInterrupt):
                return
            if task is None:
                return
            key, argv = task
            chunks: list[tuple[str, str]] = []
            saved = sys.stdout, sys.stderr
            # stderr counts as no terminal: no spinner is drawn into the kept output
            sys.stdout = _Capture("out", chunks, stdout_tty, "utf-8")
            sys.stderr = _Capture("err", chunks, False, "utf-8")
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                code = main.main(args=argv, prog_name="farmland", standalone_mode=False,
                                 obj={})
            except KeyboardInterrupt:
                return
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            except Exception:  # noqa: BLE001 - a bug: its traceback is shown with the step
                chunks.append(("err", traceback.format_exc()))
                code = 1
            finally:
                sys.stdout, sys.stderr = saved
            conn.send(Outcome(key, int(code or 0), time.perf_counter() - t0, chunks, True, t0,
                              time.process_time() - c0))


_WORKER_GONE = ("Error: the second process running this step ended unexpectedly; "
                "run again with --jobs 1\n")


class Worker:
    """One worker process, fed one argv list at a time (after ``prefix``, the group's
    options such as ``-q``)."""

    def __init__(self, prefix: Sequence[str] = (), imports: Sequence[str] = ()):
        self.prefix = list(prefix)
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        tty = bool(getattr(sys.__stdout__, "isatty", lambda: False)())
        self.process = ctx.Process(target=_serve, args=(child, tty, tuple(imports)), daemon=True,
                                   name="farmland-worker")
        self.process.start()
        child.close()
        self._ready: bool | None = None

    def ready(self) -> bool:
        """Wait until the worker has imported what it was given (``False``: it ended); the
        answer is kept, for the next graph it serves."""
        if self._ready is None:
            try:
                self._ready = self.conn.recv() == "ready"
            except (EOFError, OSError):
                self._ready = False
        return self._ready

    def run(self, step: Step) -> Outcome:
        t0 = time.perf_counter()
        try:
            self.conn.send((step.key, [*self.prefix, *step.argv]))
            return self.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            return Outcome(step.key, 1, time.perf_counter() - t0,
                           [("err", _WORKER_GONE)], True)

    def close(self, *, wait: bool = True) -> None:
        """Tell the worker to end; ``wait``: until it has (else it ends on its own, idle,
        while this process goes on; multiprocessing joins it at exit)."""
        try:
            self.conn.send(None)
        except (OSError, BrokenPipeError):
            pass
        if wait:
            self.process.join(timeout=10)
            if self.process.is_alive():
                self.process.terminate()
                self.process.join()
        self.conn.close()


def run_graph(steps: Sequence[Step], *, run_here: Callable[[Step], int],
              show: Callable[[Step, Outcome], None], jobs: int = 2,
              prefix: Sequence[str] = (), imports: Sequence[str] = (),
              worker: Worker | None = None) -> tuple[str, int] | None:
    """Run ``steps`` with ``run_here(step) -> exit code`` in this process and, when
    ``jobs`` ≥ 2, one worker process beside it, which runs ``farmland *prefix *argv`` and
    takes its first step once it has imported ``imports`` (this process starts at once).
    With two processes each computes with one thread (:func:`one_thread`).

    ``worker``: a :class:`Worker` the caller started for several graphs in turn (e.g. one
    whose command lines depend on what the previous graph wrote) and closes, on an
    interruption too; ``jobs``, ``prefix`` and ``imports`` are then its own.

    ``show(step, outcome)`` is called in this process for every finished step, in the
    order they finish. Returns the key and exit code of the step that failed (no new step
    starts after it; running ones finish), else ``None``."""
    graph = Graph(steps)
    if jobs < 2 and worker is None:
        for s in steps:
            code = _run_and_show(s, run_here, show)
            if code:
                return s.key, code
        return None
    cond = threading.Condition()
    finished: list[Outcome] = []
    own = worker is None
    if worker is None:
        worker = Worker(prefix, imports)

    def feed() -> None:
        if not worker.ready():
            return
        while True:
            with cond:
                step = None
                while step is None:
                    if graph.failed is not None or len(graph.done) + len(graph.running) \
                            == len(graph.order):
                        return
                    step = graph.take("worker")
                    if step is None:
                        cond.wait()
            outcome = worker.run(step)
            with cond:
                graph.finish(step.key, outcome.code)
                finished.append(outcome)
                cond.notify_all()

    feeder = threading.Thread(target=feed, name="farmland-feeder", daemon=True)
    feeder.start()
    try:
        with one_thread():
            _drive(graph, cond, finished, run_here, show)
    finally:
        with cond:
            if graph.failed is None and not graph.over:
                graph.failed = "interrupted"
            cond.notify_all()
        feeder.join(timeout=0 if sys.exc_info()[0] is KeyboardInterrupt else None)
        if own:
            worker.close(wait=not graph.over or graph.failed is not None)
    return None if graph.failed is None else (graph.failed, graph.failed_code)


def _run_and_show(step: Step, run_here: Callable[[Step], int],
                  show: Callable[[Step, Outcome], None]) -> int:
    """Run ``step`` in this process, show its outcome (seconds, CPU); its exit code."""
    t0, c0 = time.perf_counter(), time.process_time()
    code = run_here(step)
    show(step, Outcome(step.key, code, time.perf_counter() - t0, started=t0,
                       cpu=time.process_time() - c0))
    return code


def _drive(graph: Graph, cond: threading.Condition, finished: list[Outcome],
           run_here: Callable[[Step], int], show: Callable[[Step, Outcome], None]) -> None:
    """This process's side of :func:`run_graph`: show what the worker finished, take the
    next ready step and run it, until the graph is over."""
    while True:
        with cond:
            step = None
            while not finished and not graph.over:
                step = graph.take()
                if step is not None:
                    break
                cond.wait()
            shown = list(finished)
            finished.clear()
            over = graph.over and not shown
        for outcome in shown:
            show(graph.steps[outcome.key], outcome)
        if over:
            return
        if step is None:
            continue
        code = _run_and_show(step, run_here, show)
        with cond:
            graph.finish(step.key, code)
            cond.notify_all()
