"""nbgrader's Execute step, made safe for hundreds of unknown notebooks.

:class:`GuardedExecute` replaces ``nbgrader.preprocessors.Execute`` in the worker. On top
of running each cell it

- keeps a deadline for the whole notebook: a cell may run only until it, and cells after
  it are marked "not run", so the tests that ran before still count;
- survives a dead kernel (out of memory, ``os._exit``): the cell that killed it and every
  later cell get an error output instead of the batch failing;
- cuts floods of printed output, keeping the start and the end;
- runs :mod:`autograder.kernel_guard` in the kernel before every code cell and after the
  last one;
- leaves unrun the lab's experiment cells that decide no score (:mod:`autograder.experiments`);
- once the kernel is up and guarded, and before the first cell's code, waits for the notebook's
  turn (:func:`run_cells_after`): the grader starts the next notebook's kernel while another
  notebook runs, and moves the deadline on by the time waited.

What it finds goes to the JSON file ``report`` as sentences for ``problems.csv``; where its time
went (kernel start and stop, the guard, each kind of cell, each code cell) to ``timings``.
"""

from __future__ import annotations

import json
import math
import queue
import time
from collections.abc import Callable
from pathlib import Path

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import Execute
from traitlets import Bool, Float, Integer, List, Unicode

import autograder.kernel_guard
from autograder.experiments import NOT_RUN, cells_to_skip, is_experiment
from autograder.remote.client import Kernel, OutOfTime, RemoteNamespace
from autograder.remote.hidden import failure, run_hidden, split_hidden
from autograder.sandbox import SandboxedKernelManager

GUARD_SOURCE = Path(autograder.kernel_guard.__file__).read_text()
INSTALL = """\
def _dlcourse_boot(source, writable, unreadable, readable):
    import sys, types
    module = types.ModuleType("_dlcourse_guard")
    exec(compile(source, "_dlcourse_guard", "exec"), module.__dict__)
    sys.modules["_dlcourse_guard"] = module
    module.install(writable, unreadable, readable)
_dlcourse_boot({source!r}, {writable!r}, {unreadable!r}, {readable!r})
del _dlcourse_boot
"""
CHECKPOINT = '__import__("sys").modules["_dlcourse_guard"].checkpoint({test})'

# Steps of the timings file: the kernel's life, the guard's checks, and the cells by kind.
KERNEL_START = "kernel start"  # the sandbox and the kernel started and answering
GUARD_INSTALL = "guard install"  # it imports the modules whose helpers it protects (torch, numpy, dlcourse.checks)
GUARD_CHECKS = "guard checks"
KERNEL_STOP = "kernel stop"
IMPORTS = "imports"  # the code cells before the first answer or test cell: the lab's setup
ANSWER_CELLS = "answer cells"
TEST_CELLS = "test cells"  # their hidden parts included, wherever they run
EXPERIMENTS_SKIPPED = "experiments skipped"
EXPERIMENTS_RUN = "experiments run"
OTHER_CELLS = "other cells"

_wait_for_turn: Callable[[], object] | None = None  # see run_cells_after


def run_cells_after(wait: Callable[[], object] | None) -> None:
    """Make every GuardedExecute of this process call ``wait()`` once its kernel is started and
    guarded, before the first cell's code; None: run at once. The worker sets it when the grader
    lets it start ahead of its turn."""
    global _wait_for_turn
    _wait_for_turn = wait


def error_output(name: str, message: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=name, evalue=message, traceback=[f"{name}: {message}"])


def is_test_cell(cell: NotebookNode) -> bool:
    return utils.is_grade(cell) and not utils.is_solution(cell)


def first_graded_index(nb: NotebookNode) -> int:
    """Index of the notebook's first answer or test cell (the number of cells when it has none)."""
    graded = (index for index, cell in enumerate(nb.cells) if utils.is_solution(cell) or utils.is_grade(cell))
    return next(graded, len(nb.cells))


def cell_label(cell: NotebookNode, index: int) -> str:
    """How a cell is named in the timings: its grade_id, else its position and first line."""
    grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
    if grade_id:
        return str(grade_id)
    first_line = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
    return f"cell {index}: {first_line[:40]}"


def cut_text(text: str, limit: int) -> str:
    """Keep the first and last ``limit // 2`` characters of ``text`` (all of a shorter one)."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n... {len(text) - 2 * half} characters cut by the grader ...\n{text[-half:]}"


class GuardedExecute(Execute):
    deadline = Float(0.0, help="time.time() after which no cell may run (0: no deadline)").tag(config=True)
    report = Unicode("", help="JSON file the findings are written to").tag(config=True)
    writable = List(Unicode(), help="folders student code may write to").tag(config=True)
    unreadable = List(Unicode(), help="folders student code may not read").tag(config=True)
    readable = List(Unicode(), help="exceptions inside them: the hidden tests' own code").tag(config=True)
    hidden_outside = Bool(False, help="run test cells' hidden parts in this process, not the kernel").tag(config=True)
    exchange = Unicode("", help="a folder the kernel shares with the grader, for the hidden tests' calls").tag(
        config=True
    )
    experiments = List(Unicode(), help="the lab's experiment cells, left unrun if nothing needs them").tag(config=True)
    max_output_chars = Integer(20_000, help="printed characters kept per cell").tag(config=True)
    max_notebook_output_bytes = Integer(4_000_000, help="output bytes kept per notebook, display data included").tag(
        config=True
    )
    timings = Unicode("", help="JSON file the seconds per step and per code cell are written to").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        # Every output is in once the last cell has run: kill the kernel (and its sandbox) rather
        # than ask it to shut down and wait, which cost 1.5-3.5 s per notebook.
        kwargs.setdefault("shutdown_kernel", "immediate")
        super().__init__(*args, **kwargs)

    def preprocess(self, nb, resources=None, km=None):
        self.findings: list[str] = []
        self.stopped: str | None = None
        self.guarded = False
        self.output_bytes = 0
        self.hidden_deadline = 0.0
        self.skipped = cells_to_skip(nb, list(self.experiments))
        self.step_seconds: dict[str, float] = {}
        self.cell_seconds: list[list] = []  # [label, step, seconds] per code cell
        self.first_graded = first_graded_index(nb)
        self.preprocess_started = time.perf_counter()
        self.lap_started: float | None = None  # when the last cell ended, once one ran
        self.aside_seconds = 0.0  # the guard's steps and the wait for the turn: not the cells' own time
        self.waited = 0.0  # for the notebook's turn (run_cells_after)
        self.remote = Kernel(
            self.call_kernel,
            Path(self.exchange) if self.exchange else None,
            start=self.start_in_kernel,
            time_left=self.hidden_time_left,
        )
        try:
            return super().preprocess(nb, resources, km)
        finally:
            if self.lap_started is None:  # the kernel never ran a cell
                self.add_seconds(KERNEL_START, time.perf_counter() - self.preprocess_started)
            else:
                self.add_seconds(KERNEL_STOP, time.perf_counter() - self.lap_started)
            if self.report:
                Path(self.report).write_text(json.dumps(self.findings))
            if self.timings:
                timings = {"steps": self.step_seconds, "cells": self.cell_seconds, "waited": self.waited}
                Path(self.timings).write_text(json.dumps(timings))

    def add_seconds(self, step: str, seconds: float) -> None:
        self.step_seconds[step] = self.step_seconds.get(step, 0.0) + seconds

    def cell_step(self, cell, index: int) -> str:
        """The step a cell's time counts in."""
        if index in self.skipped:
            return EXPERIMENTS_SKIPPED
        if is_test_cell(cell):
            return TEST_CELLS
        if utils.is_solution(cell):
            return ANSWER_CELLS
        if is_experiment(cell):
            return EXPERIMENTS_RUN
        return IMPORTS if index < self.first_graded else OTHER_CELLS

    def _get_timeout(self, cell):
        timeout = super()._get_timeout(cell)
        if self.deadline:
            remaining = max(1, math.ceil(self.deadline - time.time()))
            timeout = remaining if timeout is None else min(timeout, remaining)
        return timeout

    def find(self, message: str) -> None:
        if message not in self.findings:
            self.findings.append(message)

    async def _async_run_quietly(self, code: str, timeout: float = 120) -> tuple[str, str | None]:
        """Run ``code`` outside the notebook and its history; return (stdout, error or None)."""
        msg_id = self.kc.execute(code, store_history=False, allow_stdin=False)
        return await self._async_collect(msg_id, timeout)

    async def _async_collect(self, msg_id: str, timeout: float) -> tuple[str, str | None]:
        """Wait for the end of execution ``msg_id``; its (stdout, error or None). queue.Empty past ``timeout``."""
        stdout, error = [], None
        ends = time.monotonic() + timeout
        while True:
            msg = await self.kc.get_iopub_msg(timeout=max(0.1, ends - time.monotonic()))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content["name"] == "stdout":
                stdout.append(content["text"])
            elif kind == "error":
                error = f"{content['ename']}: {content['evalue']}"
            elif kind == "status" and content["execution_state"] == "idle":
                break
        while (await self.kc.get_shell_msg(timeout=max(0.1, ends - time.monotonic())))["parent_header"].get(
            "msg_id"
        ) != msg_id:
            pass
        return "".join(stdout), error

    collect = run_sync(_async_collect)

    run_quietly = run_sync(_async_run_quietly)

    def guard(self, code: str, step: str = GUARD_CHECKS) -> None:
        started = time.perf_counter()
        try:
            self.check_in_kernel(code)
        finally:
            seconds = time.perf_counter() - started
            self.add_seconds(step, seconds)
            self.aside_seconds += seconds

    def check_in_kernel(self, code: str) -> None:
        try:
            stdout, error = self.run_quietly(code)
        except queue.Empty:
            self.find("the kernel stopped answering the grader's checks")
            return
        if error:
            self.find(f"the grader's checks failed in the kernel ({error}); check by hand for tampering")
            return
        for line in stdout.splitlines():
            if line.startswith("["):
                for message in json.loads(line):
                    self.find(message)

    def install_guard(self) -> None:
        self.guarded = True
        self.guard(
            INSTALL.format(
                source=GUARD_SOURCE,
                writable=list(self.writable),
                unreadable=list(self.unreadable),
                readable=list(self.readable),
            ),
            GUARD_INSTALL,
        )

    def wait_for_turn(self) -> None:
        """Wait until the notebook may run (:func:`run_cells_after`); the deadline moves on by the wait."""
        if _wait_for_turn is None:
            return
        started = time.perf_counter()
        _wait_for_turn()
        self.waited = time.perf_counter() - started
        self.aside_seconds += self.waited
        if self.deadline:
            self.deadline += self.waited

    def preprocess_cell(self, cell, resources, index):
        started = time.perf_counter()
        if self.lap_started is None:  # nbclient runs the first cell once the kernel answers
            self.add_seconds(KERNEL_START, started - self.preprocess_started)
        aside_before = self.aside_seconds
        cell, resources = self.run_cell(cell, resources, index)
        if index == len(self.nb.cells) - 1 and self.guarded and not self.stopped:
            self.guard(CHECKPOINT.format(test=False))  # what the last cells did
        self.lap_started = time.perf_counter()
        self.record_cell(cell, index, self.lap_started - started - (self.aside_seconds - aside_before))
        return cell, resources

    def record_cell(self, cell, index: int, seconds: float) -> None:
        step = self.cell_step(cell, index)
        self.add_seconds(step, seconds)
        if cell.cell_type == "code" and cell.source.strip():
            self.cell_seconds.append([cell_label(cell, index), step, seconds])

    def run_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not cell.source.strip():
            return cell, resources
        if index in self.skipped:
            cell.outputs = [NotebookNode(output_type="stream", name="stdout", text=NOT_RUN + "\n")]
            return cell, resources
        if self.stopped is None and self.deadline and time.time() >= self.deadline:
            self.stopped = "not run: the notebook reached its time limit before this cell"
            self.find(f"reached the time limit per notebook at cell {index}; later cells were not run")
        if self.stopped:
            cell.outputs = [error_output("NotRun", self.stopped)]
            return cell, resources
        if not self.guarded:
            self.install_guard()
            self.wait_for_turn()
        self.guard(CHECKPOINT.format(test=is_test_cell(cell)))
        limit, started = self._get_timeout(cell), time.time()
        source, hidden = split_hidden(cell.source) if self.hidden_outside and is_test_cell(cell) else (cell.source, "")
        try:
            cell, resources = self.run_in_kernel(cell, source, resources, index)
            if hidden and not any(output.output_type == "error" for output in cell.outputs):
                self.run_hidden_part(cell, hidden, index, started + (limit or 10**9))
        except DeadKernelError:
            cell.outputs.append(error_output("DeadKernel", "the kernel died while running this cell"))
            self.stopped = "not run: the kernel died in an earlier cell"
            self.find(f"the kernel died in cell {index} (out of memory, or the process exited); later cells not run")
            return cell, resources
        except CellTimeoutError:  # the kernel runs but no longer sends output: its own machinery is broken
            cell.outputs.append(error_output("KernelBroken", "the kernel stopped responding in this cell"))
            self.stopped = "not run: the kernel stopped responding in an earlier cell"
            self.find(f"the kernel stopped responding in cell {index}; later cells not run")
            return cell, resources
        self.note_timeout(cell, index, time.time() - started, limit)
        if any(output.get("ename") == "MemoryError" for output in cell.outputs):
            self.find(f"ran out of memory in cell {index} (the limit per notebook)")
        if is_test_cell(cell):
            self.results_as_display(cell, index)
        self.limit_output(cell, index)
        self.limit_notebook_output(cell, index)
        return cell, resources

    def run_in_kernel(self, cell, source: str, resources, index: int):
        """Execute ``source`` as the cell's code (its hidden part taken out, say); the cell keeps its own."""
        original, cell.source = cell.source, source
        try:
            return super().preprocess_cell(cell, resources, index)
        finally:
            cell.source = original

    def run_hidden_part(self, cell, code: str, index: int, deadline: float) -> None:
        """Run a test cell's hidden code here, calling into the kernel; its failure becomes the cell's error."""
        self.hidden_deadline = deadline
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", index)
        try:
            error = run_hidden(code, RemoteNamespace(self.remote), f"hidden tests of {grade_id}")
        except OutOfTime:
            error = failure("TimeoutError", "the hidden tests' calls into this notebook ran past the time limit")
            self.find(f"cell {index} was stopped at the time limit while the hidden tests ran")
        if error is not None:
            cell.outputs.append(error)
            if error.ename == "KernelUnreadable":
                self.find(f"cell {index}: the kernel did not answer the hidden tests' calls (the notebook broke them)")

    def start_in_kernel(self, code: str):
        """Start ``code`` in the kernel without waiting; returns finish(interrupt), which waits for its end."""
        msg_id = self.kc.execute(code, store_history=False, allow_stdin=False)

        def finish(interrupt: bool) -> None:
            if interrupt:
                run_sync(self.km.interrupt_kernel)()
            try:
                self.collect(msg_id, 30)
            except queue.Empty:
                self.interrupt_and_settle()

        return finish

    def interrupt_and_settle(self) -> None:
        run_sync(self.km.interrupt_kernel)()
        try:
            self.run_quietly("pass", timeout=30)  # until the interrupted code has ended
        except queue.Empty:
            pass

    def hidden_time_left(self) -> float:
        return self.hidden_deadline - time.time()

    def call_kernel(self, code: str) -> str:
        """Run one line of the grader's calls in the kernel, within the hidden tests' time; its stdout."""
        remaining = self.hidden_deadline - time.time()
        if remaining <= 0:
            raise OutOfTime
        try:
            stdout, _ = self.run_quietly(code, timeout=remaining)
        except queue.Empty:
            self.interrupt_and_settle()
            raise OutOfTime from None
        return stdout

    def results_as_display(self, cell, index: int) -> None:
        """A test cell's score comes from its errors alone.

        nbgrader gives a test cell the score its first ``execute_result`` shows, even when an
        error follows, so a value sent to the display hook from student code could buy points.
        """
        for output in cell.outputs:
            if output.output_type == "execute_result":
                output.output_type = "display_data"
                output.pop("execution_count", None)
                self.find(f"test cell {index} showed a value; scored by its errors only")

    def limit_notebook_output(self, cell, index: int) -> None:
        """Keep the whole notebook's outputs under ``max_notebook_output_bytes``; errors always stay."""
        kept = []
        for output in cell.outputs:
            size = len(json.dumps(output))
            if output.output_type != "error" and self.output_bytes + size > self.max_notebook_output_bytes:
                self.find(f"cell {index}: outputs over {self.max_notebook_output_bytes:,} bytes per notebook removed")
                output = NotebookNode(
                    output_type="stream", name="stdout", text=f"[{size:,} bytes of output removed by the grader]\n"
                )
                size = len(json.dumps(output))
            elif output.output_type == "error" and size > self.max_output_chars:
                output.traceback = [cut_text("\n".join(output.traceback), self.max_output_chars)]
                output.evalue = cut_text(output.evalue, self.max_output_chars // 4)
                size = len(json.dumps(output))
            self.output_bytes += size
            kept.append(output)
        cell.outputs = kept

    def note_timeout(self, cell, index: int, seconds: float, limit: int | None) -> None:
        if limit is None or seconds < limit - 0.5 or not any(o.output_type == "error" for o in cell.outputs):
            return
        if self.timeout is None or limit < self.timeout:
            self.find(f"cell {index} was stopped at the time limit per notebook")
        else:
            self.find(f"cell {index} was stopped after {limit} s, the time limit per cell")

    def limit_output(self, cell, index: int) -> None:
        printed = sum(len(o.get("text", "")) for o in cell.outputs if o.output_type == "stream")
        if printed <= self.max_output_chars:
            return
        for output in cell.outputs:
            if output.output_type == "stream" and len(output.text) > self.max_output_chars // len(cell.outputs):
                output.text = cut_text(output.text, self.max_output_chars // len(cell.outputs))
        self.find(f"cell {index} printed {printed:,} characters; cut to {self.max_output_chars:,}")
