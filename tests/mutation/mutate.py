"""Mechanical mutants of a reference answer: the mistakes a student could make by one small edit.

:func:`mutants` parses an answer cell and yields one :class:`Mutant` per single edit of the lines
between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (the lines a student writes):

- operators: ``+`` and ``-``, ``*`` and ``/``, ``**`` to ``*``, ``//`` to ``/``, ``@`` to ``*``; an
  augmented assignment (``+=``) becomes a plain one;
- comparisons (``<`` and ``<=``, ``==`` and ``!=``, ``is`` and ``is not``, ``in`` and ``not in``),
  ``and`` and ``or``, ``not`` dropped, unary minus dropped, ``if c`` negated, ``a if c else b``
  swapped;
- constants: numbers moved by one (or halved and doubled), ``True`` and ``False`` swapped;
- keyword arguments dropped (their default then applies: ``keepdim``, ``unbiased``, ``dim``, ...);
- calls: ``detach``, ``clone``, ``sign``, ``abs``, ``item``, ``to``, ``contiguous`` and others
  dropped; ``sum``/``mean``, ``max``/``min``, ``sigmoid``/``tanh`` and similar pairs swapped; an
  in-place method made out of place (``mul_`` to ``mul``, its result thrown away);
- statements: a call statement deleted (``model.eval()``, ``optimizer.zero_grad()``), a ``with``
  block unwrapped (``torch.no_grad()`` dropped).

A mutant's id names the cell, the line and column in the cell and the edit, e.g.
``fgsm:7:12 `grad.sign()` -> `grad```; ids are stable while the reference answer is unchanged.
"""

from __future__ import annotations

import ast
import copy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

BEGIN, END = re.compile(r"^\s*### BEGIN SOLUTION\s*$"), re.compile(r"^\s*### END SOLUTION\s*$")

BINARY = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.Pow: ast.Mult}
BINARY |= {ast.FloorDiv: ast.Div, ast.MatMult: ast.Mult, ast.Mod: ast.FloorDiv}
COMPARE = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq}
COMPARE |= {ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}
DROPPED_METHODS = {
    "detach", "clone", "sign", "abs", "item", "to", "contiguous", "float", "double", "sqrt", "exp", "log",
    "requires_grad_", "clamp", "clamp_", "clamp_min", "clamp_max", "flatten", "squeeze", "unsqueeze", "t",
    "relu", "sigmoid", "tanh", "neg", "cpu", "numpy", "tolist", "long", "int", "bool",
}  # fmt: skip
SWAPPED_NAMES = {
    "sum": "mean", "mean": "sum", "max": "min", "min": "max", "amax": "amin", "amin": "amax",
    "sigmoid": "tanh", "tanh": "sigmoid", "relu": "sigmoid", "zeros_like": "ones_like", "ones_like": "zeros_like",
    "new_zeros": "new_ones", "new_ones": "new_zeros", "zeros": "ones", "ones": "zeros", "uniform_": "normal_",
    "normal_": "uniform_", "rand_like": "randn_like", "randn_like": "rand_like", "rand": "randn", "randn": "rand",
    "maximum": "minimum", "minimum": "maximum", "mul_": "add_", "add_": "mul_", "var": "std", "std": "var",
    "stack": "cat", "cat": "stack", "append": "extend", "train": "eval", "eval": "train", "any": "all", "all": "any",
}  # fmt: skip


@dataclass(frozen=True)
class Mutant:
    id: str
    cell: str
    line: int
    source: str


def solution_lines(source: str) -> set[int]:
    """1-based numbers of the lines between the solution markers."""
    inside, lines = False, set()
    for number, line in enumerate(source.splitlines(), start=1):
        if BEGIN.match(line):
            inside = True
        elif END.match(line):
            inside = False
        elif inside:
            lines.add(number)
    return lines


Path = tuple[tuple[str, int | None], ...]


def nodes_with_paths(node: ast.AST, path: Path = ()) -> Iterator[tuple[ast.AST, Path]]:
    yield node, path
    for field, value in ast.iter_fields(node):
        if isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, ast.AST):
                    yield from nodes_with_paths(item, (*path, (field, index)))
        elif isinstance(value, ast.AST):
            yield from nodes_with_paths(value, (*path, (field, None)))


def follow(tree: ast.AST, path: Path) -> tuple[ast.AST, str, int | None]:
    """The parent of the node at ``path``, and where the node sits in it."""
    parent = tree
    for field, index in path[:-1]:
        value = getattr(parent, field)
        parent = value[index] if index is not None else value
    field, index = path[-1]
    return parent, field, index


def replace(tree: ast.AST, path: Path, new: ast.AST | list[ast.AST]) -> None:
    parent, field, index = follow(tree, path)
    if index is None:
        setattr(parent, field, new)
    else:
        items = getattr(parent, field)
        items[index : index + 1] = new if isinstance(new, list) else [new]


Edit = Callable[[ast.AST], "ast.AST | list[ast.AST]"]


def number_edits(value: int | float) -> list[int | float]:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return sorted({value + 1, value - 1} - {value})
    if value == 0:
        return [1.0]
    return [value * 2, value / 2]


def edits_of(node: ast.AST) -> Iterator[Edit]:
    """Every single edit of ``node`` itself (its children get their own)."""
    if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
        yield lambda n: ast.BinOp(n.left, BINARY[type(n.op)](), n.right)
    elif isinstance(node, ast.AugAssign):
        if type(node.op) in BINARY:
            yield lambda n: ast.AugAssign(n.target, BINARY[type(n.op)](), n.value)
        yield lambda n: ast.Assign([n.target], n.value)
    elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in COMPARE:
        yield lambda n: ast.Compare(n.left, [COMPARE[type(n.ops[0])]()], n.comparators)
    elif isinstance(node, ast.BoolOp):
        yield lambda n: ast.BoolOp(ast.Or() if isinstance(n.op, ast.And) else ast.And(), n.values)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub):
        yield lambda n: n.operand
    elif isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        for value in number_edits(node.value):
            yield lambda n, value=value: ast.Constant(value)
    elif isinstance(node, ast.IfExp):
        yield lambda n: ast.IfExp(n.test, n.orelse, n.body)
    elif isinstance(node, ast.If):
        yield lambda n: ast.If(ast.UnaryOp(ast.Not(), n.test), n.body, n.orelse)
    elif isinstance(node, ast.With):
        yield lambda n: n.body
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        yield lambda n: ast.Pass()
    elif isinstance(node, ast.Call):
        yield from call_edits(node)


def call_edits(node: ast.Call) -> Iterator[Edit]:
    for index in range(len(node.keywords)):
        if node.keywords[index].arg is not None:
            yield lambda n, index=index: ast.Call(n.func, n.args, n.keywords[:index] + n.keywords[index + 1 :])
    function = node.func
    name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)
    if isinstance(function, ast.Attribute) and name in DROPPED_METHODS:
        yield lambda n: n.func.value
    if name in SWAPPED_NAMES:
        if isinstance(function, ast.Attribute):
            yield lambda n: ast.Call(ast.Attribute(n.func.value, SWAPPED_NAMES[name], ast.Load()), n.args, n.keywords)
        else:
            yield lambda n: ast.Call(ast.Name(SWAPPED_NAMES[name], ast.Load()), n.args, n.keywords)
    if (
        isinstance(function, ast.Attribute)
        and name.endswith("_")
        and not name.endswith("__")
        and name not in ("requires_grad_",)
    ):
        yield lambda n: ast.Call(ast.Attribute(n.func.value, name[:-1], ast.Load()), n.args, n.keywords)


def short(node: ast.AST | list[ast.AST]) -> str:
    if isinstance(node, list):
        text = "; ".join(ast.unparse(item) for item in node) or "pass"
    else:
        text = ast.unparse(node)
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


def mutants(cell: str, source: str) -> list[Mutant]:
    """One mutant per single edit of the solution lines of answer cell ``cell``."""
    tree = ast.parse(source)
    editable = solution_lines(source)
    found, seen = [], set()
    for node, path in nodes_with_paths(tree):
        if not path or getattr(node, "lineno", None) not in editable:
            continue
        for edit in edits_of(node):
            mutated_tree = copy.deepcopy(tree)
            original = follow(mutated_tree, path)
            target = getattr(original[0], original[1])
            target = target[original[2]] if original[2] is not None else target
            new = edit(copy.deepcopy(target))
            for item in new if isinstance(new, list) else [new]:
                ast.fix_missing_locations(ast.copy_location(item, target))
            label = f"{cell}:{node.lineno}:{node.col_offset} `{short(node)}` -> `{short(new)}`"
            replace(mutated_tree, path, new)
            ast.fix_missing_locations(mutated_tree)
            try:
                text = ast.unparse(mutated_tree)
                compile(text, cell, "exec")
            except (SyntaxError, ValueError):
                continue
            if label not in seen:
                seen.add(label)
                found.append(Mutant(label, cell, node.lineno, text))
    return found
