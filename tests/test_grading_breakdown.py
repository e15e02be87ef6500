"""Where grading time goes: the worker's stopwatch, one real notebook's step times, a real batch's breakdown.

The step times of a graded notebook must account for its wall time: what no step counted (``unmeasured``)
stays within 2 % of the worker's wall time plus 0.1 s, and with the worker's start and exit the steps add up
to the seconds the parent waited for it within 0.25 s. A worker started ahead of its turn gets its kernel
ready, waits, and is graded as if it had started with its turn: its limit starts then, and its steps, less
what it did ahead, add up to the time it held the slot.
"""

import re
import threading
import time

import nbformat
import pytest
from nbgrader.preprocessors import ClearOutput

from autograder import grade
from autograder.intake import collect_submissions
from autograder.paths import source_notebook
from autograder.report import STEPS, read_timings
from autograder.worker import UNMEASURED, Stopwatch, timed
from tests.grading import GRADING_JOBS, read_csv
from tests.submissions import reference_answers, student_notebook

LAB = "lab00_setup"
WORKER_STEPS_THAT_ALWAYS_RUN = (
    "worker setup",
    "restore",
    "kernel start",
    "guard install",
    "imports",
    "answer cells",
    "test cells",
    "guard checks",
    "kernel stop",
    "gradebook",
    "nbgrader other",
    "feedback",
)
CELL_STEPS = ("imports", "answer cells", "test cells", "experiments skipped", "experiments run", "other cells")


def test_rest_gets_only_what_no_step_counted(monkeypatch):
    clock = iter([0.0, 1.0, 3.0, 10.0])  # rest starts, the step starts, the step ends, rest ends
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
    stopwatch = Stopwatch()
    with stopwatch.rest("nbgrader other"):
        with stopwatch.step("gradebook"):
            pass
    assert stopwatch.seconds == {"gradebook": 2.0, "nbgrader other": 8.0}
    assert stopwatch.first_started == {"gradebook": 1.0}
    assert stopwatch.completed(12.5) == {"gradebook": 2.0, "nbgrader other": 8.0, UNMEASURED: 2.5}


def test_a_timed_preprocessor_does_the_same_work_and_counts_its_time():
    stopwatch = Stopwatch()
    preprocessor = timed(ClearOutput, "nbgrader other", stopwatch)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1", outputs=[nbformat.v4.new_output("stream")])])
    cleared, _ = preprocessor()(nb, {})
    assert preprocessor.__name__ == "ClearOutput" and issubclass(preprocessor, ClearOutput)
    assert cleared.cells[0].outputs == []
    assert stopwatch.seconds["nbgrader other"] > 0


def reference_request(work, limits: grade.Limits) -> grade.Request:
    """A worker's request for lab00_setup's reference, prepared as ``grade`` prepares it."""
    submitted, out = work / "submitted", work / "out"
    submitted.mkdir()
    nbformat.write(student_notebook(LAB, reference_answers(LAB)), submitted / "reference.ipynb")
    submissions, _ = collect_submissions(submitted, work)
    grade.open_course(work / "template", LAB)
    grade.write_student_release(work / "template", LAB)
    (work / "results").mkdir()
    private = grade.private_folders(submitted, work, out)
    (request,), _ = grade.requests_for(LAB, submissions, work, out, limits, private)
    return request


@pytest.fixture(scope="module")
def graded_reference(tmp_path_factory):
    """The reference of lab00_setup graded by one worker as ``grade`` runs it: (Result, seconds waited for it)."""
    request = reference_request(tmp_path_factory.mktemp("breakdown"), grade.Limits())
    started = time.perf_counter()
    result = grade.run_worker(request, grade.Limits())
    return result, time.perf_counter() - started


def test_step_times_add_up_to_the_notebooks_wall_time(graded_reference):
    result, waited = graded_reference
    assert sum(result.scores.values()) == 8  # graded as ever: full marks
    assert -0.01 <= result.steps[UNMEASURED] <= 0.02 * result.seconds + 0.1, result.steps
    in_worker = sum(seconds for step, seconds in result.steps.items() if step != grade.WORKER_PROCESS)
    assert in_worker == pytest.approx(result.seconds, abs=1e-6)
    assert sum(result.steps.values()) == pytest.approx(waited, abs=0.25)


def test_every_step_is_described_and_the_usual_ones_took_time(graded_reference):
    result, _ = graded_reference
    assert set(result.steps) <= set(STEPS)
    assert all(result.steps[step] > 0 for step in (*WORKER_STEPS_THAT_ALWAYS_RUN, grade.WORKER_PROCESS))


def test_each_code_cell_is_timed_under_its_kind(graded_reference):
    result, _ = graded_reference
    kinds = {label: step for label, step, _ in result.cells}
    source = nbformat.read(source_notebook(LAB), as_version=4)
    for cell in source.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") or meta.get("grade"):
            assert kinds[meta["grade_id"]] == ("answer cells" if meta.get("solution") else "test cells")
    setup = [label.split(": ")[1] for label, step in kinds.items() if step == "imports"]
    assert setup == ["# Setup", "import torch"]  # the Colab setup cell, then the lab's imports
    assert list(kinds.values()).count("experiments skipped") == 1
    for step in CELL_STEPS:  # the cells' seconds are their steps' (markdown cells add next to nothing)
        cells = sum(seconds for _, kind, seconds in result.cells if kind == step)
        assert cells == pytest.approx(result.steps.get(step, 0.0), abs=0.01), step


HELD = 12.0  # seconds the only slot stays taken after the worker starts
SHORT = grade.Limits(seconds=10)  # a notebook limit shorter than that wait


@pytest.fixture(scope="module")
def graded_after_its_turn(tmp_path_factory, graded_reference):
    """The reference graded by a worker started ahead of its turn, whose slot frees HELD seconds later:
    (Result, seconds from the slot's release to the result). After ``graded_reference``, whose worker
    started the fork server: this worker is ready within a few seconds even on a busy machine."""
    request = reference_request(tmp_path_factory.mktemp("turn"), SHORT)
    slots = threading.Semaphore(1)
    slots.acquire()
    released = []
    timer = threading.Timer(HELD, lambda: (released.append(time.perf_counter()), slots.release()))
    timer.start()
    result = grade.run_worker(request, SHORT, slots)
    return result, time.perf_counter() - released[0]


def test_a_worker_ahead_of_its_turn_gets_ready_then_waits_and_its_limit_starts_with_its_turn(graded_after_its_turn):
    result, after_turn = graded_after_its_turn
    assert sum(result.scores.values()) == 8, result.problems  # a deadline counted from the start had passed
    assert 1.0 < result.waited < HELD
    ready = -result.steps[grade.AHEAD]  # fork, restore, kernel start and guard install, before the turn
    assert ready == pytest.approx(HELD - result.waited, abs=0.5)
    assert result.steps["kernel start"] + result.steps["guard install"] < ready
    parent_steps = (grade.WORKER_PROCESS, grade.AHEAD)
    in_worker = sum(seconds for step, seconds in result.steps.items() if step not in parent_steps)
    assert in_worker == pytest.approx(result.seconds, abs=1e-6)
    assert sum(result.steps.values()) == pytest.approx(after_turn, abs=0.25)  # the slot's time, as without a turn


def test_a_graded_batch_breaks_its_time_down(lab00_grading):
    breakdown = read_timings(lab00_grading.out / "timings.json")
    unread = 2  # broken_json and "has space" never reach a worker
    assert breakdown.notebooks == len(read_csv(lab00_grading.out / "grades.csv")) - unread
    assert {"intake", "course template", "worker process", "merge", "kernel start", "test cells"} <= set(
        breakdown.steps
    )
    assert set(breakdown.steps) <= set(STEPS)
    # the notebooks' busy time covers the batch's wall time, and at most the jobs' slots fill it
    elapsed = float(re.search(r"graded \d+ submissions of lab00_setup in ([\d.]+) s", lab00_grading.stdout)[1])
    busy = breakdown.notebooks * breakdown.total
    assert elapsed - 1.0 <= busy <= int(GRADING_JOBS) * elapsed + 1.0
    page = (lab00_grading.out / "report.html").read_text()
    assert "<h2>Where the time went</h2>" in page
    assert 'id="steps"' in page and 'id="slowest-cells"' in page
