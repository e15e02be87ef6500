"""``python -m autograder grade``: autograde a folder of submissions with nbgrader.

Outputs, all under ``--out DIR``:

- ``grades.csv``: nbgrader's CSV export, one row per student;
- ``scores.csv``: ``student_id,grade_id,score,max_score``, one row per student per graded cell;
- ``feedback/<student_id>/LAB.html``: the student's notebook with scores, without hidden tests;
- ``problems.csv``: ``student_id,problem`` for every submission not graded normally.

nbgrader's course folder and gradebook live in a temporary folder that is
removed afterwards, never in the repository.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins import CsvExportPlugin
from tqdm import tqdm

from autograder.course import open_course
from autograder.paths import source_notebook
from dlcourse.config import QUICK_ENV_VAR

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")


@dataclass
class Submission:
    student_id: str
    path: Path
    problem: str | None = None  # set when the file cannot be graded at all


@dataclass
class Problem:
    student_id: str
    problem: str


def find_submissions(folder: Path) -> list[Submission]:
    """Every ``<student_id>.ipynb`` in ``folder``, in name order."""
    if not folder.is_dir():
        raise SystemExit(f"--submissions {folder}: not a folder of <student_id>.ipynb files")
    submissions = []
    for path in sorted(folder.glob("*.ipynb")):
        submission = Submission(path.stem, path)
        if not STUDENT_ID.match(path.stem):
            submission.problem = (
                f"file name {path.name!r} is not a usable student id (letters, digits, . _ @ + -); "
                "not graded, rename it and grade again"
            )
        submissions.append(submission)
    return submissions


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


def last_error_line(result: dict) -> str:
    text = (result.get("error") or result.get("log") or "unknown error").strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "unknown error"


def autograde_one(api, lab: str, submission: Submission, course_root: Path, out_dir: Path) -> str | None:
    """Autograde one submission and copy its feedback; return a problem or None."""
    reason = submission.problem or readable_notebook_error(submission.path)
    if reason:
        return reason
    target = course_root / "submitted" / submission.student_id / lab / f"{lab}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(submission.path, target)
    result = api.autograde(lab, submission.student_id, force=True, create=True)
    if not result["success"]:
        return f"autograding failed: {last_error_line(result)}"
    result = api.generate_feedback(lab, submission.student_id, force=True)
    html = course_root / "feedback" / submission.student_id / lab / f"{lab}.html"
    if not result["success"] or not html.exists():
        return f"graded, but feedback failed: {last_error_line(result)}"
    feedback = out_dir / "feedback" / submission.student_id / f"{lab}.html"
    feedback.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(html, feedback)
    return None


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


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


def grade(lab: str, submissions_dir: Path, out_dir: Path, jobs: int = 1) -> int:
    """Grade every submission of ``lab``; return 0 when every student got a row.

    ``jobs`` is accepted for the command's contract; submissions are graded one
    after another for now.
    """
    os.environ.update(GRADING_ENVIRONMENT)
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out_dir / "feedback", ignore_errors=True)
    submissions = find_submissions(submissions_dir)
    problems: list[Problem] = []
    with tempfile.TemporaryDirectory(prefix="dlcourse-grade-") as tmp:
        course_root = Path(tmp)
        api = open_course(course_root, lab)
        db_url = api.coursedir.db_url
        with Gradebook(db_url) as gradebook:
            for submission in submissions:
                gradebook.update_or_create_student(submission.student_id)
        for submission in tqdm(submissions, desc=f"grading {lab}", unit="notebook"):
            problem = autograde_one(api, lab, submission, course_root, out_dir)
            if problem:
                problems.append(Problem(submission.student_id, problem))
        with Gradebook(db_url) as gradebook:
            CsvExportPlugin(to=str(out_dir / "grades.csv")).export(gradebook)
            rows = score_rows(gradebook, lab, [s.student_id for s in submissions])
    write_csv(out_dir / "scores.csv", ["student_id", "grade_id", "score", "max_score"], rows)
    write_csv(out_dir / "problems.csv", ["student_id", "problem"], [[p.student_id, p.problem] for p in problems])
    elapsed = time.perf_counter() - started
    print(
        f"graded {len(submissions)} submissions of {lab} in {elapsed:.1f} s; "
        f"{len(problems)} problems (see {out_dir / 'problems.csv'})"
    )
    return 0
