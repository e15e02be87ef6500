"""Calls from the grader into a student's namespace (autograder.remote), with the agent run in-process."""

from __future__ import annotations

import base64
import contextlib
import io
import pickle

import pytest
import torch
from torch import nn

from autograder.remote.agent import MARK
from autograder.remote.client import Kernel, KernelUnreadable, Remote, RemoteNamespace, StudentError

STUDENT_CODE = """
import torch
from torch import nn

def double(x):
    return 2 * x

def add_one_in_place(x):
    x.add_(1)

def swap_data(x):
    x.data = x.data * 3

def square_sum(x):
    return (x ** 2).sum()

def refuse(x):
    raise ValueError("negative input")

class Custom(Exception):
    pass

def custom(x):
    raise Custom("mine")

class Sneaky(float):
    def __eq__(self, other):
        return True

def sneaky():
    return Sneaky(1.0)

def pair(x):
    return x.sum().item(), {"shape": tuple(x.shape), "device": x.device}

linear = nn.Linear(3, 1)
torch.nn.init.ones_(linear.weight)
torch.nn.init.zeros_(linear.bias)
"""


def in_process_kernel() -> tuple[Kernel, dict]:
    """A Kernel whose 'kernel' is a namespace in this process, as a notebook's would be."""
    namespace: dict = {}
    exec(STUDENT_CODE, namespace)

    def execute(code: str) -> str:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(code, namespace)
        return printed.getvalue()

    return Kernel(execute), namespace


@pytest.fixture
def student() -> RemoteNamespace:
    return RemoteNamespace(in_process_kernel()[0])


def test_values_come_back_as_copies(student):
    x = torch.arange(6.0).reshape(2, 3)
    result = student["double"](x)
    assert isinstance(student["double"], Remote)
    assert type(result) is torch.Tensor and torch.equal(result, 2 * x) and result.dtype == x.dtype
    assert student["pair"](x) == (15.0, {"shape": (2, 3), "device": torch.device("cpu")})


def test_in_place_updates_land_in_the_graders_tensor(student):
    x = torch.zeros(4)
    pointer, version = x.data_ptr(), x._version
    student["add_one_in_place"](x)
    assert torch.equal(x, torch.ones(4)) and x.data_ptr() == pointer and x._version > version


def test_a_swapped_storage_is_replayed_as_a_swap(student):
    x = torch.ones(3)
    pointer = x.data_ptr()
    student["swap_data"](x)
    assert torch.equal(x, torch.full((3,), 3.0)) and x.data_ptr() != pointer


def test_untouched_inputs_keep_their_version(student):
    x = torch.ones(3)
    version = x._version
    student["double"](x)
    assert x._version == version


def test_gradients_flow_back_through_the_kernel(student):
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    loss = student["square_sum"](x)
    assert loss.requires_grad
    loss.backward()
    assert torch.equal(x.grad, 2 * x.detach())


def test_a_module_in_the_kernel_gets_its_own_gradients(student):
    x = torch.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    linear = student["linear"]
    out = linear(x)
    assert torch.equal(out.detach(), torch.tensor([[6.0]]))
    (2 * out).sum().backward()
    assert torch.equal(x.grad, torch.full((1, 3), 2.0))
    assert torch.equal(linear.weight.grad, 2 * x.detach())
    assert isinstance(linear.weight, nn.Parameter) and linear.training is True


def test_exceptions_keep_builtin_types(student):
    with pytest.raises(ValueError, match="negative input"):
        student["refuse"](torch.ones(1))
    with pytest.raises(StudentError, match="Custom: mine"):
        student["custom"](torch.ones(1))


def test_a_students_float_subclass_stays_in_the_kernel(student):
    value = student["sneaky"]()
    assert isinstance(value, Remote) and not isinstance(value, float)


def test_missing_names(student):
    assert "nothing_here" not in student and "double" in student
    with pytest.raises(KeyError):
        student["nothing_here"]
    assert student.get("nothing_here", 5) == 5


class Exploit:
    def __reduce__(self):
        return (print, ("the grader ran the kernel's code",))


@pytest.mark.parametrize(
    "answer",
    ["", "garbage", MARK + "not base64!", MARK + base64.b64encode(pickle.dumps(Exploit())).decode()],
    ids=["silent", "garbage", "not base64", "pickle with code"],
)
def test_a_forged_answer_is_refused(answer, capsys):
    kernel, _ = in_process_kernel()
    kernel.booted = True
    kernel.execute = lambda code: answer
    with pytest.raises(KernelUnreadable):
        RemoteNamespace(kernel)["double"]
    assert "ran the kernel's code" not in capsys.readouterr().out


def test_changes_to_list_and_dict_arguments_are_replayed():
    kernel, namespace = in_process_kernel()
    exec("def move(batch):\n    batch['x'] = batch['x'] * 0\n    batch['items'].append(batch['y'])\n", namespace)
    y = torch.ones(2)
    batch = {"x": torch.ones(3), "y": y, "items": [1]}
    inner = batch["items"]
    RemoteNamespace(kernel)["move"](batch)
    assert torch.equal(batch["x"], torch.zeros(3)) and batch["y"] is y
    assert batch["items"] is inner and inner[0] == 1 and inner[1] is y
