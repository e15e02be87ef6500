import pytest

from tests.grading import grade_corpus

BROKEN_SUBMISSIONS = {
    "broken_json.ipynb": "{this is not json",
    "has space.ipynb": "{}",
}


@pytest.fixture(scope="session")
def lab00_grading(tmp_path_factory):
    """lab00_setup's reference, blank, corpus and broken submissions, graded once."""
    return grade_corpus("lab00_setup", tmp_path_factory.mktemp("lab00"), BROKEN_SUBMISSIONS)
