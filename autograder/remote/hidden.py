"""A test cell's hidden part, run in the grader's process against the notebook's namespace."""

from __future__ import annotations

import builtins
import re

from nbformat.notebooknode import NotebookNode

from autograder.battery.forbidden import answers_in_the_kernel
from autograder.remote.client import KernelUnreadable, RemoteNamespace

HIDDEN_REGION = re.compile(
    r"^(?P<indent>[ \t]*)### BEGIN HIDDEN TESTS[ \t]*\n(?P<code>.*?)^[ \t]*### END HIDDEN TESTS[ \t]*$", re.S | re.M
)


def split_hidden(source: str) -> tuple[str, str]:
    """(what the kernel runs: the cell with its hidden region replaced by ``pass``, the hidden code dedented)."""
    match = HIDDEN_REGION.search(source)
    if match is None:
        return source, ""
    indent = match["indent"]
    lines = [line.removeprefix(indent) for line in match["code"].splitlines()]
    return source[: match.start()] + f"{indent}pass" + source[match.end() :], "\n".join(lines) + "\n"


def failure(name: str, message: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=name, evalue=message, traceback=[f"{name}: {message}"])


class NotebookNames(dict):
    """The hidden code's names: its own, the grader's libraries and Python's builtins (never the notebook's
    versions of them), else the notebook's (copies or handles). A KeyError sends Python on to the builtins."""

    def __init__(self, namespace: RemoteNamespace):
        super().__init__(TRUSTED_NAMES)
        self.namespace = namespace

    def __missing__(self, name: str):
        if name in vars(builtins) or name == "globals":
            raise KeyError(name)
        return self.namespace[name]


def trusted_names() -> dict:
    """What hidden code may use by name without asking the notebook: the grader's own imports."""
    import math

    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn

    import dlcourse.checks

    names = {name: getattr(dlcourse.checks, name) for name in dlcourse.checks.__all__}
    return names | {"math": math, "np": np, "torch": torch, "F": F, "nn": nn}


TRUSTED_NAMES = trusted_names()


def run_hidden(code: str, namespace: RemoteNamespace, label: str) -> NotebookNode | None:
    """Run the hidden code with ``globals()`` meaning the notebook's namespace; its failure as an error output."""
    scope = {"__name__": "hidden_tests", "globals": lambda: namespace}
    try:
        with namespace.kernel.session(), answers_in_the_kernel():
            exec(compile(code, label, "exec"), scope, NotebookNames(namespace))
    except KernelUnreadable as error:
        return failure("KernelUnreadable", str(error))
    except AssertionError as error:
        return failure("AssertionError", str(error))
    except Exception as error:  # noqa: BLE001 - a hidden test that cannot finish fails its cell
        return failure(type(error).__name__, str(error))
    return None
