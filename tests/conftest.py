import nbformat
import pytest

from autograder.experiments import is_experiment
from tests.grading import grade_corpus
from tests.submissions import reference_answers, student_notebook

# Files that are not notebooks at all; graded with lab00_setup to prove they get a row and a problem.
BROKEN_SUBMISSIONS = {
    "broken_json.ipynb": "{this is not json",
    "has space.ipynb": "{}",
}


EDITED_EXPERIMENT_PRINTS = "the student's own experiment ran"


def edited_experiment(lab: str) -> dict[str, str]:
    """The reference solution whose experiment cell the student edited: the grader must run it."""
    nb = student_notebook(lab, reference_answers(lab))
    cell = next(cell for cell in nb.cells if is_experiment(cell))
    cell.source += f"\nprint({EDITED_EXPERIMENT_PRINTS!r})"
    return {"edited_experiment.ipynb": nbformat.writes(nb)}


@pytest.fixture(scope="session")
def graded_corpus(tmp_path_factory):
    """``graded_corpus(lab)``: the lab's reference, blank and corpus submissions, graded once per session."""
    runs = {}

    def grade(lab: str):
        if lab not in runs:
            extra = {**BROKEN_SUBMISSIONS, **edited_experiment("lab00_setup")} if lab == "lab00_setup" else None
            runs[lab] = grade_corpus(lab, tmp_path_factory.mktemp(lab), extra)
        return runs[lab]

    return grade


@pytest.fixture(scope="session")
def lab00_grading(graded_corpus):
    return graded_corpus("lab00_setup")
