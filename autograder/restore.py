"""Read a submission and give it back the lab's structure before nbgrader sees it.

Editors lose things nbgrader relies on: Colab and others drop or change cell metadata,
students delete, duplicate or edit test cells, change the kernel, or hand in an old
notebook format. nbgrader would then silently skip the tests (a zero). Here every
graded or answer cell of the release (a "tracked" cell, with an nbgrader ``grade_id``)
is found in the submission

1. by its ``grade_id``;
2. else by content: a test cell by its text or first line, an answer cell by the
   names it defines or its first line;
3. else, for an answer cell, by position: the one unclaimed code cell between the
   cells matched before and after it.

The notebook is then rebuilt with the tracked cells in the release's order and with the
release's metadata (test cells with the release's text), and every other cell of the
student (their markdown, helpers, experiments) after the tracked cell it followed. A
missing test cell comes back from the source; a missing answer cell is not invented,
since its code may live in another cell. Each repair is a sentence for ``problems.csv``.
"""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode
from nbformat.v4.nbbase import random_cell_id


def load_submission(path: Path) -> tuple[NotebookNode | None, list[str]]:
    """The submission as an nbformat 4 notebook (None when it cannot be one) and notes."""
    raw = path.read_bytes()
    if not raw.strip():
        return None, ["the file is empty"]
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, [f"not a notebook: invalid JSON ({str(error)[:120]})"]
    if not isinstance(data, dict) or not ("cells" in data or "worksheets" in data):
        return None, ["not a notebook: the JSON has no cells"]
    try:
        nb = nbformat.reads(raw.decode(), as_version=4)
    except Exception as error:  # any conversion failure is this student's problem only
        return None, [f"not a readable notebook ({type(error).__name__}: {str(error).splitlines()[0][:160]})"]
    notes = []
    if data.get("nbformat") != 4:
        notes.append(f"nbformat {data.get('nbformat')} notebook converted to nbformat 4")
    if not nb.cells:
        return None, notes + ["the notebook has no cells"]
    return nb, notes


def grade_id(cell: NotebookNode) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def is_test(cell: NotebookNode) -> bool:
    info = cell.metadata.get("nbgrader", {})
    return bool(info.get("grade")) and not info.get("solution")


HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def normalized(source: str) -> str:
    """The source without hidden tests (the instructor's copy has them), blank lines or trailing spaces."""
    lines, hidden = [], False
    for line in source.splitlines():
        if line.strip() in (HIDDEN_BEGIN, HIDDEN_END):
            hidden = line.strip() == HIDDEN_BEGIN
        elif not hidden and line.strip():
            lines.append(line.rstrip())
    return "\n".join(lines)


def first_line(source: str) -> str:
    lines = [line.strip() for line in source.splitlines() if line.strip()]
    return lines[0] if lines and not lines[0].startswith("# YOUR CODE") else ""


def defined_names(source: str) -> set[str]:
    """Top-level functions, classes and variables a cell defines."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {target.id for target in targets if isinstance(target, ast.Name)}
    return names


def same_cell(student: NotebookNode, tracked: NotebookNode) -> bool:
    """Whether an unmarked student cell is, by its content, the release's tracked cell."""
    if is_test(tracked):
        if normalized(student.source) == normalized(tracked.source):
            return True
    else:
        names = defined_names(tracked.source)
        if names and names & defined_names(student.source):
            return True
    line = first_line(tracked.source)
    return bool(line) and line == first_line(student.source)


class Restorer:
    """Matches one submission's cells to the release's tracked cells and rebuilds it."""

    def __init__(self, nb: NotebookNode, release: NotebookNode):
        self.nb, self.release = nb, release
        self.tracked = [cell for cell in release.cells if grade_id(cell)]
        self.tracked_by_id = {grade_id(cell): cell for cell in self.tracked}
        self.match: dict[str, int] = {}  # grade_id -> index of the student's cell
        self.dropped: set[int] = set()
        self.notes: list[str] = []
        self.repaired: list[str] = []

    def claimed(self, index: int) -> bool:
        return index in self.dropped or index in self.match.values()

    def match_by_grade_id(self) -> None:
        for index, cell in enumerate(self.nb.cells):
            gid = grade_id(cell)
            if gid is None:
                continue
            if gid not in self.tracked_by_id:
                del cell.metadata["nbgrader"]  # an id the lab does not have: match by content instead
            elif gid not in self.match:
                self.match[gid] = index
            elif is_test(self.tracked_by_id[gid]):
                self.dropped.add(index)
                self.notes.append(f"removed a duplicate of test cell {gid}")
            else:
                del cell.metadata["nbgrader"]
                self.notes.append(f"answer cell {gid} appears twice; the first is graded, both run")

    def match_by_content(self) -> None:
        for position, tracked in enumerate(self.tracked):
            gid = grade_id(tracked)
            if gid in self.match:
                continue
            after = max(
                (self.match[grade_id(t)] for t in self.tracked[:position] if grade_id(t) in self.match), default=-1
            )
            candidates = [i for i, cell in enumerate(self.nb.cells) if not self.claimed(i) and same_cell(cell, tracked)]
            if candidates:
                later = [i for i in candidates if i > after]
                self.match[gid] = (later or candidates)[0]
                self.repaired.append(gid)

    def match_by_position(self) -> None:
        instructor_code = {normalized(c.source) for c in self.release.cells if c.cell_type == "code"}
        for position, tracked in enumerate(self.tracked):
            gid = grade_id(tracked)
            if gid in self.match or is_test(tracked):
                continue
            before = [self.match[grade_id(t)] for t in self.tracked[:position] if grade_id(t) in self.match]
            after = [self.match[grade_id(t)] for t in self.tracked[position + 1 :] if grade_id(t) in self.match]
            low, high = max(before, default=-1), min(after, default=len(self.nb.cells))
            candidates = [
                i
                for i in range(low + 1, high)
                if not self.claimed(i)
                and self.nb.cells[i].cell_type == tracked.cell_type
                and normalized(self.nb.cells[i].source) not in instructor_code
            ]
            if len(candidates) == 1:
                self.match[gid] = candidates[0]
                self.repaired.append(gid)
            else:
                self.notes.append(f"answer cell {gid} not found (its tests still ran)")

    def tracked_cell(self, tracked: NotebookNode) -> NotebookNode | None:
        """The student's version of a tracked cell with the release's metadata, or the release's test cell."""
        gid = grade_id(tracked)
        if gid not in self.match:
            if is_test(tracked):
                self.notes.append(f"test cell {gid} was missing; restored from the lab")
                return copy.deepcopy(tracked)
            return None
        student = self.nb.cells[self.match[gid]]
        if is_test(tracked):
            if normalized(student.source) != normalized(tracked.source):
                self.notes.append(f"test cell {gid} was edited; graded with the lab's original")
            return copy.deepcopy(tracked)
        cell = copy.deepcopy(tracked)
        cell.source = student.source
        if cell.cell_type == "code" and student.cell_type == "code":
            cell.outputs = student.get("outputs", [])
        return cell

    def rebuild(self) -> list[NotebookNode]:
        anchor_of = {index: gid for gid, index in self.match.items()}
        extras: dict[str | None, list[NotebookNode]] = {}
        anchor = None
        for index, cell in enumerate(self.nb.cells):
            if index in anchor_of:
                anchor = anchor_of[index]
            elif index not in self.dropped:
                if "nbgrader" in cell.metadata:
                    del cell.metadata["nbgrader"]
                extras.setdefault(anchor, []).append(cell)
        cells = list(extras.get(None, []))
        for tracked in self.tracked:
            cell = self.tracked_cell(tracked)
            if cell is not None:
                cells.append(cell)
            cells.extend(extras.get(grade_id(tracked), []))
        return cells

    def restore(self) -> list[str]:
        self.match_by_grade_id()
        self.match_by_content()
        self.match_by_position()
        order = [self.match[grade_id(cell)] for cell in self.tracked if grade_id(cell) in self.match]
        if order != sorted(order):
            self.notes.append("answer and test cells were out of order; graded in the lab's order")
        self.nb.cells = self.rebuild()
        if self.repaired:
            self.notes.insert(0, f"nbgrader metadata restored for {', '.join(self.repaired)} (matched by content)")
        return self.notes


def restore_kernel(nb: NotebookNode, release: NotebookNode) -> list[str]:
    wanted = release.metadata.get("kernelspec", {})
    found = nb.metadata.get("kernelspec", {}).get("name")
    nb.metadata["kernelspec"] = copy.deepcopy(wanted)
    nb.metadata["language_info"] = copy.deepcopy(release.metadata.get("language_info", {"name": "python"}))
    if found and found != wanted.get("name"):
        return [f"kernel {found!r} replaced by the lab's {wanted.get('name')!r}"]
    return []


def unique_cell_ids(nb: NotebookNode) -> None:
    nb.nbformat, nb.nbformat_minor = 4, max(nb.get("nbformat_minor", 0), 5)
    seen = set()
    for cell in nb.cells:
        if not cell.get("id") or cell.id in seen:
            cell.id = random_cell_id()
        seen.add(cell.id)


def restore_submission(nb: NotebookNode, release: NotebookNode) -> list[str]:
    """Rebuild ``nb`` in place against the lab's ``release``; return what was repaired."""
    notes = restore_kernel(nb, release) + Restorer(nb, release).restore()
    unique_cell_ids(nb)
    nbformat.validate(nb)
    return notes
