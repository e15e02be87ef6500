"""Mutation testing of the hidden tests: every mutant of a reference answer is killed or documented.

Each lab's reference answers are mutated mechanically (``tests/mutation/mutate.py``) and every
mutant is graded by the lab's own test cells in one process per lab (``tests/mutation/run.py``).
A mutant that survives must be listed, with the reason it is equivalent to the reference, in
``tests/mutation/equivalent/LAB.py``; a listed mutant that is killed (or no longer exists) must be
removed from the list, so that the list stays true.
"""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.paths import REPO_ROOT

LABS = sorted(path.stem for path in (Path(__file__).parent / "mutation" / "equivalent").glob("lab*.py"))


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """``outcomes(lab)``: every mutant's outcome, from one run of the mutation runner per lab."""
    import json

    runs = {}

    def run(lab: str) -> list[dict]:
        if lab not in runs:
            report = tmp_path_factory.mktemp(lab) / "mutants.json"
            command = [sys.executable, "-m", "tests.mutation.run", lab, "--jobs", "2", "--json", str(report)]
            result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=3000)
            assert result.returncode == 0, result.stdout + result.stderr[-3000:]
            print(result.stdout)
            runs[lab] = json.loads(report.read_text())
        return runs[lab]

    return run


@pytest.mark.parametrize("lab", LABS)
def test_every_mutant_is_killed_or_documented_equivalent(outcomes, lab):
    equivalent = importlib.import_module(f"tests.mutation.equivalent.{lab}").EQUIVALENT
    results = outcomes(lab)
    survivors = {result["id"] for result in results if result["outcome"] == "survived"}
    undocumented = sorted(survivors - set(equivalent))
    assert not undocumented, "mutants that no hidden test kills:\n" + "\n".join(undocumented)
    stale = sorted(set(equivalent) - survivors)
    assert not stale, "documented equivalents that are now killed or gone (remove them):\n" + "\n".join(stale)
    assert all(len(reason) > 20 for reason in equivalent.values()), "say why each mutant is equivalent"
