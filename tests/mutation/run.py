"""Grade every mutant of a lab's reference answers with the lab's own test cells, fast.

``python -m tests.mutation.run LAB [--cells ID ...] [--jobs 2] [--timeout 30] [--json FILE]``

One process per lab executes the solution notebook's set-up cells once; then each mutant runs in
a child forked from it (so no mutant sees another's side effects): the answer cells are executed
in order with the one mutant in place of its cell, followed by every test cell (visible and hidden
tests) after it, until one fails. A mutant that makes a test cell fail, or run past ``--timeout``,
is killed; one that passes them all survives. Experiment cells, which carry no points, are skipped.
Before the mutants, the reference itself must pass every test cell this way.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import select
import signal
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass

import nbformat
import torch

from autograder.paths import source_notebook
from tests.mutation.mutate import Mutant, mutants


@dataclass
class Cell:
    kind: str  # "setup", "answer", "test" or "experiment"
    grade_id: str | None
    source: str


@dataclass
class Outcome:
    id: str
    cell: str
    outcome: str  # "killed", "survived" or "timeout"
    test: str | None = None
    message: str | None = None
    seconds: float = 0.0


def lab_cells(lab: str) -> list[Cell]:
    cells, seen_answer = [], False
    for cell in nbformat.read(source_notebook(lab), as_version=4).cells:
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            seen_answer = True
            cells.append(Cell("answer", meta["grade_id"], cell.source))
        elif meta.get("grade"):
            cells.append(Cell("test", meta["grade_id"], cell.source))
        else:
            cells.append(Cell("experiment" if seen_answer else "setup", None, cell.source))
    return cells


def first_line(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".strip()
    return text.splitlines()[0][:300]


def run_answer_and_tests(base: dict, cells: list[Cell], mutant: Mutant | None) -> tuple[str | None, str | None]:
    """Execute the answers (one replaced by the mutant) and the tests after it; (failed test, message)."""
    namespace = dict(base)
    reached = mutant is None
    for cell in cells:
        if cell.kind == "answer":
            source = mutant.source if mutant and cell.grade_id == mutant.cell else cell.source
            reached = reached or cell.grade_id == mutant.cell
            with contextlib.suppress(Exception):  # a broken answer cell still lets the notebook go on
                exec(compile(source, f"<answer {cell.grade_id}>", "exec"), namespace)
        elif cell.kind == "test" and reached:
            try:
                exec(compile(cell.source, f"<test {cell.grade_id}>", "exec"), namespace)
            except BaseException as error:  # noqa: BLE001 - any failure of a test cell kills the mutant
                return cell.grade_id, first_line(error)
    return None, None


def child(base: dict, cells: list[Cell], mutant: Mutant, write_fd: int) -> None:
    resource.setrlimit(resource.RLIMIT_DATA, (4 << 30, 4 << 30))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            failed, message = run_answer_and_tests(base, cells, mutant)
        except BaseException as error:  # noqa: BLE001
            failed, message = "(runner)", first_line(error)
    os.write(write_fd, json.dumps({"test": failed, "message": message}).encode())
    os.close(write_fd)
    os._exit(0)


def run_all(base: dict, cells: list[Cell], todo: list[Mutant], jobs: int, timeout: float) -> list[Outcome]:
    """Fork one child per mutant, ``jobs`` at a time; collect what each reports."""
    results: list[Outcome] = []
    running: dict[int, tuple[Mutant, int, float, int]] = {}  # read fd -> (mutant, pid, start, ...)
    queue = list(todo)
    while queue or running:
        while queue and len(running) < jobs:
            mutant = queue.pop(0)
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read_fd)
                child(base, cells, mutant, write_fd)
            os.close(write_fd)
            running[read_fd] = (mutant, pid, time.monotonic())
        ready, _, _ = select.select(list(running), [], [], 0.2)
        now = time.monotonic()
        for fd in list(running):
            mutant, pid, started = running[fd]
            if fd in ready:
                data = b""
                while chunk := os.read(fd, 65536):
                    data += chunk
                os.close(fd)
                os.waitpid(pid, 0)
                del running[fd]
                report = json.loads(data or b'{"test": "(runner)", "message": "the child died"}')
                outcome = "survived" if report["test"] is None else "killed"
                results.append(
                    Outcome(mutant.id, mutant.cell, outcome, report["test"], report["message"], now - started)
                )
            elif now - started > timeout:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                os.close(fd)
                del running[fd]
                results.append(Outcome(mutant.id, mutant.cell, "timeout", None, f"over {timeout:.0f} s", now - started))
    order = {mutant.id: index for index, mutant in enumerate(todo)}
    return sorted(results, key=lambda result: order[result.id])


def base_namespace(cells: list[Cell]) -> dict:
    namespace = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()):
        for cell in cells:
            if cell.kind == "setup":
                exec(compile(cell.source, "<setup>", "exec"), namespace)
    return namespace


def mutate_lab(lab: str, only: list[str] | None = None, jobs: int = 2, timeout: float = 30.0) -> list[Outcome]:
    os.environ.setdefault("DLCOURSE_QUICK", "1")
    torch.set_num_threads(1)
    cells = lab_cells(lab)
    base = base_namespace(cells)
    with contextlib.redirect_stdout(io.StringIO()):
        failed, message = run_answer_and_tests(base, cells, None)
    if failed:
        raise RuntimeError(f"{lab}: the reference fails {failed} outside the notebook: {message}")
    todo = [m for cell in cells if cell.kind == "answer" for m in mutants(cell.grade_id, cell.source)]
    todo = [m for m in todo if not only or m.cell in only]
    return run_all(base, cells, todo, jobs, timeout)


def summary(results: list[Outcome]) -> str:
    lines = [f"{'answer cell':28} {'mutants':>7} {'killed':>7} {'survived':>8} {'kill rate':>9}"]
    cells = list(dict.fromkeys(result.cell for result in results))
    for cell in [*cells, None]:
        mine = [r for r in results if cell is None or r.cell == cell]
        counts = Counter(r.outcome for r in mine)
        killed = counts["killed"] + counts["timeout"]
        rate = f"{100 * killed / len(mine):.0f} %" if mine else "-"
        lines.append(f"{cell or 'all':28} {len(mine):>7} {killed:>7} {counts['survived']:>8} {rate:>9}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation.run", description=__doc__)
    parser.add_argument("lab")
    parser.add_argument("--cells", nargs="*", help="only mutate these answer cells (grade ids)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--json", help="write every mutant's outcome here")
    parser.add_argument("--survivors", action="store_true", help="list the surviving mutants")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = mutate_lab(args.lab, args.cells, args.jobs, args.timeout)
    print(summary(results))
    print(f"{len(results)} mutants in {time.perf_counter() - started:.0f} s")
    if args.survivors:
        for result in results:
            if result.outcome == "survived":
                print("  survived:", result.id)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump([asdict(result) for result in results], handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
