"""Test-suite settings shared by unit tests and the notebooks nbval executes."""

import os

import pytest

# Notebooks (solutions, chapters) run in quick mode under test; kernels inherit this.
os.environ["DLCOURSE_QUICK"] = "1"
# One thread per kernel, as when grading: small models gain nothing from more, and spinning
# threads slow everything down badly when another process shares the two cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


# `make test` runs on two pytest-xdist workers (--dist loadgroup). Every test gets a work unit:
# the tests that share one expensive run of a lab (its graded corpus, its mutants) go together,
# so the run happens once, on one worker; everything else goes by file, which keeps a notebook's
# cells in one kernel and a module's fixtures computed once.
PER_LAB_RUNS = {"graded_corpus": "graded", "outcomes": "mutants"}


def work_unit(item: pytest.Item) -> str:
    callspec = getattr(item, "callspec", None)
    lab = callspec.params.get("lab") if callspec else None
    for fixture, kind in PER_LAB_RUNS.items():
        if lab and fixture in item.fixturenames:
            return f"{kind}-{lab}"
    return item.nodeid.split("::")[0]


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(work_unit(item)))
