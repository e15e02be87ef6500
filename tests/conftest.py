from concurrent.futures import Future, ThreadPoolExecutor

import nbformat
import pytest

from autograder.experiments import is_experiment
from tests.grading import grade_corpus, load_corpus
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


class CorpusGradings:
    """``gradings(lab)``: the lab's reference, blank and corpus submissions graded once per session.

    :meth:`start` begins grading the labs the session's tests need as soon as it starts, in the
    background, BACKGROUND_BATCHES batches at a time with their priority lowered by NICENESS: they
    fill the cores that the other tests, most of which run on one core, leave idle, and yield to them.
    """

    BACKGROUND_BATCHES = 2
    NICENESS = 10

    def __init__(self, tmp_path_factory) -> None:
        self.tmp_path_factory = tmp_path_factory
        self.pool = ThreadPoolExecutor(self.BACKGROUND_BATCHES, thread_name_prefix="corpus")
        self.runs: dict[str, Future] = {}

    def start(self, labs: list[str]) -> None:
        for lab in labs:
            if lab not in self.runs:
                workdir = self.tmp_path_factory.mktemp(lab)
                extra = {**BROKEN_SUBMISSIONS, **edited_experiment(lab)} if lab == "lab00_setup" else None
                self.runs[lab] = self.pool.submit(grade_corpus, lab, workdir, extra, self.NICENESS)

    def __call__(self, lab: str):
        self.start([lab])
        return self.runs[lab].result()

    def stop(self) -> None:
        """Drop the batches not started yet; wait for those running (at most BACKGROUND_BATCHES)."""
        self.pool.shutdown(wait=True, cancel_futures=True)


def labs_graded_by(items) -> list[str]:
    """The labs whose corpus the collected tests read: lab00_setup first (its grading run is read by
    tests that come early), then the others from the largest corpus down."""
    labs = set()
    for item in items:
        if "graded_corpus" in getattr(item, "fixturenames", ()):
            callspec = getattr(item, "callspec", None)
            labs.add(callspec.params.get("lab", "lab00_setup") if callspec else "lab00_setup")
    return sorted(labs, key=lambda lab: (lab != "lab00_setup", -sum(map(len, load_corpus(lab)))))


@pytest.fixture(scope="session")
def graded_corpus(tmp_path_factory):
    """``graded_corpus(lab)``: the lab's corpus graded (see :class:`CorpusGradings`)."""
    gradings = CorpusGradings(tmp_path_factory)
    yield gradings
    gradings.stop()


@pytest.fixture(scope="session", autouse=True)
def corpus_gradings_start_with_the_session(request):
    """Not a user of ``graded_corpus`` itself, so that only the tests that read a grading ask for one (a
    session of tests that need none grades nothing)."""
    labs = labs_graded_by(request.session.items)
    if labs:
        request.getfixturevalue("graded_corpus").start(labs)


@pytest.fixture(scope="session")
def lab00_grading(graded_corpus):
    return graded_corpus("lab00_setup")
