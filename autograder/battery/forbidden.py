"""Calls a task forbids: "write batch_norm yourself; do not call F.batch_norm".

:func:`forbidden_calls` watches a call to the student's answer with a profile function
(``sys.setprofile``), which sees every Python function and every built-in the answer reaches,
however it was imported or renamed (``from torch.nn.functional import batch_norm as bn``), and
through PyTorch's own modules (``nn.BatchNorm1d`` reaches ``F.batch_norm``; a student's class that
is PyTorch's, or derives from it, runs PyTorch's code). Calls made inside the correct versions of
other graded functions that the battery lends to the answer (:meth:`Student.lending` registers
them with :func:`lent_helpers`) do not count.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import CodeType

LENT: set[CodeType] = set()  # the code of correct versions lent to an answer while it runs (Student.lending)


@dataclass
class Watch:
    """Functions a block forbids, and those called: by answers in this process or in the student's kernel."""

    functions: dict[Callable, str]
    called: list[str] = field(default_factory=list)


WATCHES: list[Watch] = []  # the forbidding blocks now open; autograder.remote sends them with each call
ANSWERS_ELSEWHERE: list[bool] = []  # non-empty while the answers run in the student's kernel, which watches them


@contextlib.contextmanager
def answers_in_the_kernel() -> Iterator[None]:
    """While hidden tests run in the grader, no answer runs in this process: watch the kernel's calls only
    (a profile function here would slow every call the grader makes)."""
    ANSWERS_ELSEWHERE.append(True)
    try:
        yield
    finally:
        ANSWERS_ELSEWHERE.pop()


def code_of(value) -> CodeType | None:
    """The code a call of ``value`` runs: a function's own (decorators unwrapped), or a callable object's __call__."""
    function = inspect.unwrap(value) if callable(value) else None
    if hasattr(function, "__code__"):
        return function.__code__
    if isinstance(value, type):
        return None
    return getattr(type(value).__dict__.get("__call__"), "__code__", None)


@contextlib.contextmanager
def lent_helpers(*values) -> Iterator[None]:
    """While the block runs, calls made inside these lent helpers are theirs, not the answer's."""
    codes = {code for code in map(code_of, values) if code is not None} - LENT
    LENT.update(codes)
    try:
        yield
    finally:
        LENT.difference_update(codes)


def inside_lent(frame) -> bool:
    """Whether a lent helper is on the way up from ``frame``: then the call is the helper's, not the answer's."""
    while frame is not None:
        if frame.f_code in LENT:
            return True
        frame = frame.f_back
    return False


class Recorder:
    def __init__(self, functions: dict[Callable, str]):
        # Python functions are recognised by the code object of the function itself (decorators unwrapped:
        # PyTorch's @_no_grad wrappers share one code object), built-ins by identity.
        python = {inspect.unwrap(f): name for f, name in functions.items() if hasattr(inspect.unwrap(f), "__code__")}
        self.codes = {f.__code__: name for f, name in python.items()}
        self.builtins = {id(f): name for f, name in functions.items() if not hasattr(inspect.unwrap(f), "__code__")}
        self.called: list[str] = []

    def __call__(self, frame, event, arg):
        if event == "call":
            name = self.codes.get(frame.f_code)
            if name and not inside_lent(frame.f_back):
                self.note(name)
        elif event == "c_call":
            name = self.builtins.get(id(arg))
            if name and not inside_lent(frame):
                self.note(name)

    def note(self, name: str) -> None:
        if name not in self.called:
            self.called.append(name)


@contextlib.contextmanager
def forbidden_calls(functions: dict[Callable, str]) -> Iterator[list[str]]:
    """Record which of ``functions`` (function -> its name for messages) run inside the block.

    Yields the list of names called, filled in as the block runs.
    """
    recorder = Recorder(functions)
    previous = sys.getprofile()
    sys.setprofile(recorder)
    try:
        yield recorder.called
    finally:
        sys.setprofile(previous)


def require_not_called(label: str, called: list[str], task: str) -> None:
    from autograder.battery.compare import require

    require(
        not called,
        label,
        f"called {', '.join(called)}, which this task asks you to write yourself ({task}); "
        "compute it from tensor operations",
    )


@contextlib.contextmanager
def forbidding(label: str, functions: dict[Callable, str], task: str) -> Iterator[None]:
    """Run the block (a call of the student's answer); fail with ``label`` if it called one of ``functions``."""
    watch = Watch(functions)
    WATCHES.append(watch)
    try:
        with contextlib.nullcontext([]) if ANSWERS_ELSEWHERE else forbidden_calls(functions) as called:
            yield
    finally:
        WATCHES.remove(watch)
    require_not_called(label, called + [name for name in watch.called if name not in called], task)
