"""Tampering submissions of lab02_init, a lab whose hidden tests call the student's code across
the process boundary with models, parameters carrying ``.grad`` and in-place updates.

Each pairs a wrong ``clip_grad_norm_`` (it returns the norm and never scales, worth 4 of the
lab's 19 points) or a wrong ``calculate_gain`` (checked by the 2-point test of ``kaiming_normal_``)
with a trick that would let an in-kernel test pass it. tests/test_grading_hostile_lab02.py grades
them in one batch; every entry states the total the student keeps and a phrase of its problems.csv line (None: none).
"""

from __future__ import annotations

from collections.abc import Callable

from tests.corpus.hostile import (
    AGREEABLE_CLASS,
    FAKE_CHECKS,
    INPUT_TRANSFORMER,
    SEARCH_MEMORY,
    Hostile,
    notebook_bytes,
)
from tests.submissions import reference_answers, student_notebook

LAB = "lab02_init"
LIMITS = ("--timeout", "90", "--cell-timeout", "30", "--memory-mb", "3000")
FULL_MARKS = 19
NO_CLIP, NO_GAIN = FULL_MARKS - 4, FULL_MARKS - 2  # clip_grad_norm_'s points, kaiming_normal_'s


def with_answers(**answers: str) -> Callable[[], bytes]:
    return lambda: notebook_bytes(student_notebook(LAB, {**reference_answers(LAB), **answers}))


NO_CLIPPING = """
def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g, norm_type) for g in grads]), norm_type)
"""

PATCHED_ORACLES = """
import torch.nn.utils

torch.nn.utils.clip_grad_norm_ = lambda parameters, max_norm, norm_type=2.0, **kwargs: clip_grad_norm_(
    parameters, max_norm, norm_type
)
torch.testing.assert_close = lambda *args, **kwargs: None
"""

AGREEABLE_RESULT = AGREEABLE_CLASS + NO_CLIPPING.replace(
    "return torch.linalg", "return Agreeable._make_subclass(Agreeable, torch.linalg"
).replace("norm_type)\n", "norm_type))\n")

EQUAL_FLOAT = """
class EqualFloat(float):
    def __eq__(self, other):
        return True

    __hash__ = float.__hash__


def calculate_gain(nonlinearity, param=None):
    return EqualFloat(1.0)
"""

SHADOWED_LIBRARIES = """
import types

torch_functions = torch  # the student's own code keeps the real library
torch = types.SimpleNamespace(allclose=lambda *a, **k: True, equal=lambda *a, **k: True)
math = types.SimpleNamespace(isclose=lambda *a, **k: True)
""" + NO_CLIPPING.replace("torch.", "torch_functions.")

HOSTILE_LAB02: list[Hostile] = [
    Hostile("reference", with_answers(), FULL_MARKS, None),
    Hostile("reference_again", with_answers(), FULL_MARKS, None),
    Hostile("no_clipping", with_answers(clip_grad_norm=NO_CLIPPING), NO_CLIP, None),
    Hostile(
        "patched_oracles",
        with_answers(clip_grad_norm=NO_CLIPPING + PATCHED_ORACLES),
        NO_CLIP,
        "replaced torch.testing.assert_close",
    ),
    Hostile("agreeable_result", with_answers(clip_grad_norm=AGREEABLE_RESULT), NO_CLIP, "with its own __eq__"),
    Hostile("equal_float", with_answers(calculate_gain=EQUAL_FLOAT), NO_GAIN, "with its own __eq__"),
    Hostile(
        "shadowed_libraries",
        with_answers(clip_grad_norm=SHADOWED_LIBRARIES),
        NO_CLIP,
        "rebound the name torch",
    ),
    Hostile(
        "input_transformer",
        with_answers(clip_grad_norm=INPUT_TRANSFORMER + NO_CLIPPING),
        NO_CLIP,
        "changes how later cells run",
    ),
    Hostile(
        "fake_checks_module",
        with_answers(clip_grad_norm=FAKE_CHECKS + NO_CLIPPING),
        NO_CLIP,
        "replaces an imported module",
    ),
    # the hidden tests' expected values live in the grader's process: nothing in the kernel to find
    Hostile("searches_memory", with_answers(clip_grad_norm=SEARCH_MEMORY + NO_CLIPPING), NO_CLIP, None),
]
