import pytest

from tests.grading import grade_corpus

# Files that are not notebooks at all; graded with lab00_setup to prove they get a row and a problem.
BROKEN_SUBMISSIONS = {
    "broken_json.ipynb": "{this is not json",
    "has space.ipynb": "{}",
}


@pytest.fixture(scope="session")
def graded_corpus(tmp_path_factory):
    """``graded_corpus(lab)``: the lab's reference, blank and corpus submissions, graded once per session."""
    runs = {}

    def grade(lab: str):
        if lab not in runs:
            extra = BROKEN_SUBMISSIONS if lab == "lab00_setup" else None
            runs[lab] = grade_corpus(lab, tmp_path_factory.mktemp(lab), extra)
        return runs[lab]

    return grade


@pytest.fixture(scope="session")
def lab00_grading(graded_corpus):
    return graded_corpus("lab00_setup")
