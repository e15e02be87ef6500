"""Build student submissions from a lab's release: the reference answers, blanks, wrong ones."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder.paths import released_notebook, source_notebook

SOLUTION_MARKER = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")


@dataclass(frozen=True)
class WrongImplementation:
    """An answer variant: ``code`` replaces answer cell ``cell`` of the reference solution.

    For a realistic mistake ``loses`` names the test cells where it must lose points;
    for a correct answer in another style it is empty and every cell keeps full marks.
    """

    name: str
    cell: str
    code: str
    loses: tuple[str, ...]


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def reference_answers(lab: str) -> dict[str, str]:
    """Answer-cell sources of the solution notebook with the solution markers removed."""
    nb = nbformat.read(source_notebook(lab), as_version=4)
    answers = {}
    for cell in nb.cells:
        if nbgrader_meta(cell).get("solution"):
            lines = [line for line in cell.source.splitlines() if not SOLUTION_MARKER.match(line)]
            answers[nbgrader_meta(cell)["grade_id"]] = "\n".join(lines)
    return answers


def reference_editor(lab: str):
    """``edit(name, cell, old, new, loses)``: a corpus entry whose answer is the reference answer of
    ``cell`` with ``old`` replaced by ``new`` (``old`` must occur in it)."""
    reference = reference_answers(lab)

    def edit(name: str, cell: str, old: str, new: str, loses: tuple[str, ...]) -> WrongImplementation:
        if old not in reference[cell]:
            raise ValueError(f"{name}: {old!r} is not in the reference answer of {cell}")
        return WrongImplementation(name, cell, reference[cell].replace(old, new), loses)

    return edit


def student_notebook(lab: str, answers: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """The released lab with the given answer cells filled in (others left as released)."""
    nb = nbformat.read(released_notebook(lab), as_version=4)
    for cell in nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if nbgrader_meta(cell).get("solution") and answers and grade_id in answers:
            cell.source = answers[grade_id]
    return nb


def write_submission(folder: Path, student_id: str, nb: nbformat.NotebookNode) -> Path:
    path = folder / f"{student_id}.ipynb"
    nbformat.write(nb, path)
    return path


def corpus_submissions(lab: str, corpus: list[WrongImplementation], folder: Path) -> None:
    """Write the reference solution, the blank release and one notebook per wrong implementation."""
    folder.mkdir(parents=True, exist_ok=True)
    reference = reference_answers(lab)
    write_submission(folder, "reference", student_notebook(lab, reference))
    write_submission(folder, "blank", student_notebook(lab))
    for wrong in corpus:
        if wrong.cell not in reference:
            raise ValueError(f"corpus entry {wrong.name}: {lab} has no answer cell {wrong.cell!r}")
        write_submission(folder, wrong.name, student_notebook(lab, {**reference, wrong.cell: wrong.code}))


def closure(start: str, edges: dict[str, tuple[str, ...]]) -> set[str]:
    """Every cell reachable from ``start`` along ``edges`` (start itself excluded unless on a cycle)."""
    found: set[str] = set()
    stack = list(edges.get(start, ()))
    while stack:
        cell = stack.pop()
        if cell not in found:
            found.add(cell)
            stack.extend(edges.get(cell, ()))
    return found


def users(cell: str, uses: dict[str, tuple[str, ...]]) -> set[str]:
    """The answer cells whose reference answer or test cells read ``cell``'s names, directly or through others."""
    used_by: dict[str, list[str]] = {}
    for user, used in uses.items():
        for other in used:
            used_by.setdefault(other, []).append(user)
    return closure(cell, {key: tuple(value) for key, value in used_by.items()})


def scoring_cells(cell: str, tested_by: dict[str, tuple[str, ...]], uses: dict[str, tuple[str, ...]]) -> set[str]:
    """The test cells an answer in ``cell`` can lose points in: its own, and those of the answers that use it."""
    return {test for owner in {cell} | users(cell, uses) for test in tested_by[owner]}


def packed(
    entries: list[WrongImplementation],
    tested_by: dict[str, tuple[str, ...]],
    uses: dict[str, tuple[str, ...]] | None = None,
) -> list[list[WrongImplementation]]:
    """Entries grouped into packs, for a lab whose test cells each test one answer cell (``tested_by`` maps every
    answer cell to its test cells), save the uses declared in ``uses`` (answer cell -> the answer cells its
    reference answer or its test cells read). An answer can lose points in its own test cells and in those of the
    answers that use it; a pack never holds two entries that could lose points in the same cell (so at most one
    per answer cell, none of two cells one of which uses the other, none of two cells that one answer uses): one
    notebook per pack then grades several entries at once, each scored by its own such cells (see tests.grading)."""
    uses = uses or {}
    packs: list[list[WrongImplementation]] = []
    for entry in entries:
        if entry.cell not in tested_by or not set(entry.loses) <= scoring_cells(entry.cell, tested_by, uses):
            raise ValueError(
                f"{entry.name}: the test cells of {entry.cell!r} (and of the answers that use it) are "
                f"{sorted(scoring_cells(entry.cell, tested_by, uses)) if entry.cell in tested_by else None}"
            )
        mine = scoring_cells(entry.cell, tested_by, uses)
        pack = next(
            (pack for pack in packs if all(not mine & scoring_cells(other.cell, tested_by, uses) for other in pack)),
            None,
        )
        if pack is None:
            packs.append(pack := [])
        pack.append(entry)
    return packs


def pack_submissions(lab: str, packs: list[list[WrongImplementation]], folder: Path) -> dict[str, str]:
    """One notebook per pack (the reference with each entry's answer in place); returns entry name -> notebook."""
    reference = reference_answers(lab)
    notebook_of = {}
    for index, pack in enumerate(packs):
        name = f"pack{index:02d}"
        write_submission(folder, name, student_notebook(lab, {**reference, **{e.cell: e.code for e in pack}}))
        notebook_of |= {entry.name: name for entry in pack}
    return notebook_of
