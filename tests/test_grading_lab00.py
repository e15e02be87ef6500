"""lab00_setup graded through `python -m autograder grade`: reference, blank, corpus, broken files."""

import re

import pytest

from tests.corpus.lab00_setup import ALTERNATIVES, CORPUS

GRADED_CELLS = ["test_standardize", "test_pairwise_sq_distances", "test_one_hot", "test_to_device", "test_fit_line"]


def full_marks(run, student):
    return {cell: score == maximum for cell, (score, maximum) in run.scores[student].items()}


def test_every_graded_cell_has_a_score_row(lab00_grading):
    assert list(lab00_grading.scores["reference"]) == GRADED_CELLS


def test_reference_solution_scores_full_marks(lab00_grading):
    assert all(full_marks(lab00_grading, "reference").values()), lab00_grading.scores["reference"]
    grades = lab00_grading.grades["reference"]
    assert float(grades["score"]) == float(grades["max_score"]) == 8.0


def test_blank_release_scores_zero(lab00_grading):
    assert all(score == 0 for score, _ in lab00_grading.scores["blank"].values())
    assert float(lab00_grading.grades["blank"]["score"]) == 0.0


def test_corpus_has_at_least_five_mistakes():
    assert len(CORPUS) >= 5
    assert len({wrong.name for wrong in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("wrong", CORPUS, ids=lambda w: w.name)
def test_wrong_implementation_loses_points_in_its_cell(lab00_grading, wrong):
    marks = full_marks(lab00_grading, wrong.name)
    lost = sorted(cell for cell, full in marks.items() if not full)
    assert lost == sorted(wrong.loses), f"{wrong.name} lost points in {lost}, expected {list(wrong.loses)}"


@pytest.mark.parametrize("alternative", ALTERNATIVES, ids=lambda w: w.name)
def test_correct_alternative_keeps_full_marks(lab00_grading, alternative):
    assert all(full_marks(lab00_grading, alternative.name).values()), lab00_grading.scores[alternative.name]


def test_graded_submissions_report_no_problem(lab00_grading):
    graded = ["reference", "blank"] + [w.name for w in CORPUS + ALTERNATIVES]
    assert not set(graded) & set(lab00_grading.problems), lab00_grading.problems


def test_unreadable_notebook_gets_a_zero_row_and_a_problem(lab00_grading):
    assert float(lab00_grading.grades["broken_json"]["score"]) == 0.0
    assert all(score == 0 for score, _ in lab00_grading.scores["broken_json"].values())
    assert any("not a readable notebook" in p for p in lab00_grading.problems["broken_json"])


def test_unusable_file_name_gets_a_zero_row_and_a_problem(lab00_grading):
    assert float(lab00_grading.grades["has space"]["score"]) == 0.0
    assert any("not a usable student id" in p for p in lab00_grading.problems["has space"])


def test_feedback_for_every_graded_student(lab00_grading):
    for student in ["reference", "blank"] + [w.name for w in CORPUS]:
        assert (lab00_grading.out / "feedback" / student / "lab00_setup.html").is_file(), student


def test_feedback_shows_messages_but_no_hidden_tests(lab00_grading):
    html = (lab00_grading.out / "feedback" / "standardize_in_place" / "lab00_setup.html").read_text()
    assert "standardize modified its input x in place" in html  # the message a student acts on
    for secret in ["HIDDEN TESTS", "def reference", "batch_norm(t, None"]:
        assert secret not in html, f"feedback leaks {secret!r}"
    for path in (lab00_grading.out / "feedback").rglob("*.html"):
        assert "HIDDEN TESTS" not in path.read_text(), path


def test_summary_line(lab00_grading):
    total = 4 + len(CORPUS) + len(ALTERNATIVES)  # reference, blank, two broken files
    assert re.search(rf"graded {total} submissions of lab00_setup in [\d.]+ s; 2 problems", lab00_grading.stdout)
