"""Calls a task forbids: "write batch_norm yourself; do not call F.batch_norm".

:func:`forbidden_calls` watches a call to the student's answer with a profile function
(``sys.setprofile``), which sees every Python function and every built-in the answer reaches,
however it was imported or renamed (``from torch.nn.functional import batch_norm as bn``), and
through PyTorch's own modules (``nn.BatchNorm1d`` reaches ``F.batch_norm``). Calls made by the
battery's own helpers, lent to the answer as correct versions of other graded functions, do not
count.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from collections.abc import Callable, Iterator

import torch

BATTERY = os.path.dirname(os.path.abspath(__file__))


TORCH = os.path.dirname(os.path.abspath(torch.__file__))


def inside(frame, folder: str) -> bool:
    return os.path.abspath(frame.f_code.co_filename).startswith(folder + os.sep)


def from_battery(frame) -> bool:
    """Whether the code that made a call is the battery's own, seen through PyTorch's wrappers."""
    while frame is not None and inside(frame, TORCH):
        frame = frame.f_back
    return frame is not None and inside(frame, BATTERY)


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
            if name and not from_battery(frame.f_back):
                self.note(name)
        elif event == "c_call":
            name = self.builtins.get(id(arg))
            if name and not from_battery(frame):
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
