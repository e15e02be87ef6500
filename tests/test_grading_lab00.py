"""lab00_setup's grading run: what only this lab's run shows (broken files, one message, the summary).

The checks every lab shares (reference, blank, corpus, feedback) are in test_grading_corpus.py.
"""

import re

import pytest

from autograder.experiments import NOT_RUN
from tests.conftest import EDITED_EXPERIMENT_PRINTS
from tests.corpus.lab00_setup import ALTERNATIVES, CORPUS
from tests.grading import GRADING_JOBS, read_csv, run_grade
from tests.submissions import corpus_submissions


def test_unreadable_notebook_gets_a_zero_row_and_a_problem(lab00_grading):
    assert float(lab00_grading.grades["broken_json"]["score"]) == 0.0
    assert all(score == 0 for score, _ in lab00_grading.scores["broken_json"].values())
    assert any("invalid JSON" in p for p in lab00_grading.problems["broken_json"])


def test_unusable_file_name_gets_a_zero_row_and_a_problem(lab00_grading):
    assert float(lab00_grading.grades["has space"]["score"]) == 0.0
    assert any("not a usable student id" in p for p in lab00_grading.problems["has space"])


def test_feedback_shows_the_message_a_student_acts_on(lab00_grading):
    html = lab00_grading.feedback_page("standardize_in_place").read_text()
    assert "standardize modified its input x in place" in html
    assert "batch_norm(t" not in html  # the hidden oracle's code


def feedback_text(out, student: str) -> str:
    return (out / "feedback" / student / "lab00_setup.html").read_text()


def test_the_experiment_is_left_out_unless_the_student_edited_it(lab00_grading):
    assert NOT_RUN in feedback_text(lab00_grading.out, "reference")
    edited = feedback_text(lab00_grading.out, "edited_experiment")
    assert EDITED_EXPERIMENT_PRINTS in edited and NOT_RUN not in edited
    assert lab00_grading.grades["edited_experiment"]["score"] == lab00_grading.grades["reference"]["score"]


def test_run_experiments_runs_them_and_scores_the_same(tmp_path, lab00_grading):
    corpus_submissions("lab00_setup", [], tmp_path / "submitted")
    (tmp_path / "submitted" / "blank.ipynb").unlink()
    result = run_grade("lab00_setup", tmp_path / "submitted", tmp_path / "out", "--run-experiments")
    assert result.returncode == 0, result.stderr[-3000:]
    (row,) = read_csv(tmp_path / "out" / "grades.csv")
    assert row["score"] == lab00_grading.grades["reference"]["score"]
    assert NOT_RUN not in feedback_text(tmp_path / "out", "reference")


def test_summary_line(lab00_grading):
    # reference, blank, two broken files, an edited experiment, and the notebooks the corpus is packed into
    total = 5 + len({lab00_grading.notebook_of.get(entry.name, entry.name) for entry in CORPUS + ALTERNATIVES})
    assert re.search(
        rf"graded {total} submissions of lab00_setup in [\d.]+ s \({GRADING_JOBS} at a time\); "
        r"mean [\d.]+ of 8 points; 2 problems",
        lab00_grading.stdout,
    )


@pytest.mark.parametrize(
    ("written", "problems"),
    [
        ('{"student_id": "s1", "scores": {"test_a": 1.0}}', []),  # finished; its exit status was lost
        (None, ["grading process died (exit 255): last line of the log"]),  # died before writing
        ('{"student_id": "s1", "sco', ["grading process died (exit 255): last line of the log"]),  # cut short
    ],
)
def test_a_worker_result_counts_whatever_the_exit_code(tmp_path, monkeypatch, written, problems):
    from autograder import grade
    from autograder.worker import Request

    result = tmp_path / "s1.json"
    request = Request("lab00_setup", "s1", "nb.ipynb", "template", "feedback.html", str(result))

    def finished_worker(request_path, log_path, turn=None):
        log_path.write_text("first line\nlast line of the log\n")
        if written is not None:
            result.write_text(written)

    monkeypatch.setattr(grade, "start_worker", finished_worker)
    monkeypatch.setattr(grade, "wait_for", lambda process, seconds: 255)
    assert grade.run_worker(request, grade.Limits()).problems == problems
