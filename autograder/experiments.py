"""Experiment cells the grader need not run.

A lab's experiments (training a model to compare with another, plotting) carry no points, and
in quick mode they still cost most of a notebook's time. A source lab marks such a code cell
with the tag ``experiment``; the grader then leaves a student's copy of it unrun when

- its source is the release's, unchanged: a cell the student edited may define what their
  answers need, so it runs; and
- no cell that does run after it reads a name the experiment binds at top level: a name the
  later cell uses at its top level or as a global inside its functions and classes. A later
  cell that does not parse, or that looks names up by string (``globals()``, ``eval``, ...),
  counts as reading every word of its text, comments and strings included: when in doubt the
  experiment runs.

Later cells are read backwards, so a chain of experiments that only feed each other is left
out as a whole. ``tests/test_experiments.py`` checks that no lab's graded cells or hidden tests
need a marked cell, and the corpus tests grade every entry with them left out.
"""

from __future__ import annotations

import ast
import re
import symtable

from nbformat.notebooknode import NotebookNode

EXPERIMENT_TAG = "experiment"
NOT_RUN = (
    "Not run by the grader: an experiment that carries no points and that no later cell needs. "
    "Run it yourself to see its results."
)
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
LOOKUPS_BY_STRING = {"globals", "locals", "vars", "eval", "exec", "__import__", "get_ipython"}  # and __dict__


def is_experiment(cell: NotebookNode) -> bool:
    return cell.cell_type == "code" and EXPERIMENT_TAG in cell.metadata.get("tags", [])


def normalised(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def experiment_sources(source_lab: NotebookNode) -> list[str]:
    """The normalised sources of the code cells a source lab tags as experiments."""
    return [normalised(cell.source) for cell in source_lab.cells if is_experiment(cell)]


def bound_names(source: str) -> set[str] | None:
    """Names a cell binds at top level (assignments, loops, imports, definitions); None if it does not parse."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    names: set[str] = set()
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, SCOPES):
            if not isinstance(node, ast.Lambda):
                names.add(node.name)
            continue  # what a function or class body binds is local to it
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
        pending.extend(ast.iter_child_nodes(node))
    return names


def looks_up_by_string(tree: ast.AST) -> bool:
    """Whether code may read a global whose name is a string: ``eval``, ``globals()["x"]``, ...

    ``f(globals())``, the namespace handed to a hidden test, is not: what the hidden tests
    read is checked separately.
    """
    handed_on = {id(argument) for node in ast.walk(tree) if isinstance(node, ast.Call) for argument in node.args}
    return any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in LOOKUPS_BY_STRING
        and not (node.func.id == "globals" and id(node) in handed_on)
        for node in ast.walk(tree)
    )


def names_read(source: str) -> set[str]:
    """The global names a cell may read.

    Those it uses at top level or as globals in its functions and classes; with a lookup by
    string (``globals()``, ``eval``, ...) every word of its strings as well; every word of its
    text when it does not parse. The names the hidden tests read from ``globals()`` are
    checked against each lab's experiments by ``tests/test_experiments.py``.
    """
    words = set(WORD.findall(source))
    try:
        tree = ast.parse(source)
        table = symtable.symtable(source, "<cell>", "exec")
    except (SyntaxError, ValueError):
        return words
    names: set[str] = set()
    tables = [table]
    while tables:
        scope = tables.pop()
        module = scope.get_type() == "module"
        names.update(s.get_name() for s in scope.get_symbols() if s.is_referenced() and (module or s.is_global()))
        tables.extend(scope.get_children())
    if looks_up_by_string(tree) or "__dict__" in words:
        strings = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)]
        names.update(word for text in strings if isinstance(text, str) for word in WORD.findall(text))
    return names


def cells_to_skip(nb: NotebookNode, experiments: list[str]) -> set[int]:
    """Indices of the code cells of ``nb`` the grader leaves unrun (see the module docstring)."""
    marked = set(experiments)
    skip: set[int] = set()
    used: set[str] = set()  # words of the cells after the current one that will run
    for index in range(len(nb.cells) - 1, -1, -1):
        cell = nb.cells[index]
        if cell.cell_type != "code":
            continue
        if normalised(cell.source) in marked:
            names = bound_names(cell.source)
            if names is not None and not names & used:
                skip.add(index)
                continue
        used |= names_read(cell.source)
    return skip
