"""Grading speed: ``python -m autograder.benchmark LAB [LAB ...] [--copies 20] [--jobs 1 2]`` (``all``: every lab).

For each lab, grades ``copies`` copies of its reference solution with ``python -m autograder grade``
at each ``-j`` value, executes the reference alone with nbclient (quick mode, one thread, the
median of ``--repeats`` runs), leaving out the experiment cells the grader leaves unrun, so that
both run the same cells, and prints two tables:

- where the time went at the first ``-j`` value: each grading step's mean seconds per notebook and
  its share of the busy time per notebook (the run's wall time x jobs / copies), read from the
  run's ``timings.json`` (:func:`autograder.report.time_breakdown`); "done ahead" is negative:
  what workers did before their turn, while other notebooks held the slots; "outside the steps"
  is the rest: the grader's start-up, its sandbox check, the report;
- per lab: executing the notebook alone, seconds per submission at each ``-j``, the speed-up of
  the last ``-j`` over the first, and the overhead, ``(busy seconds per notebook at the first -j
  - alone) / alone`` (at ``-j 1`` the busy seconds are the seconds per submission).

A measurement to run by hand, not a timed test.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from autograder.experiments import cells_to_skip, experiment_sources
from autograder.grade import GRADING_ENVIRONMENT
from autograder.paths import REPO_ROOT, all_labs, check_lab_name, source_notebook
from autograder.report import STEPS, TIMINGS_NAME, TimeBreakdown, read_timings

OUTSIDE = "outside the steps"


@dataclass
class LabTimes:
    """One lab's measurements: alone, and graded at each ``-j`` (wall seconds of the whole run)."""

    lab: str
    alone: float
    copies: int
    graded: dict[int, float]  # -j -> wall seconds
    breakdown: TimeBreakdown  # of the first -j run

    @property
    def first_jobs(self) -> int:
        return next(iter(self.graded))

    def per_submission(self, jobs: int) -> float:
        return self.graded[jobs] / self.copies

    @property
    def busy(self) -> float:
        """Seconds of a grading slot per notebook at the first ``-j``: wall x jobs / copies."""
        return self.graded[self.first_jobs] * self.first_jobs / self.copies

    @property
    def speed_up(self) -> float:
        """Wall time at the first ``-j`` over wall time at the last."""
        return self.graded[self.first_jobs] / self.graded[list(self.graded)[-1]]

    @property
    def overhead(self) -> float:
        """(busy seconds per notebook - seconds to execute it alone) / seconds alone."""
        return (self.busy - self.alone) / self.alone

    def step_seconds(self) -> dict[str, float]:
        """Mean seconds per notebook of each step, and what the steps leave of the busy time."""
        return {**self.breakdown.steps, OUTSIDE: self.busy - self.breakdown.total}


def reference_submission(lab: str) -> nbformat.NotebookNode:
    """The solution notebook as a student would hand it in (solutions filled in, markers kept)."""
    return nbformat.read(source_notebook(lab), as_version=4)


def graded_cells_only(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` without the experiment cells the grader leaves unrun (:mod:`autograder.experiments`)."""
    skipped = cells_to_skip(nb, experiment_sources(nb))
    nb.cells = [cell for index, cell in enumerate(nb.cells) if index not in skipped]
    return nb


def execution_seconds(lab: str, repeats: int = 3) -> float:
    """Median wall time to execute the cells the grader runs in the reference, top to bottom,
    without nbgrader, the sandbox or the tampering guard."""
    times = []
    for _ in range(repeats):
        nb = graded_cells_only(reference_submission(lab))
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            NotebookClient(nb, timeout=900, resources={"metadata": {"path": folder}}).execute()
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def grading_run(lab: str, copies: int, jobs: int, extra: tuple[str, ...] = ()) -> tuple[float, TimeBreakdown]:
    """Wall time of ``python -m autograder grade`` on ``copies`` copies of the reference, start to end,
    and where its time went."""
    with tempfile.TemporaryDirectory() as folder:
        submitted, out = Path(folder) / "submitted", Path(folder) / "out"
        submitted.mkdir()
        for index in range(copies):
            nbformat.write(reference_submission(lab), submitted / f"student{index:03d}.ipynb")
        command = [sys.executable, "-m", "autograder", "grade", lab, "--submissions", str(submitted)]
        command += ["--out", str(out), "-j", str(jobs), *extra]
        started = time.perf_counter()
        subprocess.run(command, check=True, cwd=REPO_ROOT)
        seconds = time.perf_counter() - started
        return seconds, read_timings(out / TIMINGS_NAME)


def measure(lab: str, copies: int, jobs_values: list[int], repeats: int, extra: tuple[str, ...]) -> LabTimes:
    alone = execution_seconds(lab, repeats)
    graded, breakdowns = {}, []
    for jobs in jobs_values:
        graded[jobs], breakdown = grading_run(lab, copies, jobs, extra)
        breakdowns.append(breakdown)
    return LabTimes(lab, alone, copies, graded, breakdowns[0])


def step_order(labs: list[LabTimes]) -> list[str]:
    """Every step any lab reported, in grading order, then the rest of the busy time."""
    seen = {step for times in labs for step in times.breakdown.steps}
    return [*(step for step in STEPS if step in seen), *sorted(seen - set(STEPS)), OUTSIDE]


def breakdown_table(labs: list[LabTimes]) -> str:
    """Per step, per lab: mean seconds per notebook and share of the busy time per notebook."""
    header = f"{'step':<20}" + "".join(f" {times.lab[:19]:>19} {'%':>6}" for times in labs)
    lines = [header]
    for step in step_order(labs):
        row = f"{step:<20}"
        for times in labs:
            seconds = times.step_seconds().get(step, 0.0)
            row += f" {seconds:>19.2f} {100 * seconds / times.busy:>5.1f}%"
        lines.append(row)
    lines.append(f"{'busy per notebook':<20}" + "".join(f" {times.busy:>19.2f} {100:>5.1f}%" for times in labs))
    return "\n".join(lines)


def summary_table(labs: list[LabTimes], jobs_values: list[int]) -> str:
    """Per lab: alone, seconds per submission at each -j, speed-up, overhead."""
    graded = "".join(f" {f'-j {jobs} s/sub':>12}" for jobs in jobs_values)
    lines = [f"{'lab':<20} {'alone s':>8}{graded} {'speed-up':>9} {'overhead':>9}"]
    for times in labs:
        per_jobs = "".join(f" {times.per_submission(jobs):>12.2f}" for jobs in jobs_values)
        lines.append(
            f"{times.lab:<20} {times.alone:>8.2f}{per_jobs} {times.speed_up:>9.2f} {100 * times.overhead:>8.0f}%"
        )
    return "\n".join(lines)


def lab_names(names: list[str]) -> list[str]:
    """The labs named, ``all`` standing for every lab; each checked."""
    labs = [lab for name in names for lab in (all_labs() if name == "all" else [name])]
    return [check_lab_name(lab) for lab in dict.fromkeys(labs)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.benchmark", description=__doc__)
    parser.add_argument("labs", nargs="+", metavar="LAB", help="a lab's name, several, or all")
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3, help="executions alone per lab (the median counts)")
    parser.add_argument("--no-sandbox", action="store_true", help="grade with --no-sandbox (to measure its cost)")
    args = parser.parse_args(argv)
    labs = lab_names(args.labs)
    jobs_values = list(dict.fromkeys(args.jobs))
    os.environ.update(GRADING_ENVIRONMENT)
    extra = ("--no-sandbox",) if args.no_sandbox else ()
    measured = [measure(lab, args.copies, jobs_values, args.repeats, extra) for lab in labs]
    print(f"\n{args.copies} copies of each reference on {os.cpu_count()} cores")
    print(f"\nwhere the time went at -j {jobs_values[0]} (seconds per notebook, share of the busy time per notebook):")
    print(breakdown_table(measured))
    print(
        "\nalone: the reference's graded cells executed with nbclient; "
        f"overhead: busy s/notebook at -j {jobs_values[0]} over alone"
    )
    print(summary_table(measured, jobs_values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
