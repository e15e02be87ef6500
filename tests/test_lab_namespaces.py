"""Test code never binds, rebinds or deletes a name in the student's namespace.

Every lab's solution notebook is executed cell by cell in one namespace (set-up, answers, tests,
experiments; quick mode). Around every test cell (visible and hidden tests) the namespace must be
exactly as before: the same names bound to the very same objects. Experiment cells, which run the
student's code, must not rebind a name that an answer cell binds.
"""

import contextlib
import io

import pytest

from autograder.paths import all_labs
from tests.mutation.run import lab_cells

LABS = [lab for lab in all_labs() if any(cell.kind == "test" for cell in lab_cells(lab))]


def bound_names(namespace: dict) -> dict[str, int]:
    return {name: id(value) for name, value in namespace.items() if not name.startswith("__")}


@pytest.mark.parametrize("lab", LABS)
def test_test_cells_leave_the_namespace_as_they_found_it(lab):
    namespace = {"__name__": "__main__"}
    answer_names: set[str] = set()
    with contextlib.redirect_stdout(io.StringIO()):
        for cell in lab_cells(lab):
            before = bound_names(namespace)
            exec(compile(cell.source, f"<{cell.kind} {cell.grade_id}>", "exec"), namespace)
            after = bound_names(namespace)
            changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
            if cell.kind == "test":
                assert not changed, f"{lab} {cell.grade_id} binds, rebinds or deletes {changed}"
            elif cell.kind == "answer":
                answer_names |= set(changed)
            elif cell.kind == "experiment":
                clash = sorted(set(changed) & answer_names)
                assert not clash, f"{lab}: an experiment cell rebinds {clash}, which answer cells define"
