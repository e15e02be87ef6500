"""The published helper package gives no lab answer, and holds nothing that only the hidden tests need.

``dlcourse`` is published in the students' repository, so no callable in it may answer a lab. The proof: for
every definition in every lab's answer cells, every public function and class of the package (every module,
``dlcourse.checks.*`` included) whose signature can take the answer's call is substituted for it, a mutant
whose cell imports it under the answer's name, and the lab's test cells (visible and hidden) must fail it.
Candidates are those that accept both the answer's required positional arguments and all of them; a graded
class is stood in for by classes only. The mutants run with the mutation harness (``tests/mutation/run.py``),
all labs in one child process (``python -m tests.test_dlcourse_gives_no_answers``), which reports every
outcome as JSON.

Second, every public name that a ``dlcourse.checks`` module defines is used by visible code: the released labs,
the book's chapters, or the package itself (other than by re-exporting it).
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import inspect
import io
import json
import os
import pkgutil
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from autograder.paths import DLCOURSE_DIR, LABS_DIR, REPO_ROOT, all_labs
from tests.mutation.mutate import Mutant
from tests.mutation.run import base_namespace, lab_cells, run_all

BOOK_DIR = REPO_ROOT / "book"
MIN_MUTANTS = 600  # there are about 770: the proof must not pass because the walk found next to nothing
TIMEOUT = 60.0  # seconds per mutant; one that runs longer fails the proof (it might pass, slowly)


# ---------------------------------------------------------------- the candidates and the mutants


def package_callables() -> dict[str, object]:
    """Every public function and class that a module of ``dlcourse`` defines, by ``module.name``."""
    import dlcourse

    found: dict[str, object] = {}
    names = ["dlcourse", *(info.name for info in pkgutil.walk_packages(dlcourse.__path__, "dlcourse."))]
    for module_name in names:
        module = importlib.import_module(module_name)
        for name, value in vars(module).items():
            defined_here = getattr(value, "__module__", None) == module_name
            if not name.startswith("_") and defined_here and (inspect.isroutine(value) or inspect.isclass(value)):
                found[f"{module_name}.{name}"] = value
    return found


def positional_counts(signature: inspect.Signature) -> set[int]:
    """How many positional arguments a call may pass: the required ones, and all of them."""
    positional = [p for p in signature.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return {sum(p.default is p.empty for p in positional), len(positional)}


def can_stand_in(candidate: object, counts: set[int]) -> bool:
    try:
        signature = inspect.signature(candidate)
    except (TypeError, ValueError):
        return False
    for count in counts:
        try:
            signature.bind(*range(count))
        except TypeError:
            return False
    return True


def graded_definitions(source: str) -> Iterator[ast.FunctionDef | ast.ClassDef]:
    """The functions and classes an answer cell defines at its top level."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_"):
            yield node


def with_import(source: str, node: ast.FunctionDef | ast.ClassDef, qualified: str) -> str:
    """``source`` with the definition ``node`` replaced by ``from MODULE import NAME as node.name``."""
    lines = source.splitlines()
    first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
    module, name = qualified.rsplit(".", 1)
    return "\n".join([*lines[: first - 1], f"from {module} import {name} as {node.name}", *lines[node.end_lineno :]])


def substitution_mutants(lab: str, cells: list, base: dict, candidates: dict[str, object]) -> dict[str, Mutant]:
    """One mutant per (answer definition, candidate that can take its call), by ``"ANSWER <- CANDIDATE"``."""
    namespace = dict(base)
    mutants = {}
    for cell in cells:
        if cell.kind != "answer":
            continue
        with contextlib.suppress(Exception), contextlib.redirect_stdout(io.StringIO()):
            exec(compile(cell.source, f"<answer {cell.grade_id}>", "exec"), namespace)
        for node in graded_definitions(cell.source):
            counts = positional_counts(inspect.signature(namespace[node.name]))
            for qualified, candidate in candidates.items():
                if isinstance(node, ast.ClassDef) and not inspect.isclass(candidate):
                    continue
                if can_stand_in(candidate, counts):
                    source = with_import(cell.source, node, qualified)
                    label = f"{node.name} <- {qualified}"
                    mutants[label] = Mutant(f"{lab}: {label}", cell.grade_id, node.lineno, source)
    return mutants


def warm_up() -> None:
    """Import what many candidates reach for once, before forking, so that each mutant does not pay for it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import sklearn.datasets  # noqa: F401
    import torch

    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1).step()


def run_every_lab(jobs: int = 2) -> dict:
    """The candidates, and for every lab the outcome of each substitution: ``{"labs": {lab: {"outcomes": {
    "ANSWER <- CANDIDATE": {outcome, test, message}}, "seconds": ...}}}``."""
    import torch

    os.environ["DLCOURSE_QUICK"] = "1"
    torch.set_num_threads(1)
    warm_up()
    candidates = package_callables()
    report: dict = {"candidates": sorted(candidates), "labs": {}}
    for lab in all_labs():
        started = time.perf_counter()
        cells = lab_cells(lab)
        base = base_namespace(cells)
        mutants = substitution_mutants(lab, cells, base, candidates)
        outcomes = {o.id: o for o in run_all(base, cells, list(mutants.values()), jobs, TIMEOUT)}
        report["labs"][lab] = {
            "seconds": time.perf_counter() - started,
            "outcomes": {
                label: {key: getattr(outcomes[mutant.id], key) for key in ("outcome", "test", "message")}
                for label, mutant in mutants.items()
            },
        }
    return report


@pytest.fixture(scope="module")
def report() -> dict:
    command = [sys.executable, "-m", "tests.test_dlcourse_gives_no_answers"]
    env = {**os.environ, "DLCOURSE_QUICK": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def answer_of(label: str) -> str:
    return label.split(" <- ")[0]


def test_no_callable_of_dlcourse_passes_for_a_lab_answer(report):
    labs = report["labs"]
    assert sorted(labs) == all_labs()
    lines, survivors = [], []
    for lab, outcome in labs.items():
        counts: dict[str, int] = {}
        for label, result in outcome["outcomes"].items():
            counts[answer_of(label)] = counts.get(answer_of(label), 0) + 1
            if result["outcome"] != "killed":  # a timeout proves nothing: a stand-in that passes may just be slow
                survivors.append(f"{lab}: {label} ({result['outcome']})")
        fewest = min(counts, key=counts.get)
        lines.append(f"{lab}: {len(outcome['outcomes'])} mutants for {len(counts)} answers (fewest: {fewest}, "
                     f"{counts[fewest]}), {outcome['seconds']:.0f} s")  # fmt: skip
    total = sum(len(outcome["outcomes"]) for outcome in labs.values())
    print(f"{len(report['candidates'])} public callables in dlcourse, {total} substitution mutants")
    print("\n".join(lines))
    assert total >= MIN_MUTANTS, f"only {total} substitution mutants: the walk of dlcourse found too little"
    assert not survivors, "dlcourse may give these lab answers (the lab's tests did not fail its callable):\n" + (
        "\n".join(survivors)
    )


def test_every_answer_of_every_lab_had_a_stand_in(report):
    for lab, outcome in report["labs"].items():
        defined = {
            node.name for cell in lab_cells(lab) if cell.kind == "answer" for node in graded_definitions(cell.source)
        }
        assert {answer_of(label) for label in outcome["outcomes"]} == defined, f"{lab}: an answer without a candidate"


# ---------------------------------------------------------------- nothing only for the hidden tests


def names_in_code(source: str) -> set[str]:
    """Every name a piece of code mentions (variables, attributes, imported names); words if it does not parse."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set(re.findall(r"\b[A-Za-z_]\w*\b", source))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.alias):
            names.add(node.name.rsplit(".", 1)[-1])
    return names


def names_used_in_package() -> set[str]:
    """Names the package's own code reads (an import that only re-exports a name does not count)."""
    names = set()
    for path in DLCOURSE_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Name) and node.id != "__all__":
                names.add(node.id)
            elif isinstance(node, ast.Attribute):
                names.add(node.attr)
    return names


def names_used_in_notebooks(paths: list[Path]) -> set[str]:
    names = set()
    for path in paths:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                names |= names_in_code(cell.source)
    return names


def names_defined_in_checks() -> dict[str, set[str]]:
    """Public names each module of ``dlcourse.checks`` defines at its top level (functions, classes, constants)."""
    defined = {}
    for path in sorted((DLCOURSE_DIR / "checks").glob("*.py")):
        names = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names |= {t.id for target in targets for t in ast.walk(target) if isinstance(t, ast.Name)}
        defined[path.stem] = {name for name in names if not name.startswith("_")}
    return defined


def test_everything_in_dlcourse_checks_serves_visible_code():
    released = sorted(LABS_DIR.glob("*/*.ipynb"))
    chapters = sorted(BOOK_DIR.glob("*.ipynb"))
    assert released and chapters
    used = names_used_in_package() | names_used_in_notebooks(released + chapters)
    defined = names_defined_in_checks()
    assert sum(len(names) for names in defined.values()) > 50
    unused = sorted(f"dlcourse.checks.{module}.{name}" for module, names in defined.items() for name in names - used)
    message = "used by no released lab, chapter or dlcourse code (hidden tests only? move them to autograder/battery)"
    assert not unused, message + ":\n" + "\n".join(unused)


if __name__ == "__main__":
    print(json.dumps(run_every_lab()))
