"""lab00_setup's grading run: what only this lab's run shows (broken files, one message, the summary).

The checks every lab shares (reference, blank, corpus, feedback) are in test_grading_corpus.py.
"""

import re

from tests.corpus.lab00_setup import ALTERNATIVES, CORPUS


def test_unreadable_notebook_gets_a_zero_row_and_a_problem(lab00_grading):
    assert float(lab00_grading.grades["broken_json"]["score"]) == 0.0
    assert all(score == 0 for score, _ in lab00_grading.scores["broken_json"].values())
    assert any("invalid JSON" in p for p in lab00_grading.problems["broken_json"])


def test_unusable_file_name_gets_a_zero_row_and_a_problem(lab00_grading):
    assert float(lab00_grading.grades["has space"]["score"]) == 0.0
    assert any("not a usable student id" in p for p in lab00_grading.problems["has space"])


def test_feedback_shows_the_message_a_student_acts_on(lab00_grading):
    html = (lab00_grading.out / "feedback" / "standardize_in_place" / "lab00_setup.html").read_text()
    assert "standardize modified its input x in place" in html
    assert "batch_norm(t" not in html  # the hidden oracle's code


def test_summary_line(lab00_grading):
    total = 4 + len(CORPUS) + len(ALTERNATIVES)  # reference, blank, two broken files
    assert re.search(
        rf"graded {total} submissions of lab00_setup in [\d.]+ s \(2 at a time\); mean [\d.]+ of 8 points; 2 problems",
        lab00_grading.stdout,
    )
