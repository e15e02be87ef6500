"""Broken and hostile submissions of lab00_setup, each with the row the grader must give it.

Every entry builds one file from the released lab and the reference answers and states
the student's expected total (lab00_setup has 8 points: standardize 2, pairwise 2,
one_hot 1, to_device 1, fit_line 2) and a phrase its line in problems.csv must contain
(None: no line). tests/test_grading_hostile.py grades them all in one batch.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass

import nbformat

from autograder.paths import source_notebook
from tests.submissions import nbgrader_meta, reference_answers, student_notebook

LAB = "lab00_setup"
LIMITS = ("--timeout", "40", "--cell-timeout", "25", "--memory-mb", "3000")
ESCAPE_FILE = "/tmp/dlcourse-hostile-escape.txt"
SECRET = ("DLCOURSE_HOSTILE_SECRET", "s3cr3t-of-the-grader")  # in the grader's environment during the batch


@dataclass(frozen=True)
class Hostile:
    name: str
    build: Callable[[], bytes]
    total: float
    problem: str | None


def notebook_bytes(nb) -> bytes:
    return nbformat.writes(nb).encode()


def reference_nb(**answers: str):
    return student_notebook(LAB, {**reference_answers(LAB), **answers})


def with_answers(**answers: str) -> Callable[[], bytes]:
    return lambda: notebook_bytes(reference_nb(**answers))


def edited(change: Callable) -> Callable[[], bytes]:
    """The reference notebook after ``change(nb)``."""

    def build() -> bytes:
        nb = reference_nb()
        change(nb)
        return notebook_bytes(nb)

    return build


def index_of(nb, grade_id: str) -> int:
    return next(i for i, cell in enumerate(nb.cells) if nbgrader_meta(cell).get("grade_id") == grade_id)


def strip_metadata(nb) -> None:
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)


def rename_ids(nb) -> None:
    for number, cell in enumerate(nb.cells):
        if "nbgrader" in cell.metadata:
            cell.metadata.nbgrader.grade_id = f"cell-{number:04x}"


def delete_cell(grade_id: str) -> Callable:
    return lambda nb: nb.cells.pop(index_of(nb, grade_id))


def duplicate_cell(grade_id: str) -> Callable:
    def change(nb) -> None:
        index = index_of(nb, grade_id)
        twin = copy.deepcopy(nb.cells[index])
        twin.id = "twin-cell"
        nb.cells.insert(index + 1, twin)

    return change


def swap_answer_and_test(nb) -> None:
    answer, test = index_of(nb, "standardize"), index_of(nb, "test_standardize")
    nb.cells[answer], nb.cells[test] = nb.cells[test], nb.cells[answer]


def wrong_one_hot_and_emptied_test(nb) -> None:
    nb.cells[index_of(nb, "one_hot")].source = "def one_hot(labels, num_classes):\n    return 0"
    nb.cells[index_of(nb, "test_one_hot")].source = "pass"


def other_kernel(nb) -> None:
    nb.metadata.kernelspec = {"name": "ir", "display_name": "R", "language": "R"}


def old_format() -> bytes:
    return nbformat.writes(nbformat.convert(reference_nb(), 3), version=3).encode()


ALWAYS_EQUAL = """
class AlwaysEqual:
    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


def one_hot(labels, num_classes):
    return AlwaysEqual()
"""

PATCH_HELPERS = """
import torch
import dlcourse.checks

torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
dlcourse.checks.check_close = lambda *args, **kwargs: 0.0
dlcourse.checks.check_true = lambda *args, **kwargs: None


def one_hot(labels, num_classes):
    return torch.zeros(len(labels), num_classes)
"""

PATCH_BUILTIN = """
import builtins

builtins.isinstance = lambda *args: True


def to_device(batch, device):
    return batch
"""

HISTORY_READER = """
def one_hot(labels, num_classes):
    print("history:", list(In), _ih[-1:] if _ih else "")
    return torch.nn.functional.one_hot(labels, num_classes).float()
"""

SOURCE_READER = """
import inspect


def one_hot(labels, num_classes):
    caller = inspect.stack()[1]
    print("caller source:", "".join(inspect.getsourcelines(caller.frame)[0]))
    return torch.nn.functional.one_hot(labels, num_classes).float()
"""

# Stands for hidden test code reaching an output by any route: the grader must take it out of the feedback.
FRAME_LEAK = """
import sys


def one_hot(labels, num_classes):
    names = sys._getframe(1).f_code.co_names
    print("test names:", names)
    print('    check_close("one_hot on 50 random labels", encoded, F.one_hot(labels, 10).float())')
    return torch.nn.functional.one_hot(labels, num_classes).float()
"""

ENV_DETECTOR = """
import os

GRADING = os.environ.get("NBGRADER_EXECUTION")


def one_hot(labels, num_classes):
    if GRADING:
        return None
    return torch.nn.functional.one_hot(labels, num_classes).float()
"""

WRITE_OUTSIDE = f"""
try:
    with open({ESCAPE_FILE!r}, "w") as handle:
        handle.write("escaped")
except OSError as error:
    print("refused:", error)


def one_hot(labels, num_classes):
    return torch.nn.functional.one_hot(labels, num_classes).float()
"""

READ_GRADEBOOK = """
import glob

for pattern in ("../../../gradebook.db", "../../../source/*/*.ipynb"):
    for path in glob.glob(pattern):
        try:
            print(open(path, "rb").read()[:100])
        except OSError as error:
            print("refused:", error)


def one_hot(labels, num_classes):
    return torch.nn.functional.one_hot(labels, num_classes).float()
"""

FLOOD = """
for i in range(200_000):
    print("epoch", i, "loss", 1.0 / (i + 1))
"""


def flood(nb) -> None:
    nb.cells[index_of(nb, "standardize")].source += "\n" + FLOOD


REFERENCE_ONE_HOT = """
def one_hot(labels, num_classes):
    return torch.nn.functional.one_hot(labels, num_classes).float()
"""


def attack(code: str) -> str:
    """An answer cell that runs ``code`` and then answers one_hot correctly."""
    return code + "\n" + REFERENCE_ONE_HOT


READ_SOLUTION = f"""
try:
    print(open({str(source_notebook(LAB))!r}).read()[:300])
except OSError as error:
    print("refused:", error)
"""

READ_NEIGHBOURS = """
import glob

for path in glob.glob("../../*/*/*.ipynb") + glob.glob("/tmp/**/*.ipynb", recursive=True)[:20]:
    print("found", path)
"""

SUBPROCESS_ESCAPE = f"""
import subprocess

print(subprocess.run(["sh", "-c", "cat {source_notebook(LAB)} | head -c 200; echo escaped > {ESCAPE_FILE}"],
                     capture_output=True, text=True))
"""

CTYPES_WRITE = f"""
import ctypes

libc = ctypes.CDLL(None)
descriptor = libc.open({ESCAPE_FILE.encode()!r}, 0o1101, 0o644)
libc.write(descriptor, b"escaped", 7)
libc.close(descriptor)
"""

LINGERING_PROCESS = f"""
import subprocess

subprocess.Popen(["sh", "-c", "sleep 20; echo escaped > {ESCAPE_FILE}"], start_new_session=True)
"""

ENV_DUMP = """
import os

print(dict(os.environ))
"""

NETWORK = """
import urllib.request

try:
    print(urllib.request.urlopen("http://example.com", timeout=3).read()[:100])
except OSError as error:
    print("no network:", error)
"""

DISPLAY_VALUE_THEN_RAISE = """
import sys


def one_hot(labels, num_classes):
    sys.displayhook(1.0)
    raise ValueError("not implemented")
"""

DISPLAY_FLOOD = """
from IPython.display import HTML, display

display(HTML("<p>" + "x" * 6_000_000 + "</p>"))
"""

# Tampering inside the kernel: each pairs a wrong one_hot (all zeros) with a trick that could make
# an in-kernel test pass it. lab00's hidden tests run in the grader, so every one loses the point.
WRONG_ONE_HOT = """
def one_hot(labels, num_classes):
    return torch.zeros(len(labels), num_classes)
"""

INPUT_TRANSFORMER = """
def _skip_tests(lines):
    return ["pass\\n"] if any("run_test" in line for line in lines) else lines

get_ipython().input_transformers_post.append(_skip_tests)
"""

EVENT_HOOK = """
import dlcourse.checks

def _disarm(*args):
    dlcourse.checks.check_close = lambda *a, **k: 0.0
    dlcourse.checks.check_true = lambda *a, **k: None

get_ipython().events.register("pre_run_cell", _disarm)
"""

BACKGROUND_THREAD = """
import threading, time
import torch.nn.functional

def _keep_patching():
    while True:
        torch.nn.functional.one_hot = lambda labels, n: torch.zeros(len(labels), n, dtype=torch.long)
        torch.allclose = lambda *a, **k: True
        time.sleep(0.001)

threading.Thread(target=_keep_patching, daemon=True).start()
"""

FAKE_CHECKS = """
import sys, types

fake = types.ModuleType("dlcourse.checks")
fake.check_close = lambda *a, **k: 0.0
fake.check_true = lambda *a, **k: None
fake.run_test = lambda test: None
sys.modules["dlcourse.checks"] = fake
import dlcourse
dlcourse.checks = fake
"""

PATCHED_ORACLE = """
import torch.nn.functional as F

F.one_hot = lambda labels, num_classes=-1: torch.zeros(len(labels), num_classes, dtype=torch.long)
torch.eye = lambda n, *a, **k: torch.zeros(n, n)
"""

AGREEABLE_CLASS = """
class Agreeable(torch.Tensor):
    def __eq__(self, other):
        return True

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        result = super().__torch_function__(func, types, args, kwargs or {})
        return True if getattr(func, "__name__", "") in ("allclose", "equal", "isclose") else result
"""

TENSOR_SUBCLASS = (
    AGREEABLE_CLASS
    + """

def one_hot(labels, num_classes):
    return torch.zeros(len(labels), num_classes).as_subclass(Agreeable)
"""
)

SEARCH_MEMORY = """
import gc


def one_hot(labels, num_classes):
    for value in gc.get_objects():  # an expected answer the hidden test holds, if it were here
        if isinstance(value, torch.Tensor) and tuple(value.shape) == (len(labels), num_classes):
            return value.float()
    return torch.zeros(len(labels), num_classes)
"""

FORGED_AGENT = """
import sys


def _forge(*args, **kwargs):
    print("@@dlcourse-reply@@" + "AAAA")

if "_dlcourse_agent" in sys.modules:
    sys.modules["_dlcourse_agent"].serve = _forge
    sys.modules["_dlcourse_agent"].serve_file = _forge
    sys.modules["_dlcourse_agent"].serve_socket = _forge
"""


HOSTILE: list[Hostile] = [
    Hostile("reference", with_answers(), 8, None),
    Hostile("reference_again", with_answers(), 8, None),
    Hostile("invalid_json", lambda: b'{"cells": [', 0, "invalid JSON"),
    Hostile("empty_file", lambda: b"", 0, "the file is empty"),
    Hostile("json_not_a_notebook", lambda: json.dumps([1, 2, 3]).encode(), 0, "the JSON has no cells"),
    Hostile("no_cells", lambda: notebook_bytes(nbformat.v4.new_notebook()), 0, "the notebook has no cells"),
    Hostile("metadata_stripped", edited(strip_metadata), 8, "nbgrader metadata restored"),
    Hostile("grade_ids_renamed", edited(rename_ids), 8, "nbgrader metadata restored"),
    Hostile("test_cell_deleted", edited(delete_cell("test_one_hot")), 8, "test cell test_one_hot was missing"),
    Hostile("test_cell_duplicated", edited(duplicate_cell("test_one_hot")), 8, "removed a duplicate of test cell"),
    Hostile("test_cell_edited", edited(wrong_one_hot_and_emptied_test), 7, "test cell test_one_hot was edited"),
    Hostile("answer_cell_deleted", edited(delete_cell("standardize")), 6, "answer cell standardize not found"),
    Hostile("answer_cell_duplicated", edited(duplicate_cell("one_hot")), 8, "answer cell one_hot appears twice"),
    Hostile("cells_out_of_order", edited(swap_answer_and_test), 8, "out of order"),
    Hostile("wrong_kernel", edited(other_kernel), 8, "kernel 'ir' replaced"),
    Hostile("nbformat_3", old_format, 8, "nbformat 3 notebook converted"),
    Hostile("endless_loop", with_answers(one_hot="while True:\n    pass"), 7, "time limit per cell"),
    Hostile(
        "too_slow",
        with_answers(
            one_hot="import time\ntime.sleep(20)\n" + reference_answers(LAB)["one_hot"],
            to_device="import time\ntime.sleep(20)\n" + reference_answers(LAB)["to_device"],
        ),
        5,
        "time limit per notebook",
    ),
    Hostile("memory_hog", with_answers(one_hot="hog = bytearray(16 * 1024**3)"), 7, "ran out of memory"),
    Hostile("kernel_killer", with_answers(one_hot="import os\nos._exit(1)"), 4, "the kernel died"),
    Hostile("output_flood", edited(flood), 8, "characters; cut"),
    Hostile("patched_helpers", with_answers(one_hot=PATCH_HELPERS), 7, "replaced dlcourse.checks.check_close"),
    # breaks ipykernel itself: the tests before it count, the rest are not run
    Hostile("patched_builtin", with_answers(to_device=PATCH_BUILTIN), 5, "the kernel stopped responding"),
    Hostile("always_equal", with_answers(one_hot=ALWAYS_EQUAL), 7, "with its own __eq__"),
    Hostile("history_reader", with_answers(one_hot=HISTORY_READER), 8, "read IPython's input history"),
    # the caller is now the grader's agent, whose source is nowhere to read: the answer raises
    Hostile("source_reader", with_answers(one_hot=SOURCE_READER), 7, "reads the caller's frame or source"),
    Hostile("hidden_code_printed", with_answers(one_hot=FRAME_LEAK), 8, "output showed hidden test code"),
    Hostile("grader_detector", with_answers(one_hot=ENV_DETECTOR), 8, "NBGRADER_EXECUTION"),
    Hostile("writes_outside", with_answers(one_hot=WRITE_OUTSIDE), 8, f"tried to write {ESCAPE_FILE}"),
    Hostile("reads_gradebook", with_answers(one_hot=READ_GRADEBOOK), 8, "code looks for nbgrader"),  # not in the box
    Hostile("reads_solution", with_answers(one_hot=attack(READ_SOLUTION)), 8, "tried to read"),
    Hostile("reads_neighbours", with_answers(one_hot=attack(READ_NEIGHBOURS)), 8, None),  # nothing there to find
    Hostile("subprocess_escape", with_answers(one_hot=attack(SUBPROCESS_ESCAPE)), 8, "starts other programs"),
    Hostile("ctypes_write", with_answers(one_hot=attack(CTYPES_WRITE)), 8, "loads native code"),
    Hostile("lingering_process", with_answers(one_hot=attack(LINGERING_PROCESS)), 8, "starts other programs"),
    Hostile("environment_dump", with_answers(one_hot=attack(ENV_DUMP)), 8, None),
    Hostile("network", with_answers(one_hot=attack(NETWORK)), 8, "opens network connections"),
    Hostile("display_value_then_raise", with_answers(one_hot=DISPLAY_VALUE_THEN_RAISE), 7, "showed a value"),
    Hostile("display_flood", with_answers(one_hot=attack(DISPLAY_FLOOD)), 8, "bytes per notebook removed"),
    Hostile("input_transformer", with_answers(one_hot=INPUT_TRANSFORMER + WRONG_ONE_HOT), 7, "changes how later"),
    Hostile("event_hook", with_answers(one_hot=EVENT_HOOK + WRONG_ONE_HOT), 7, "changes how later cells run"),
    Hostile("background_thread", with_answers(one_hot=BACKGROUND_THREAD + WRONG_ONE_HOT), 7, "replaced torch.allclose"),
    Hostile("fake_checks_module", with_answers(one_hot=FAKE_CHECKS + WRONG_ONE_HOT), 7, "replaces an imported module"),
    Hostile("patched_oracle", with_answers(one_hot=PATCHED_ORACLE + WRONG_ONE_HOT), 7, None),
    Hostile("tensor_subclass", with_answers(one_hot=TENSOR_SUBCLASS), 7, "with its own __eq__"),
    Hostile("searches_memory", with_answers(one_hot=SEARCH_MEMORY), 7, None),
    Hostile("forged_agent", with_answers(one_hot=FORGED_AGENT + WRONG_ONE_HOT), 4, "did not answer"),
]
