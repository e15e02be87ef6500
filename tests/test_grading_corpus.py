"""Every lab with a corpus, graded through `python -m autograder grade`.

The reference solution scores full marks, the blank release zero, each realistic mistake
loses points exactly in the test cells it names, each correct alternative keeps full marks,
and no feedback file shows what the hidden tests contain.
"""

import html
import importlib
import re
from pathlib import Path

import nbformat
import pytest

from autograder.paths import BATTERY_DIR, released_notebook, source_notebook
from tests.grading import load_corpus
from tests.submissions import reference_answers

LABS = sorted(path.stem for path in (Path(__file__).parent / "corpus").glob("lab*.py"))
ENTRIES = [(lab, wrong) for lab in LABS for wrong in load_corpus(lab)[0]]
ALTERNATIVES = [(lab, alternative) for lab in LABS for alternative in load_corpus(lab)[1]]
HIDDEN_BLOCK = re.compile(r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS", re.DOTALL)
BATTERY_IMPORT = re.compile(r"autograder\.battery\.(\w+)|from autograder\.battery import (\w+)")


def graded_cells(lab: str) -> list[str]:
    nb = nbformat.read(source_notebook(lab), as_version=4)
    return [
        cell.metadata["nbgrader"]["grade_id"] for cell in nb.cells if cell.metadata.get("nbgrader", {}).get("grade")
    ]


def lost_cells(run, student: str) -> list[str]:
    return sorted(cell for cell, (score, maximum) in run.scores[student].items() if score != maximum)


def hidden_lines(lab: str) -> set[str]:
    """Code lines of the hidden tests and of the battery modules they import, absent from the release.

    Seeing one of them in a student's feedback means hidden test source leaked. Short lines and
    lines that are only a string (messages, which feedback rightly shows) do not count.
    """
    source = nbformat.read(source_notebook(lab), as_version=4)
    released = {
        line.strip()
        for cell in nbformat.read(released_notebook(lab), as_version=4).cells
        for line in cell.source.splitlines()
    }
    blocks = [block for cell in source.cells for block in HIDDEN_BLOCK.findall(cell.source)]
    modules = {name for block in blocks for match in BATTERY_IMPORT.finditer(block) for name in match.groups() if name}
    texts = blocks + [(BATTERY_DIR / f"{module}.py").read_text() for module in sorted(modules)]
    lines = {line.strip() for text in texts for line in text.splitlines()}
    return {
        line
        for line in lines
        if len(line) >= 20 and not line.startswith(("#", '"', 'f"', "'")) and line not in released
    }


@pytest.mark.parametrize("lab", LABS)
def test_every_graded_cell_has_a_score_row(graded_corpus, lab):
    assert list(graded_corpus(lab).scores["reference"]) == graded_cells(lab)


@pytest.mark.parametrize("lab", LABS)
def test_reference_solution_scores_full_marks(graded_corpus, lab):
    run = graded_corpus(lab)
    assert lost_cells(run, "reference") == [], run.scores["reference"]
    assert float(run.grades["reference"]["score"]) == float(run.grades["reference"]["max_score"]) > 0


@pytest.mark.parametrize("lab", LABS)
def test_blank_release_scores_zero(graded_corpus, lab):
    run = graded_corpus(lab)
    assert all(score == 0 for score, _ in run.scores["blank"].values()), run.scores["blank"]
    assert float(run.grades["blank"]["score"]) == 0.0


@pytest.mark.parametrize("lab", LABS)
def test_corpus_is_realistic_and_well_formed(lab):
    corpus, alternatives = load_corpus(lab)
    assert len(corpus) >= 5
    names = [entry.name for entry in corpus + alternatives]
    assert len(set(names)) == len(names), "corpus names must be unique"
    cells = set(graded_cells(lab))
    for wrong in corpus:
        assert wrong.loses and set(wrong.loses) <= cells, f"{wrong.name} names unknown cells {wrong.loses}"
    assert all(not alternative.loses for alternative in alternatives)


@pytest.mark.parametrize("lab, wrong", ENTRIES, ids=[f"{lab}-{w.name}" for lab, w in ENTRIES])
def test_wrong_implementation_loses_points_in_its_cell(graded_corpus, lab, wrong):
    lost = lost_cells(graded_corpus(lab), wrong.name)
    assert lost == sorted(wrong.loses), f"{wrong.name} lost points in {lost}, expected {list(wrong.loses)}"


@pytest.mark.parametrize("lab, alternative", ALTERNATIVES, ids=[f"{lab}-{w.name}" for lab, w in ALTERNATIVES])
def test_correct_alternative_keeps_full_marks(graded_corpus, lab, alternative):
    run = graded_corpus(lab)
    assert lost_cells(run, alternative.name) == [], run.scores[alternative.name]


@pytest.mark.parametrize("lab", LABS)
def test_graded_submissions_report_no_problem(graded_corpus, lab):
    """Honest submissions raise no problem; a corpus entry that cheats is flagged as its FLAGGED entry says."""
    run = graded_corpus(lab)
    flagged = getattr(importlib.import_module(f"tests.corpus.{lab}"), "FLAGGED", {})
    graded = ["reference", "blank"] + [w.name for w in run.corpus + run.alternatives]
    honest = set(graded) - set(flagged)
    assert not honest & set(run.problems), run.problems
    for name, phrase in flagged.items():
        assert any(phrase in problem for problem in run.problems.get(name, [])), (name, run.problems.get(name))


@pytest.mark.parametrize("lab", LABS)
def test_feedback_for_everyone_without_hidden_tests(graded_corpus, lab):
    run = graded_corpus(lab)
    secrets = hidden_lines(lab)
    assert secrets, "expected the hidden tests to have some code"
    answers = "\n".join(reference_answers(lab).values())
    for name in ["reference", "blank"] + [w.name for w in run.corpus + run.alternatives]:
        path, code = run.feedback_page(name), run.code_in_notebook_of(name)
        text = html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))
        assert "HIDDEN TESTS" not in text, path
        # a leaked line stands on a line of its own (a message may end like code: "... return x_adv.detach()"),
        # and is not a line of the student's own answers, which the feedback rightly shows
        own = {line.strip() for line in (answers + "\n" + code).splitlines()}
        shown = {line.strip() for line in text.splitlines()}
        leaked = sorted((secrets & shown) - own)
        assert not leaked, f"{path} shows hidden-test code {leaked[:3]}"


@pytest.mark.parametrize("lab", LABS)
def test_feedback_says_which_experiments_the_grader_left_out(graded_corpus, lab):
    """Every corpus entry is graded with the lab's experiment cells left out, and still scores as expected."""
    from autograder.experiments import NOT_RUN, is_experiment

    tagged = sum(is_experiment(cell) for cell in nbformat.read(source_notebook(lab), as_version=4).cells)
    page = (graded_corpus(lab).out / "feedback" / "reference" / f"{lab}.html").read_text()
    assert page.count(NOT_RUN) == tagged > 0


def test_lab06_feedback_names_the_mistake(graded_corpus):
    run = graded_corpus("lab06_adversarial")
    html = run.feedback_page("mim_batch_l1").read_text()
    assert "take the norm of each example separately" in html
