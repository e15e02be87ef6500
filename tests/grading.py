"""Grade a lab's corpus or hostile batch through the instructor command, and read what the grader wrote."""

from __future__ import annotations

import csv
import html
import importlib
import json
import re
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder.paths import REPO_ROOT, released_notebook, source_notebook
from autograder.tampering import hidden_test_lines
from tests.submissions import WrongImplementation, corpus_submissions, pack_submissions, packed, scoring_cells


@dataclass
class GradingRun:
    lab: str
    out: Path
    corpus: list[WrongImplementation]
    alternatives: list[WrongImplementation]
    scores: dict[str, dict[str, tuple[float, float]]]  # student or entry -> grade_id -> (score, max)
    problems: dict[str, list[str]]
    grades: dict[str, dict[str, str]]
    stdout: str
    notebook_of: dict[str, str]  # entry -> the submission it was graded in (a pack's, or its own)

    def feedback_page(self, name: str) -> Path:
        return self.out / "feedback" / self.notebook_of.get(name, name) / f"{self.lab}.html"

    def code_in_notebook_of(self, name: str) -> str:
        """The answers typed into the submission ``name`` was graded in (every entry of its pack)."""
        notebook = self.notebook_of.get(name, name)
        return "\n".join(
            e.code for e in self.corpus + self.alternatives if self.notebook_of.get(e.name, e.name) == notebook
        )


def load_corpus(lab: str) -> tuple[list[WrongImplementation], list[WrongImplementation]]:
    module = importlib.import_module(f"tests.corpus.{lab}")
    return module.CORPUS, getattr(module, "ALTERNATIVES", [])


def cells_testing_each_answer(lab: str) -> dict[str, tuple[str, ...]] | None:
    """A corpus's TESTED_BY: answer cell -> the test cells that test it, declared where each test cell tests one
    answer (no test cell reads another answer but to lend a correct version of it, or as USES declares), so that
    entries of different cells share a notebook."""
    return getattr(importlib.import_module(f"tests.corpus.{lab}"), "TESTED_BY", None)


def answers_using_others(lab: str) -> dict[str, tuple[str, ...]]:
    """A corpus's USES: answer cell -> the answer cells its reference answer or its test cells read (a training
    step that calls the lab's attack, a test that builds a model from the student's block), declared with
    TESTED_BY; tests/test_lab_namespaces.py checks that every such read is declared."""
    return getattr(importlib.import_module(f"tests.corpus.{lab}"), "USES", {})


def scores_in_pack(
    entry: WrongImplementation,
    pack_scores: dict[str, tuple[float, float]],
    pack: list,
    cells: dict,
    uses: dict[str, tuple[str, ...]] | None = None,
) -> dict[str, tuple[float, float]]:
    """An entry's scores from its pack's: the pack's everywhere but in the test cells of the pack's other entries
    (and of the answers that use theirs), where the entry (whose answer they do not test) is given full marks."""
    others = {cell for other in pack if other is not entry for cell in scoring_cells(other.cell, cells, uses or {})}
    return {
        cell: (maximum, maximum) if cell in others else (score, maximum)
        for cell, (score, maximum) in pack_scores.items()
    }


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


# The corpus and hostile batches are graded two notebooks at a time, one per core.
GRADING_JOBS = "2"


def run_grade(lab: str, submissions: Path, out: Path, *extra: str, nice: int = 0) -> subprocess.CompletedProcess:
    """``python -m autograder grade`` on ``submissions``; ``nice``: its priority lowered by that much."""
    command = [sys.executable, "-m", "autograder", "grade", lab, "--submissions", str(submissions), "--out", str(out)]
    lowered = ["nice", "-n", str(nice)] if nice else []
    return subprocess.run(lowered + command + list(extra), cwd=REPO_ROOT, capture_output=True, text=True, timeout=3600)


def grade_corpus(lab: str, workdir: Path, extra_submissions: dict[str, str] | None = None, nice: int = 0) -> GradingRun:
    """Write reference, blank, corpus and alternative submissions, grade them (``nice``: see
    :func:`run_grade`), read the outputs."""
    corpus, alternatives = load_corpus(lab)
    submissions = workdir / "submitted"
    cells, uses = cells_testing_each_answer(lab), answers_using_others(lab)
    # an entry the grader flags (a cheat) is graded alone: a flag applies to the whole notebook it was found in
    flagged = getattr(importlib.import_module(f"tests.corpus.{lab}"), "FLAGGED", {})
    alone = [entry for entry in corpus + alternatives if not cells or entry.name in flagged]
    packs = (
        [
            pack
            for entries in (corpus, alternatives)
            for pack in packed([e for e in entries if e not in alone], cells, uses)
        ]
        if cells
        else []
    )
    corpus_submissions(lab, alone, submissions)
    notebook_of = pack_submissions(lab, packs, submissions) if cells else {}
    for name, text in (extra_submissions or {}).items():
        (submissions / name).write_text(text)
    out = workdir / "out"
    result = run_grade(lab, submissions, out, "-j", GRADING_JOBS, nice=nice)
    if result.returncode != 0:
        raise AssertionError(f"grade exited {result.returncode}:\n{result.stdout}\n{result.stderr[-4000:]}")
    scores: dict[str, dict[str, tuple[float, float]]] = defaultdict(dict)
    for row in read_csv(out / "scores.csv"):
        scores[row["student_id"]][row["grade_id"]] = (float(row["score"]), float(row["max_score"]))
    problems: dict[str, list[str]] = defaultdict(list)
    for row in read_csv(out / "problems.csv"):
        problems[row["student_id"]].append(row["problem"])
    grades = {row["student_id"]: row for row in read_csv(out / "grades.csv")}
    for pack in packs:
        notebook = notebook_of[pack[0].name]
        for entry in pack:
            scores[entry.name] = scores_in_pack(entry, scores[notebook], pack, cells, uses)
            if notebook in problems:
                problems[entry.name] = problems[notebook]
    return GradingRun(lab, out, corpus, alternatives, dict(scores), dict(problems), grades, result.stdout, notebook_of)


def grade_hostile(lab: str, entries: list, work: Path, limits: tuple[str, ...]) -> subprocess.CompletedProcess:
    """Write each hostile entry as ``work/submitted/NAME.ipynb`` and grade them all in one batch into ``work/out``."""
    submitted = work / "submitted"
    submitted.mkdir()
    for entry in entries:
        (submitted / f"{entry.name}.ipynb").write_bytes(entry.build())
    result = run_grade(lab, submitted, work / "out", "-j", GRADING_JOBS, *limits)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def totals(out: Path) -> dict[str, float]:
    """Each student's total from grades.csv."""
    return {row["student_id"]: float(row["raw_score"]) for row in read_csv(out / "grades.csv")}


def problem_lines(out: Path) -> dict[str, str]:
    """Each student's line in problems.csv."""
    return {row["student_id"]: row["problem"] for row in read_csv(out / "problems.csv")}


def hidden_lines_shown(out: Path, lab: str) -> dict[str, list[str]]:
    """Per feedback page, the hidden-test lines it shows that the student did not type themselves."""
    source = nbformat.read(source_notebook(lab), as_version=4)
    secrets = hidden_test_lines(source, nbformat.read(released_notebook(lab), as_version=4))
    assert secrets, f"{lab} has no hidden-test lines to look for"
    shown = {}
    for page in (out / "feedback").glob("*/*.html"):
        typed = (out.parent / "submitted" / f"{page.parent.name}.ipynb").read_text()
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
        leaked = [line for line in secrets if line in text and json.dumps(line)[1:-1] not in typed]
        if leaked:
            shown[page.parent.name] = leaked
    return shown
