"""Code fits the book's page: no code line of a chapter or of a released lab is longer than 90 characters.

A longer line scrolls sideways on the book's pages. Chapters are formatted with ``ruff format --line-length 88``
and the lines a student sees in a lab are kept to the same width by hand; 90 leaves a little room for a line
that cannot be wrapped without changing what the cell does.
"""

import json
from pathlib import Path

import pytest

from autograder.paths import REPO_ROOT

LIMIT = 90
CHAPTERS = sorted(REPO_ROOT.glob("book/*.ipynb"))
RELEASED_LABS = sorted(REPO_ROOT.glob("labs/*/*.ipynb"))


def long_code_lines(notebook: Path, limit: int = LIMIT) -> list[str]:
    """Where each code line longer than ``limit`` is: cell index (and id), line number in the cell, the line."""
    found = []
    for index, cell in enumerate(json.loads(notebook.read_text())["cells"]):
        if cell["cell_type"] != "code":
            continue
        for number, line in enumerate("".join(cell["source"]).splitlines(), start=1):
            if len(line) > limit:
                found.append(f"cell {index} (id {cell.get('id', '?')}), line {number}, {len(line)} characters: {line}")
    return found


def test_the_book_and_the_labs_are_checked():
    assert len(CHAPTERS) >= 8 and len(RELEASED_LABS) >= 8


@pytest.mark.parametrize("notebook", CHAPTERS + RELEASED_LABS, ids=lambda path: path.stem)
def test_code_lines_fit_the_page(notebook):
    offending = long_code_lines(notebook)
    assert not offending, (
        f"{notebook.relative_to(REPO_ROOT)}: code lines over {LIMIT} characters scroll sideways on the page; "
        "reflow them (chapters: ruff format --line-length 88; labs: the visible lines of the solution notebook, "
        "then python -m autograder release):\n" + "\n".join(offending)
    )


def test_long_code_lines_are_reported_with_their_cell_and_line(tmp_path):
    long_line = "x = " + "1 + " * 30 + "1"
    cells = [
        {"cell_type": "markdown", "id": "prose", "metadata": {}, "source": ["word " * 40]},
        {"cell_type": "code", "id": "short", "metadata": {}, "source": ["y = 1"]},
        {"cell_type": "code", "id": "wide", "metadata": {}, "source": ["y = 1\n", long_line]},
    ]
    notebook = tmp_path / "page.ipynb"
    notebook.write_text(json.dumps({"cells": cells}))
    assert long_code_lines(notebook) == [f"cell 2 (id wide), line 2, {len(long_line)} characters: {long_line}"]
    assert long_code_lines(notebook, limit=len(long_line)) == []
