"""The experiment cells the grader leaves unrun: which ones, and that no lab's graded cells need them."""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.experiments import EXPERIMENT_TAG, cells_to_skip, experiment_sources, is_experiment, normalised
from autograder.paths import all_labs, source_notebook

EXPERIMENT = "model = train_twice(data)\nhistory = model.history"


def notebook(*sources: str) -> nbformat.NotebookNode:
    cells = [new_code_cell(source) for source in sources]
    cells.insert(1, new_markdown_cell("Some prose."))
    return new_notebook(cells=cells)


def skipped(*sources: str, experiments=(EXPERIMENT,)) -> set[int]:
    return cells_to_skip(notebook(*sources), [normalised(source) for source in experiments])


def test_an_unchanged_experiment_nothing_reads_is_skipped():
    assert skipped("import torch", EXPERIMENT + "\n\n", "def f(model):\n    return model") == {2}


def test_an_edited_experiment_runs():
    assert skipped("import torch", EXPERIMENT + "\nq1_answer = 3", "print(q1_answer)") == set()


@pytest.mark.parametrize(
    "later",
    [
        "print(history)",
        "def f():\n    return model.score",
        "class Report:\n    best = history[-1]",
        "answer = globals()['history']",
        "answer = eval('model')",
        "%time x = model",  # IPython syntax: every word counts
        "q = [h for h in history]",
    ],
)
def test_an_experiment_a_later_cell_reads_runs(later):
    assert skipped("import torch", EXPERIMENT, later) == set()


@pytest.mark.parametrize(
    "later",
    [
        "def step(model, history):\n    return model(history)",
        "model_size = 3  # not the model",
        "check(globals())",
        "import model_zoo",
    ],
)
def test_names_that_only_look_alike_do_not_count(later):
    assert skipped("import torch", EXPERIMENT, later) == {2}


def test_a_chain_of_experiments_is_skipped_as_a_whole_unless_its_end_is_needed():
    first, second = "data = load()", "model = fit(data)"
    assert skipped(first, second, "q = 1", experiments=(first, second)) == {0, 2}
    assert skipped(first, second, "q = model", experiments=(first, second)) == set()
    assert skipped(first, second, "q = data", experiments=(first, second)) == {2}


def test_an_experiment_that_rebinds_an_answer_runs_when_a_test_reads_it():
    assert skipped("def f(x):\n    return x", "f = None", "check(f)", experiments=("f = None",)) == set()


LABS = all_labs()


@pytest.mark.parametrize("lab", LABS)
def test_every_marked_experiment_is_left_out_of_the_reference(lab):
    """A tagged cell that the reference solution or a test cell needs would run anyway: the tag would be wrong.

    What hidden tests read from ``globals()`` is checked in ``tests/test_lab_namespaces.py``.
    """
    nb = nbformat.read(source_notebook(lab), as_version=4)
    marked = [index for index, cell in enumerate(nb.cells) if is_experiment(cell)]
    assert cells_to_skip(nb, experiment_sources(nb)) == set(marked)
    for index in marked:
        assert "nbgrader" not in nb.cells[index].metadata, f"cell {index} of {lab} is graded or locked"


def test_the_tag_is_the_documented_one():
    assert EXPERIMENT_TAG == "experiment"
