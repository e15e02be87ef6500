"""Per-notebook limits: each submission runs in its own process with a wall-clock and memory limit.

One batch of lab00_setup holds the reference next to an endless loop, a memory hog and a
cell that kills its kernel: every student gets a row, the reference keeps full marks, and
the batch finishes.
"""

import pytest

from tests.grading import read_csv, run_grade
from tests.submissions import reference_answers, student_notebook, write_submission

LAB = "lab00_setup"


@pytest.fixture(scope="module")
def limited_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("limits")
    submitted = work / "submitted"
    submitted.mkdir()
    reference = reference_answers(LAB)
    variants = {
        "reference": {},
        "endless": {"one_hot": "while True:\n    pass"},
        "memory_hog": {"one_hot": "hog = bytearray(16 * 1024**3)\n" + reference["one_hot"]},
        "kernel_killer": {"one_hot": "import os\nos._exit(1)"},
    }
    for student, answers in variants.items():
        write_submission(submitted, student, student_notebook(LAB, {**reference, **answers}))
    result = run_grade(LAB, submitted, work / "out", "-j", "2", "--timeout", "40", "--memory-mb", "3000")
    assert result.returncode == 0, result.stderr[-3000:]
    grades = {row["student_id"]: float(row["raw_score"]) for row in read_csv(work / "out" / "grades.csv")}
    problems = {row["student_id"]: row["problem"] for row in read_csv(work / "out" / "problems.csv")}
    return grades, problems


def test_every_student_gets_a_row_and_the_reference_full_marks(limited_run):
    grades, _ = limited_run
    assert set(grades) == {"reference", "endless", "memory_hog", "kernel_killer"}
    assert grades["reference"] == 8.0


def test_endless_loop_is_stopped_at_the_wall_clock_limit(limited_run):
    grades, problems = limited_run
    assert "time limit per notebook" in problems["endless"]
    assert grades["endless"] == 0.0


def test_memory_hog_fails_only_its_own_cell(limited_run):
    grades, problems = limited_run
    assert grades["memory_hog"] == 7.0  # MemoryError in one_hot's cell; the other answers still count
    assert "memory_hog" not in problems


def test_killed_kernel_is_reported(limited_run):
    grades, problems = limited_run
    assert "kernel_killer" in problems
    assert grades["kernel_killer"] == 0.0
