"""lab02_init's tampering corpus (tests/corpus/hostile_lab02.py), graded in one batch: its hidden
tests run in the grader, so no trick in the kernel gains a mark, and each is named."""

from __future__ import annotations

import pytest

from tests.corpus.hostile_lab02 import HOSTILE_LAB02, LAB, LIMITS
from tests.grading import grade_hostile, hidden_lines_shown, problem_lines, totals


@pytest.fixture(scope="module")
def hostile_lab02(tmp_path_factory):
    work = tmp_path_factory.mktemp("hostile_lab02")
    grade_hostile(LAB, HOSTILE_LAB02, work, LIMITS)
    return work / "out"


def test_every_student_gets_a_row(hostile_lab02):
    assert set(totals(hostile_lab02)) == {entry.name for entry in HOSTILE_LAB02}


@pytest.mark.parametrize("entry", HOSTILE_LAB02, ids=lambda entry: entry.name)
def test_score_and_problem_line(hostile_lab02, entry):
    line = problem_lines(hostile_lab02).get(entry.name)
    assert totals(hostile_lab02)[entry.name] == entry.total, line
    if entry.problem is None:
        assert line is None
    else:
        assert entry.problem in (line or ""), line


def test_feedback_shows_no_hidden_test_code(hostile_lab02):
    assert hidden_lines_shown(hostile_lab02, LAB) == {}
