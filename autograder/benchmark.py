"""Grading speed: ``python -m autograder.benchmark LAB [--copies 20] [--jobs 1 2]``.

Grades ``copies`` copies of the lab's reference solution with ``python -m autograder grade``
at each ``-j`` value and prints seconds per submission, the speed-up over ``-j 1``, and the
grading overhead per notebook beyond executing it (the reference executed alone with
nbclient, in quick mode, one thread). A measurement to run by hand, not a timed test.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from autograder.grade import GRADING_ENVIRONMENT
from autograder.paths import REPO_ROOT, check_lab_name, source_notebook


def reference_submission(lab: str) -> nbformat.NotebookNode:
    """The solution notebook as a student would hand it in (solutions filled in, markers kept)."""
    return nbformat.read(source_notebook(lab), as_version=4)


def execution_seconds(lab: str, repeats: int = 3) -> float:
    """Median wall time to execute the reference top to bottom, without nbgrader."""
    times = []
    for _ in range(repeats):
        nb = reference_submission(lab)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            NotebookClient(nb, timeout=900, resources={"metadata": {"path": folder}}).execute()
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def grading_seconds(lab: str, copies: int, jobs: int, extra: tuple[str, ...] = ()) -> float:
    """Wall time of ``python -m autograder grade`` on ``copies`` copies of the reference, start to end."""
    with tempfile.TemporaryDirectory() as folder:
        submitted = Path(folder) / "submitted"
        submitted.mkdir()
        for index in range(copies):
            nbformat.write(reference_submission(lab), submitted / f"student{index:03d}.ipynb")
        command = [sys.executable, "-m", "autograder", "grade", lab, "--submissions", str(submitted)]
        started = time.perf_counter()
        command += ["--out", str(Path(folder) / "out"), "-j", str(jobs), *extra]
        subprocess.run(command, check=True, cwd=REPO_ROOT)
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.benchmark", description=__doc__)
    parser.add_argument("lab")
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-sandbox", action="store_true", help="grade with --no-sandbox (to measure its cost)")
    args = parser.parse_args(argv)
    lab = check_lab_name(args.lab)
    os.environ.update(GRADING_ENVIRONMENT)
    execute = execution_seconds(lab)
    extra = ("--no-sandbox",) if args.no_sandbox else ()
    rows = [(jobs, grading_seconds(lab, args.copies, jobs, extra)) for jobs in args.jobs]
    baseline = rows[0][1]
    print(f"\n{lab}: {args.copies} copies of the reference on {os.cpu_count()} cores")
    print(f"executing the notebook alone: {execute:.1f} s")
    print(f"{'-j':>3} {'total s':>8} {'s/submission':>13} {'speed-up':>9} {'overhead s/notebook':>20}")
    for jobs, seconds in rows:
        per_submission = seconds / args.copies
        overhead = seconds * jobs / args.copies - execute  # busy time per notebook beyond execution
        print(f"{jobs:>3} {seconds:>8.1f} {per_submission:>13.2f} {baseline / seconds:>9.2f} {overhead:>20.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
