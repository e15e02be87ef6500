"""Test code never binds, rebinds or deletes a name in the student's namespace.

Every lab's solution notebook is executed cell by cell in one namespace (set-up, answers, tests,
experiments; quick mode). Around every test cell (visible and hidden tests) the namespace must be
exactly as before: the same names bound to the very same objects. Experiment cells, which run the
student's code, must not rebind a name that an answer cell binds, and the tests must read no name
that a cell tagged ``experiment`` binds (the grader leaves those cells unrun).
"""

import contextlib
import io

import nbformat
import pytest

from autograder.experiments import bound_names as names_bound_by
from autograder.experiments import is_experiment, names_read
from autograder.paths import all_labs, source_notebook
from tests.grading import answers_using_others, cells_testing_each_answer
from tests.mutation.run import lab_cells
from tests.submissions import closure

LABS = [lab for lab in all_labs() if any(cell.kind == "test" for cell in lab_cells(lab))]


class ReadRecorder(dict):
    """A namespace that notes the names Python code reads from it by key (hidden tests via ``globals()``)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.reads: set[str] = set()
        self.lent: set[str] = set()  # names a hidden test bound for a call and restored (Student.lending)

    def update(self, values):
        self.lent |= set(values)
        super().update(values)

    def __getitem__(self, name):
        self.reads.add(name)
        return super().__getitem__(name)

    def get(self, name, default=None):
        self.reads.add(name)
        return super().get(name, default)

    def __contains__(self, name):
        self.reads.add(name)
        return super().__contains__(name)


def experiment_names(lab: str) -> set[str]:
    nb = nbformat.read(source_notebook(lab), as_version=4)
    return set().union(*(names_bound_by(cell.source) or set() for cell in nb.cells if is_experiment(cell)))


def bound_names(namespace: dict) -> dict[str, int]:
    return {name: id(value) for name, value in namespace.items() if not name.startswith("__")}


@pytest.mark.parametrize("lab", LABS)
def test_test_cells_leave_the_namespace_as_they_found_it(lab):
    namespace = ReadRecorder({"__name__": "__main__"})
    answer_names: set[str] = set()
    read_by_tests: set[str] = set()
    with contextlib.redirect_stdout(io.StringIO()):
        for cell in lab_cells(lab):
            before = bound_names(namespace)
            namespace.reads.clear()
            exec(compile(cell.source, f"<{cell.kind} {cell.grade_id}>", "exec"), namespace)
            after = bound_names(namespace)
            if cell.kind == "test":
                read_by_tests |= namespace.reads
            changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
            if cell.kind == "test":
                assert not changed, f"{lab} {cell.grade_id} binds, rebinds or deletes {changed}"
            elif cell.kind == "answer":
                answer_names |= set(changed)
            elif cell.kind == "experiment":
                clash = sorted(set(changed) & answer_names)
                assert not clash, f"{lab}: an experiment cell rebinds {clash}, which answer cells define"
    needed = sorted(read_by_tests & experiment_names(lab))
    assert not needed, f"{lab}: test cells read {needed}, which cells tagged experiment bind; untag them"


PACKED_LABS = [lab for lab in LABS if cells_testing_each_answer(lab)]


@pytest.mark.parametrize("lab", PACKED_LABS)
def test_a_packed_labs_test_cells_each_test_their_own_answer(lab):
    """A corpus that declares TESTED_BY is graded several entries to a notebook (tests/grading.py), which is sound
    only if no test cell reads a name another answer cell binds (lending a correct version of one, as the hidden
    tests of an answer that may call another do, is not reading it), and no answer cell reads one either, but
    where the corpus's USES declares it (packs then keep the cells apart)."""
    cells, uses = cells_testing_each_answer(lab), answers_using_others(lab)
    namespace = ReadRecorder({"__name__": "__main__"})
    bound_by: dict[str, str] = {}  # name -> the answer cell that binds it
    with contextlib.redirect_stdout(io.StringIO()):
        for cell in lab_cells(lab):
            namespace.reads.clear()
            namespace.lent.clear()
            before = bound_names(namespace)
            exec(compile(cell.source, f"<{cell.kind} {cell.grade_id}>", "exec"), namespace)
            # a name a hidden test lends (a correct version bound for a call, then restored) is not read from the
            # notebook; a name the cell's own code mentions is
            reads = (namespace.reads - namespace.lent) | names_read(cell.source)
            if cell.kind == "answer":
                bound_by |= {
                    name: cell.grade_id for name, value in bound_names(namespace).items() if before.get(name) != value
                }
                owner = cell.grade_id
            elif cell.kind == "test":
                owner = next((answer for answer, tests in cells.items() if cell.grade_id in tests), None)
                assert owner, f"{lab}: TESTED_BY names no answer cell for {cell.grade_id}"
            else:
                continue
            allowed = {owner} | closure(owner, uses)
            foreign = sorted(name for name in reads if bound_by.get(name, owner) not in allowed)
            assert not foreign, (
                f"{lab} {cell.grade_id} reads {foreign}, bound by other answer cells "
                f"({sorted({bound_by[name] for name in foreign})}); declare them in USES[{owner!r}]"
            )
    assert set(cells) == {cell.grade_id for cell in lab_cells(lab) if cell.kind == "answer"}
