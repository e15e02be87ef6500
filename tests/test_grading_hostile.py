"""Broken and hostile submissions: every student gets a row, the score earned and a problem line.

The corpus (tests/corpus/hostile.py) is graded in one batch of lab00_setup through
``python -m autograder grade`` with a notebook limit of 40 s, a cell limit of 25 s and
3000 MiB of memory; the batch must finish and exit 0.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.corpus.hostile import ESCAPE_FILE, HOSTILE, LAB, LIMITS, SECRET
from tests.grading import grade_hostile, hidden_lines_shown, problem_lines, read_csv, totals


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("hostile")
    if os.path.exists(ESCAPE_FILE):
        os.remove(ESCAPE_FILE)
    os.environ[SECRET[0]] = SECRET[1]
    try:
        result = grade_hostile(LAB, HOSTILE, work, LIMITS)
    finally:
        del os.environ[SECRET[0]]
    return work / "out", result


def test_corpus_has_thirty_kinds():
    assert len({entry.name for entry in HOSTILE}) == len(HOSTILE) >= 30


def test_every_student_gets_a_row(hostile_run):
    out, result = hostile_run
    assert set(totals(out)) == {entry.name for entry in HOSTILE}
    assert f"graded {len(HOSTILE)} submissions of {LAB}" in result.stdout


@pytest.mark.parametrize("entry", HOSTILE, ids=lambda entry: entry.name)
def test_score_and_problem_line(hostile_run, entry):
    out, _ = hostile_run
    assert totals(out)[entry.name] == entry.total, problem_lines(out).get(entry.name)
    line = problem_lines(out).get(entry.name)
    if entry.problem is None:
        assert line is None
    else:
        assert line is not None and entry.problem in line, line


def test_same_submission_same_scores(hostile_run):
    out, _ = hostile_run
    cells = {}
    for row in read_csv(out / "scores.csv"):
        cells.setdefault(row["student_id"], {})[row["grade_id"]] = row["score"]
    assert cells["reference"] == cells["reference_again"]


def test_nothing_was_written_outside(hostile_run):
    time.sleep(25)  # longer than any process a notebook leaves behind waits before it writes
    assert not os.path.exists(ESCAPE_FILE)


def test_feedback_shows_no_grader_secret(hostile_run):
    out, _ = hostile_run
    for page in (out / "feedback").rglob("*.html"):
        assert SECRET[1] not in page.read_text(), page


def test_feedback_shows_no_hidden_test_code(hostile_run):
    out, _ = hostile_run
    assert hidden_lines_shown(out, LAB) == {}


def test_report_lists_the_problems(hostile_run):
    out, _ = hostile_run
    report = (out / "report.html").read_text()
    assert "kernel_killer" in report and "data:image/png;base64," in report
