"""Grade one submission in a process of its own: ``python -m autograder.worker REQUEST.json``.

The parent (:mod:`autograder.grade`) prepares a template course once (the lab
generated into a fresh gradebook). Each worker copies that template into its own
folder, restores the submission's structure (:mod:`autograder.restore`), autogrades
it with nbgrader under :class:`autograder.execute.GuardedExecute` (deadline, dead
kernels, output floods, tampering guard), removes leaked hidden test code from the
outputs, writes the feedback page, and reports the per-cell scores, every problem and
where its time went (seconds per step and per code cell, :class:`Stopwatch`) as JSON.
A worker the grader starts ahead of its turn gets everything ready up to the student's
first cell (the notebook restored, the kernel started and guarded) and then waits for its
turn (:func:`serve_request`); the wait counts as no step and not in its seconds. No
two processes ever write the same SQLite file; the parent merges the reports into one
gradebook at the end.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
from nbgrader.converters import Autograde
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import AssignLatePenalties, CheckCellMetadata, IgnorePattern, LimitOutput, SaveAutoGrades
from traitlets.config import Config

import autograder
from autograder.course import load_config, put_scripts_on_path
from autograder.execute import GuardedExecute, is_test_cell, run_cells_after
from autograder.experiments import experiment_sources
from autograder.paths import BATTERY_DIR
from autograder.remote import HIDDEN_TESTS_INSIDE
from autograder.restore import load_submission, restore_submission
from autograder.sandbox import Sandbox, SandboxUnavailable, check_available, kernel_environment, package_folder
from autograder.tampering import hidden_test_lines, remove_hidden_test_leaks, suspicious_code

STUDENT_RELEASE = "student_release.ipynb"  # in the template course: the lab as students got it
PROCESS_ALLOWANCE = 512  # processes and threads a notebook may add to the user's
TIMINGS = "timings.json"  # GuardedExecute's seconds per step and per cell, next to the worker's course

# The worker's steps (the kernel's and the cells' come from autograder.execute); report.STEPS describes them.
WORKER_SETUP = "worker setup"
RESTORE = "restore"
SANDBOX_CHECK = "sandbox check"
GRADEBOOK = "gradebook"
NBGRADER_OTHER = "nbgrader other"
LEAK_REMOVAL = "leak removal"
FEEDBACK = "feedback"
UNMEASURED = "unmeasured"


class Stopwatch:
    """Seconds per step of one notebook's grading, each step's spans added up, and when each step first began."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.first_started: dict[str, float] = {}  # time.perf_counter() values
        self.counted = 0.0  # the sum of self.seconds, and of the waits
        self.waited = 0.0  # seconds spent waiting for the notebook's turn: no step's, no work

    def add(self, step: str, seconds: float) -> None:
        self.seconds[step] = self.seconds.get(step, 0.0) + seconds
        self.counted += seconds

    def wait(self, seconds: float) -> None:
        """Seconds that went by waiting for the notebook's turn: counted, but in no step."""
        self.waited += seconds
        self.counted += seconds

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        self.first_started.setdefault(name, started)
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    @contextlib.contextmanager
    def rest(self, name: str) -> Iterator[None]:
        """The block's time that no step counted while it ran goes to ``name``."""
        started, counted = time.perf_counter(), self.counted
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started - (self.counted - counted))

    def completed(self, total: float) -> dict[str, float]:
        """The steps, with what none of them (nor a wait) counted of ``total`` seconds as ``UNMEASURED``."""
        return {**self.seconds, UNMEASURED: total - self.counted}


def timed(preprocessor: type, step: str, stopwatch: Stopwatch) -> type:
    """``preprocessor`` (same name, same work) whose runs count in ``step`` of ``stopwatch``."""

    def preprocess(self, nb, resources):
        with stopwatch.step(step):
            return preprocessor.preprocess(self, nb, resources)

    return type(preprocessor.__name__, (preprocessor,), {"preprocess": preprocess, "__module__": __name__})


@dataclass
class Request:
    lab: str
    student_id: str
    notebook: str  # path of the submitted notebook
    template: str  # course folder with the generated lab and its gradebook
    feedback: str  # where the feedback page goes
    result: str  # where the Result JSON goes
    memory_limit_mb: int | None = None
    seconds: float = 900.0  # for the whole notebook
    cell_seconds: int = 300  # for any one cell
    private: list[str] = field(default_factory=list)  # folders the student's code may not read
    environment: dict[str, str] = field(default_factory=dict)  # variables for the worker and its kernel
    sandbox: bool = True  # the kernel runs in autograder.sandbox (False: --no-sandbox)
    run_experiments: bool = False  # run the lab's experiment cells too (--run-experiments)


@dataclass
class Result:
    student_id: str
    scores: dict[str, float] = field(default_factory=dict)  # grade_id -> score
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0  # the worker's wall time, less its wait for its turn
    waited: float = 0.0  # for its turn, with its notebook ready and its kernel started
    steps: dict[str, float] = field(default_factory=dict)  # step -> seconds, adding up to ``seconds``
    cells: list[list] = field(default_factory=list)  # [label, step, seconds] per code cell, in notebook order

    @property
    def problem(self) -> str | None:
        """All problems as one line of ``problems.csv``, or None."""
        return "; ".join(self.problems) or None


def last_error_line(result: dict) -> str:
    text = (result.get("error") or result.get("log") or "unknown error").strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "unknown error"


def limit_memory(megabytes: int | None) -> None:
    """Cap this process's data memory, a limit the kernel it starts inherits.

    RLIMIT_DATA counts the heap and private writable mappings, where tensors and
    arrays live, but not address space merely reserved (as CUDA does by the
    gigabyte), which an address-space limit would refuse.
    """
    if megabytes:
        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def limit_processes(allowance: int = PROCESS_ALLOWANCE) -> Path | None:
    """Cap the processes a kernel may start (a fork bomb stops at the cap), a limit the kernel inherits.

    RLIMIT_NPROC counts every process and thread of this user, so the cap is today's count plus an
    allowance. Root is exempt from it: a grader running as root puts this worker in a pids cgroup of
    its own instead, capped at its threads now plus the allowance (returned, to be let go by
    :func:`release_process_group`). The kernel's PID namespace ends them all with the notebook.
    """
    if os.getuid() != 0:
        limit = threads_of_this_user() + allowance
        resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
        return None
    group = process_group_of(os.getpid())
    try:
        group.mkdir()
        (group / "pids.max").write_text(str(len(os.listdir("/proc/self/task")) + allowance))
        (group / "cgroup.procs").write_text(str(os.getpid()))
    except OSError:  # no writable pids cgroup here: the PID namespace and the memory limit still hold
        with contextlib.suppress(OSError):
            group.rmdir()
        return None
    return group


PIDS_HIERARCHY = Path("/sys/fs/cgroup/pids")  # cgroup v1's pids controller, where a root grader may cap


def process_group_of(pid: int) -> Path:
    return PIDS_HIERARCHY / f"dlcourse-{pid}"


def release_process_group(group: Path | None) -> None:
    """Leave the worker's pids cgroup (when this process is in it) and remove it, if it exists and is empty."""
    if group is None or not group.exists():
        return
    with contextlib.suppress(OSError):
        if str(os.getpid()) in (group / "cgroup.procs").read_text().split():
            (group.parent / "cgroup.procs").write_text(str(os.getpid()))
        group.rmdir()


def threads_of_this_user() -> int:
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == os.getuid():
                count += len(os.listdir(entry / "task"))
        except OSError:
            continue
    return count


def grading_config(request: Request, course_root: Path, home: Path, stopwatch: Stopwatch | None = None) -> Config:
    """The course configuration with GuardedExecute in place of nbgrader's Execute.

    Every preprocessor does what nbgrader's would; those that write the gradebook count their time
    in ``stopwatch``'s GRADEBOOK step, the sanitizing ones in NBGRADER_OTHER (whose first start
    ends nbgrader's gradebook setup, see :func:`nbgrader_autograde`).
    """
    stopwatch = stopwatch or Stopwatch()
    config = load_config(course_root)
    sanitizers = Autograde.class_traits()["sanitize_preprocessors"].default()
    config.Autograde.sanitize_preprocessors = [timed(pp, NBGRADER_OTHER, stopwatch) for pp in sanitizers]
    config.Autograde.autograde_preprocessors = [
        GuardedExecute,
        IgnorePattern,
        ClearMetadataPreprocessor,
        LimitOutput,
        timed(SaveAutoGrades, GRADEBOOK, stopwatch),
        timed(AssignLatePenalties, GRADEBOOK, stopwatch),
        CheckCellMetadata,
    ]
    lab, student = request.lab, request.student_id
    config.Execute.timeout = request.cell_seconds
    config.GuardedExecute.deadline = time.time() + request.seconds
    config.GuardedExecute.report = str(course_root.parent / "guard.json")
    config.GuardedExecute.timings = str(course_root.parent / TIMINGS)
    working = [course_root / folder / student / lab for folder in ("submitted", "autograded")]
    exchange = home.parent / "kernel"  # shared with the kernel (bound into its sandbox)
    exchange.mkdir(exist_ok=True)
    writable = [*working, home, exchange, Path("/dev/null"), Path("/dev/shm")]
    config.GuardedExecute.writable = [str(path) for path in writable]
    config.GuardedExecute.unreadable = [str(course_root), *request.private]
    outside = lab not in HIDDEN_TESTS_INSIDE
    config.GuardedExecute.hidden_outside = outside
    config.GuardedExecute.exchange = str(exchange)
    config.GuardedExecute.readable = [] if outside else hidden_test_code()
    if not request.run_experiments:
        source = nbformat.read(course_root / "source" / lab / f"{lab}.ipynb", as_version=4)
        config.GuardedExecute.experiments = experiment_sources(source)
    if request.sandbox:
        box_kernel(config, working[1], home, request.environment, battery=not outside)
    return config


def box_kernel(config: Config, notebook_folder: Path, home: Path, environment: dict[str, str], battery: bool) -> None:
    """Start the kernel in a sandbox that sees only its notebook's folder, its home and the code it needs
    (``battery``: the hidden tests' shared code, for labs whose hidden tests still run in the kernel)."""
    sockets = home.parent / "kernel"
    sockets.mkdir(exist_ok=True)
    notebook_folder.mkdir(parents=True, exist_ok=True)
    readable = [package_folder("dlcourse"), *([Path(autograder.__file__), BATTERY_DIR] if battery else [])]
    box = Sandbox(
        writable=[notebook_folder, home, sockets],
        readable=[path for path in readable if path.exists()],
        environment=kernel_environment(home, environment),
    )
    manager = config.SandboxedKernelManager
    manager.sandbox = box.prefix()
    manager.transport = "ipc"  # the box has no network: ZeroMQ over Unix sockets in a shared folder
    manager.ip = str(sockets / "kernel")
    manager.connection_file = str(sockets / "connection.json")


def hidden_test_code() -> list[str]:
    """What the hidden tests import inside the kernel: the battery and its parent package's __init__."""
    package = Path(autograder.__file__)
    return [str(package), importlib.util.cache_from_source(str(package)), str(BATTERY_DIR)]


def private_home(folder: Path) -> Path:
    """HOME, TMPDIR and the caches libraries write to, for the kernel, inside the worker's folder.

    Set explicitly, since a parent may pass its own: torch records its compile cache in
    TORCHINDUCTOR_CACHE_DIR (under /tmp) once any process of the run has asked for it.
    """
    home = folder / "home"
    (home / "tmp").mkdir(parents=True)
    os.environ.update(
        HOME=str(home),
        TMPDIR=str(home / "tmp"),
        MPLCONFIGDIR=str(home / ".config" / "matplotlib"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_CONFIG_HOME=str(home / ".config"),
        TORCHINDUCTOR_CACHE_DIR=str(home / ".cache" / "torchinductor"),
        TRITON_CACHE_DIR=str(home / ".cache" / "triton"),
    )
    return home


def prepare(request: Request, course_root: Path) -> tuple[Path | None, list[str]]:
    """Read and restore the submission into ``submitted/``; (its path or None, notes)."""
    nb, notes = load_submission(Path(request.notebook))
    if nb is None:
        return None, notes
    lab = request.lab
    release = nbformat.read(course_root / STUDENT_RELEASE, as_version=4)
    notes += restore_submission(nb, release)
    notes += suspicious_code(nb)
    target = course_root / "submitted" / request.student_id / lab / f"{lab}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return target, notes


def remove_leaks(course_root: Path, lab: str, student: str) -> list[str]:
    """Take hidden test code out of the graded notebook's outputs before the feedback is made."""
    graded = course_root / "autograded" / student / lab / f"{lab}.ipynb"
    source = nbformat.read(course_root / "source" / lab / f"{lab}.ipynb", as_version=4)
    release = nbformat.read(course_root / STUDENT_RELEASE, as_version=4)
    nb = nbformat.read(graded, as_version=4)
    own = {line.strip() for cell in nb.cells if not is_test_cell(cell) for line in cell.source.splitlines()}
    notes = remove_hidden_test_leaks(nb, hidden_test_lines(source, release) - own)  # a traceback of own code is fine
    if notes:
        nbformat.write(nb, graded)
    return notes


def nbgrader_autograde(
    api: NbGraderAPI, lab: str, student: str, stopwatch: Stopwatch, timings: Path
) -> tuple[dict, list]:
    """nbgrader's autograde: (its outcome, GuardedExecute's [label, step, seconds] per code cell).

    Its time is split into GuardedExecute's steps (read from ``timings``), GRADEBOOK (the setup
    until the first sanitizing preprocessor starts, which is mostly ``init_assignment`` writing the
    student's submission and grade rows, and the preprocessors that save scores) and NBGRADER_OTHER
    (sanitizing, reading and writing the notebook, the output filters).
    """
    with stopwatch.rest(NBGRADER_OTHER):
        started = time.perf_counter()
        outcome = api.autograde(lab, student, force=True, create=True)
        setup_ended = stopwatch.first_started.get(NBGRADER_OTHER, time.perf_counter())
        stopwatch.add(GRADEBOOK, setup_ended - started)
        kernel = json.loads(timings.read_text()) if timings.exists() else {"steps": {}, "cells": []}
        for step, seconds in kernel["steps"].items():
            stopwatch.add(step, seconds)
        stopwatch.wait(kernel.get("waited", 0.0))
    return outcome, kernel["cells"]


def autograde(request: Request, course_root: Path, home: Path, stopwatch: Stopwatch | None = None) -> Result:
    stopwatch = stopwatch or Stopwatch()
    lab, student = request.lab, request.student_id
    result = Result(student)
    if request.sandbox:
        try:
            with stopwatch.step(SANDBOX_CHECK):
                check_available()  # on a Dask worker, the parent could not check this machine
        except SandboxUnavailable as error:
            result.problems.append(f"not graded: {error}")
            return result
    with stopwatch.step(RESTORE):
        target, result.problems = prepare(request, course_root)
    if target is None:
        return result
    with stopwatch.step(WORKER_SETUP):
        config = grading_config(request, course_root, home, stopwatch)
        api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
        api.log.setLevel(logging.ERROR)
    with stopwatch.step(GRADEBOOK), Gradebook(api.coursedir.db_url) as gradebook:
        gradebook.update_or_create_student(student)
    outcome, result.cells = nbgrader_autograde(api, lab, student, stopwatch, course_root.parent / TIMINGS)
    guard_report = course_root.parent / "guard.json"
    if guard_report.exists():
        result.problems += json.loads(guard_report.read_text())
    if not outcome["success"]:
        result.problems.append(f"autograding failed: {last_error_line(outcome)}")
        return result
    with stopwatch.step(GRADEBOOK), Gradebook(api.coursedir.db_url) as gradebook:
        notebook = gradebook.find_submission_notebook(lab, lab, student)
        result.scores = {grade.name: float(grade.score) for grade in notebook.grades}
    with stopwatch.step(LEAK_REMOVAL):
        result.problems += remove_leaks(course_root, lab, student)
    with stopwatch.step(FEEDBACK):
        outcome = api.generate_feedback(lab, student, force=True)
        html = course_root / "feedback" / student / lab / f"{lab}.html"
        if not outcome["success"] or not html.exists():
            result.problems.append(f"graded, but feedback failed: {last_error_line(outcome)}")
            return result
        Path(request.feedback).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(html, request.feedback)
    return result


def grade_in_folder_of_its_own(request: Request, stopwatch: Stopwatch) -> Result:
    """Copy the template course into a temporary folder, grade there, remove the folder."""
    with stopwatch.step(WORKER_SETUP):
        folder = tempfile.TemporaryDirectory(prefix=f"dlcourse-{request.student_id}-")
    try:
        course_root = Path(folder.name) / "course"
        with stopwatch.step(RESTORE):
            shutil.copytree(request.template, course_root)
        with stopwatch.step(WORKER_SETUP):
            home = private_home(Path(folder.name))
        return autograde(request, course_root, home, stopwatch)
    finally:
        with stopwatch.step(WORKER_SETUP):
            folder.cleanup()


def run(request: Request) -> Result:
    started = time.perf_counter()
    stopwatch = Stopwatch()
    with stopwatch.step(WORKER_SETUP):
        put_scripts_on_path()
        limit_memory(request.memory_limit_mb)
        group = limit_processes()
    try:
        result = grade_in_folder_of_its_own(request, stopwatch)
    finally:
        with stopwatch.step(WORKER_SETUP):
            release_process_group(group)
    elapsed = time.perf_counter() - started
    result.seconds, result.waited = elapsed - stopwatch.waited, stopwatch.waited
    result.steps = stopwatch.completed(elapsed)
    return result


def main(argv: list[str]) -> int:
    request = Request(**json.loads(Path(argv[0]).read_text()))
    os.environ.update(request.environment)
    result = run(request)
    Path(request.result).write_text(json.dumps(asdict(result)))
    return 0


def serve_request(request_path: str, log_path: str, turn=None) -> None:
    """Entry point of a worker forked by the parent's fork server: own session, output to a log.

    ``turn``, a multiprocessing Event, is set by the parent when the notebook may run: until then
    the worker restores it and starts and guards its kernel, then waits before the first cell."""
    os.setsid()
    if turn is not None:
        run_cells_after(turn.wait)
    with open(os.devnull, "wb") as devnull, open(log_path, "wb") as log:
        os.dup2(devnull.fileno(), 1)
        os.dup2(log.fileno(), 2)
    sys.exit(main([request_path]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
