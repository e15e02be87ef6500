"""``python -m autograder grade``: autograde a folder of submissions with nbgrader.

Outputs, all under ``--out DIR``:

- ``grades.csv``: nbgrader's CSV export, one row per student;
- ``scores.csv``: ``student_id,grade_id,score,max_score``, one row per student per graded cell;
- ``feedback/<student_id>/LAB.html``: the student's notebook with scores, without hidden tests;
- ``problems.csv``: ``student_id,problem`` for every submission not graded normally.

Each notebook is graded in a process of its own (``autograder.worker``) with a
wall-clock limit for the whole notebook and a memory limit, ``-j N`` at a time;
each worker has its own copy of the course, and the parent merges their scores
into one gradebook. Course folders and gradebooks live in a temporary folder
that is removed afterwards, never in the repository.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins import CsvExportPlugin
from sqlalchemy.exc import SAWarning
from tqdm import tqdm

from autograder.course import open_course
from autograder.intake import Submission, collect_submissions
from autograder.paths import source_notebook
from autograder.worker import Request, Result
from dlcourse.config import QUICK_ENV_VAR


def graded_cell_ids(lab: str) -> list[str]:
    """grade_ids of the lab's graded cells, in notebook order."""
    nb = nbformat.read(source_notebook(lab), as_version=4)
    return [
        cell.metadata["nbgrader"]["grade_id"]
        for cell in nb.cells
        if cell.metadata.get("nbgrader", {}).get("grade", False)
    ]


def readable_notebook_error(path: Path) -> str | None:
    """Why ``path`` is not a notebook nbgrader can read, or None when it is one."""
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as error:  # any parse failure is the student's problem, not the batch's
        return f"not a readable notebook ({type(error).__name__}: {str(error).splitlines()[0][:200]})"
    if not nb.cells:
        return "the notebook has no cells"
    return None


@dataclass
class Limits:
    """What one notebook may use: wall-clock seconds for the whole notebook, and memory."""

    seconds: float = 900.0
    memory_mb: int | None = 6144


def run_worker(request: Request, limits: Limits) -> Result:
    """Grade one submission in its own process, killing it (and its kernel) past the time limit."""
    request_path = Path(request.result).with_suffix(".request.json")
    request_path.write_text(json.dumps(asdict(request)))
    command = [sys.executable, "-m", "autograder.worker", str(request_path)]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        _, stderr = process.communicate(timeout=limits.seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return Result(request.student_id, problem=f"stopped after {limits.seconds:g} s, the time limit per notebook")
    result_path = Path(request.result)
    if process.returncode != 0 or not result_path.exists():
        last = [line for line in stderr.splitlines() if line.strip()][-1:] or ["no message"]
        return Result(request.student_id, problem=f"grading process died (exit {process.returncode}): {last[0][:300]}")
    return Result(**json.loads(result_path.read_text()))


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def merge_into_gradebook(gradebook: Gradebook, lab: str, results: list[Result]) -> None:
    """Record every student, and the per-cell scores of each graded one, in one gradebook."""
    for result in results:
        gradebook.update_or_create_student(result.student_id)
        if result.scores:
            gradebook.add_submission(lab, result.student_id)
            for grade_id, score in result.scores.items():
                gradebook.find_grade(grade_id, lab, lab, result.student_id).auto_score = score
    gradebook.db.commit()


def score_rows(gradebook: Gradebook, lab: str, student_ids: list[str]) -> list[list]:
    """One row per student per graded cell; a cell never graded scores 0."""
    max_scores = {cell.name: cell.max_score for cell in gradebook.find_notebook(lab, lab).grade_cells}
    grade_ids = graded_cell_ids(lab)
    rows = []
    for student_id in student_ids:
        for grade_id in grade_ids:
            try:
                score = gradebook.find_grade(grade_id, lab, lab, student_id).score
            except MissingEntry:
                score = 0.0
            rows.append([student_id, grade_id, float(score), float(max_scores[grade_id])])
    return rows


# Kernels inherit these. One thread per notebook: the labs' models are small, and two
# threads fighting another process for two cores made a lab run 8x slower than one thread.
GRADING_ENVIRONMENT = {QUICK_ENV_VAR: "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def grade_all(lab: str, submissions: list[Submission], work: Path, out_dir: Path, jobs: int, limits: Limits):
    """Grade the readable submissions ``jobs`` at a time; a result (or a problem) for every one."""
    template = work / "template"
    open_course(template, lab)
    (work / "results").mkdir()
    results: list[Result] = []
    pending = []
    for submission in submissions:
        reason = submission.problem or readable_notebook_error(submission.path)
        if reason:
            results.append(Result(submission.student_id, problem=reason))
            continue
        pending.append(
            Request(
                lab=lab,
                student_id=submission.student_id,
                notebook=str(submission.path),
                template=str(template),
                feedback=str(out_dir / "feedback" / submission.student_id / f"{lab}.html"),
                result=str(work / "results" / f"{submission.student_id}.json"),
                memory_limit_mb=limits.memory_mb,
            )
        )
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_worker, request, limits) for request in pending]
        for future in tqdm(as_completed(futures), total=len(futures), desc=f"grading {lab}", unit="notebook"):
            results.append(future.result())
    return template / "gradebook.db", results


def grade(
    lab: str,
    submissions_dir: Path,
    out_dir: Path,
    jobs: int = 1,
    limits: Limits | None = None,
    name_pattern: str | None = None,
) -> int:
    """Grade every submission of ``lab``, ``jobs`` notebooks at a time; return 0 when every student got a row.

    ``submissions_dir`` is a folder or a zip in any layout :mod:`autograder.intake` reads.
    """
    os.environ.update(GRADING_ENVIRONMENT)
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out_dir / "feedback", ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="dlcourse-grade-") as tmp:
        submissions, notes = collect_submissions(submissions_dir, Path(tmp), name_pattern)
        database, results = grade_all(lab, submissions, Path(tmp), out_dir, jobs, limits or Limits())
        order = {submission.student_id: index for index, submission in enumerate(submissions)}
        results.sort(key=lambda result: order[result.student_id])
        with Gradebook(f"sqlite:///{database}") as gradebook, warnings.catch_warnings():
            # nbgrader's add_submission builds objects under SQLAlchemy's autoflush and warns; harmless
            warnings.simplefilter("ignore", SAWarning)
            merge_into_gradebook(gradebook, lab, results)
            CsvExportPlugin(to=str(out_dir / "grades.csv")).export(gradebook)
            rows = score_rows(gradebook, lab, [s.student_id for s in submissions])
    problems = [list(note) for note in notes]
    problems += [[result.student_id, result.problem] for result in results if result.problem]
    write_csv(out_dir / "scores.csv", ["student_id", "grade_id", "score", "max_score"], rows)
    write_csv(out_dir / "problems.csv", ["student_id", "problem"], problems)
    elapsed = time.perf_counter() - started
    print(
        f"graded {len(submissions)} submissions of {lab} in {elapsed:.1f} s with {jobs} at a time; "
        f"{len(problems)} problems (see {out_dir / 'problems.csv'})"
    )
    return 0
