"""Calls from the grader into a student's namespace (autograder.remote), with the agent run in-process."""

from __future__ import annotations

import base64
import contextlib
import io
import pickle

import pytest
import torch
from torch import nn

from autograder.remote import wire
from autograder.remote.client import Kernel, KernelUnreadable, Remote, RemoteNamespace, StudentError
from autograder.remote.wire import MARK

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


MODEL_CODE = """
import torch
from torch import nn

def leave_in_eval(model, x):
    model.eval()
    return model(x)

def leave_a_hook(model, x):
    model[0].register_forward_hook(lambda *args: None)
    return model(x)

def scale_weights(model):
    with torch.no_grad():
        model[0].weight.mul_(2)

def clip(parameters, max_norm):
    parameters = list(parameters)
    for p in parameters:
        p.grad.mul_(0.5)
    return len(parameters)

def uses_torch_norm(x):
    return torch.linalg.vector_norm(x)

def uses_a_builtin_cell(x, weight):
    return torch.rnn_tanh_cell(x, x, weight, weight)

def makes_cpu_tensor(x):
    return x + torch.ones(x.shape)

def gain_twice(name):
    return 2 * calculate_gain(name)
"""


@pytest.fixture
def kernel_with_models() -> RemoteNamespace:
    kernel, namespace = in_process_kernel()
    exec(MODEL_CODE, namespace)
    return RemoteNamespace(kernel)


def small_model() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.5))


def test_what_a_call_does_to_a_model_is_replayed(kernel_with_models):
    from autograder.battery.snapshot import Snapshot

    model = small_model()
    snapshot = Snapshot(model=model)
    kernel_with_models["leave_in_eval"](model, torch.ones(1, 3))
    assert not model.training and not model[1].training
    assert "eval mode" in snapshot.changes()[0]
    model.train()
    snapshot = Snapshot(model=model)
    kernel_with_models["leave_a_hook"](model, torch.ones(1, 3))
    assert len(model[0]._forward_hooks) == 1 and "hooks" in snapshot.changes()[0]
    weight = model[0].weight
    before = weight.detach().clone()
    kernel_with_models["scale_weights"](model)
    assert model[0].weight is weight and torch.equal(weight.detach(), 2 * before)


def test_parameters_in_a_generator_keep_their_grads_in_place(kernel_with_models):
    parameters = [nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(3))]
    for p in parameters:
        p.grad = torch.full_like(p, 4.0)
    grads = [p.grad for p in parameters]
    assert kernel_with_models["clip"]((p for p in parameters), 1.0) == 2
    assert all(p.grad is g and torch.equal(g, torch.full_like(g, 2.0)) for p, g in zip(parameters, grads, strict=True))


def test_forbidden_calls_are_seen_in_the_kernel(kernel_with_models):
    from autograder.battery.forbidden import answers_in_the_kernel, forbidding

    with answers_in_the_kernel():  # as in the grader: only the kernel's watch sees the answer's calls
        with pytest.raises(AssertionError, match="torch.linalg.vector_norm"):
            with forbidding("norm", {torch.linalg.vector_norm: "torch.linalg.vector_norm"}, "write the norm"):
                kernel_with_models["uses_torch_norm"](torch.ones(3))
        with pytest.raises(AssertionError, match="torch.rnn_tanh_cell"):
            with forbidding("cell", {torch.rnn_tanh_cell: "torch.rnn_tanh_cell"}, "write the cell"):
                kernel_with_models["uses_a_builtin_cell"](torch.ones(1, 2), torch.ones(2, 2))


def test_every_forbidden_function_of_the_battery_is_found_again_by_its_name():
    import inspect

    from autograder.battery import batchnorm, initialisation, recurrent
    from autograder.remote.client import qualified_name, resolve_here

    forbidden = [recurrent.RECURRENT_FUNCTIONS, batchnorm.FORBIDDEN, *initialisation.FORBIDDEN.values()]
    for functions in forbidden:
        for function, name in functions.items():
            found = resolve_here(qualified_name(function))
            assert inspect.unwrap(found) is inspect.unwrap(function), name


def test_the_simulated_gpu_runs_in_the_kernel(kernel_with_models):
    from autograder.battery.devices import run_on_simulated_gpu

    _, violations = run_on_simulated_gpu(kernel_with_models["makes_cpu_tensor"], torch.ones(3))
    assert violations and "CPU" in violations[0]


def test_pytorch_functions_can_be_lent(kernel_with_models):
    from autograder.battery.student import Student

    student = Student(kernel_with_models)
    with student.lending(calculate_gain=nn.init.calculate_gain):
        assert kernel_with_models["gain_twice"]("tanh") == pytest.approx(2 * 5 / 3)
    assert "calculate_gain" not in kernel_with_models


def serve_from_a_thread(kernel: Kernel, folder) -> None:
    """Let the in-process kernel serve a session's socket from a thread, as a notebook's agent would."""
    import threading

    kernel.folder = folder

    def start(code: str):
        thread = threading.Thread(target=kernel.execute, args=(code,))
        thread.start()
        return lambda interrupt: thread.join(10)

    kernel.start = start


def test_a_session_serves_calls_over_a_socket(tmp_path):
    kernel, namespace = in_process_kernel()
    serve_from_a_thread(kernel, tmp_path)
    student = RemoteNamespace(kernel)
    with kernel.session():
        assert kernel.connection is not None
        x = torch.zeros(3)
        student["add_one_in_place"](x)
        assert torch.equal(student["double"](x), torch.full((3,), 2.0))
    assert kernel.connection is None and not (tmp_path / "agent.sock").exists()


def test_tensors_cross_as_plain_data_with_their_layout_and_shared_storage():
    base = torch.arange(24, dtype=torch.float64).reshape(4, 6)
    view = base.t()[1:, ::2]  # non-contiguous, offset into base's storage
    message = {
        "tensors": [base, view, torch.tensor([True, False]), torch.ones(2, dtype=torch.bfloat16), torch.empty(0, 3)],
        "kinds": [torch.float32, torch.device("cpu"), torch.Size([2, 3]), 1 + 2j],
        "needs torch.save": [torch.ones(2, requires_grad=True), torch.tensor([1 + 1j])],
    }
    back = wire.from_bytes(wire.to_bytes(message))
    for sent, received in zip(message["tensors"], back["tensors"], strict=True):
        assert received.dtype == sent.dtype and received.shape == sent.shape and torch.equal(received, sent)
    received_base, received_view = back["tensors"][:2]
    assert received_view.stride() == view.stride() and received_view.storage_offset() == view.storage_offset()
    received_base[2, 1] = -1.0  # the view still looks into the base, as it does on the sending side
    assert received_view[0, 1] == -1.0
    assert back["kinds"] == message["kinds"] and type(back["kinds"][2]) is torch.Size
    assert back["needs torch.save"][0].requires_grad and back["needs torch.save"][1].dtype == torch.complex64


@pytest.mark.parametrize(
    ("described", "storages"),
    [
        ({"storages": [8], "items": [["tensor", 0, "float64", [4], [1], 0]]}, b"\0" * 8),  # past the storage's end
        ({"storages": [8], "items": [["tensor", 0, "object", [1], [1], 0]]}, b"\0" * 8),  # not a dtype
        ({"storages": [], "items": [["saved", 0]]}, b""),  # nothing was saved
        ({"storages": [], "items": [["builtins.eval", "1"]]}, b""),
        ({"storages": [64], "items": [["tensor", 0, "uint8", [1], [1], 0]]}, b"\0" * 8),  # storage past the end
        ({"storages": [-8], "items": []}, b""),
        ({"storages": ["8"], "items": []}, b"\0" * 8),
        ({"items": []}, b""),
    ],
    ids=["out of bounds", "unknown dtype", "missing saved part", "unknown kind", "short", "negative", "str", "none"],
)
def test_a_forged_tensor_description_is_refused(described, storages):
    plain = pickle.dumps({wire.REF: 0})
    data = len(plain).to_bytes(8, "big") + plain + len(pickle.dumps(described)).to_bytes(8, "big")
    with pytest.raises(Exception):  # noqa: B017, PT011 - any error: the caller reports an unreadable answer
        wire.from_bytes(data + pickle.dumps(described) + storages)


def test_frames_on_a_socket_rebuild_tensors_and_shared_storages_and_refuse_long_ones():
    import contextlib
    import socket
    import threading

    big = torch.randn(300_000, dtype=torch.float64)  # above the size that is sent as it is
    message = {"big": big, "view": big[10:20:2], "small": torch.arange(3), "plain": [1, "two"], "tail": 1 + 1j}
    sending, receiving = socket.socketpair()
    with sending, receiving:
        sender = threading.Thread(target=wire.send_frame, args=(sending, message))
        sender.start()
        back = wire.receive_frame(receiving)
        sender.join()
        assert torch.equal(back["big"], big) and torch.equal(back["view"], big[10:20:2])
        assert back["view"].untyped_storage().data_ptr() == back["big"].untyped_storage().data_ptr()
        assert back["big"].data_ptr() != big.data_ptr() and back["plain"] == [1, "two"] and back["tail"] == 1 + 1j
        back["big"][0] = 1e9  # the received tensor owns writable memory of its own
        assert big[0] != 1e9

        def send_to_a_reader_who_stops():
            with contextlib.suppress(OSError):
                wire.send_frame(sending, message)

        sender = threading.Thread(target=send_to_a_reader_who_stops)
        sender.start()
        with pytest.raises(wire.FrameTooLong, match="bytes long"):
            wire.receive_frame(receiving, largest=1000)
        receiving.shutdown(socket.SHUT_RDWR)
        sender.join(timeout=30)
        assert not sender.is_alive()


def test_the_global_generators_cross_exactly_and_only_when_they_moved():
    import random

    import numpy as np

    random.seed(3)
    np.random.seed(4)
    torch.manual_seed(5)
    sent = wire.RandomState()
    states = wire.from_bytes(wire.to_bytes(sent.outgoing()))
    assert sorted(states) == ["numpy", "random", "torch"]
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    received = wire.RandomState()
    received.incoming(states)  # the other side's process takes over all three
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected
    sent.agreed = wire.generator_states()
    assert sent.outgoing() is None
    np.random.rand()
    assert sorted(sent.outgoing()) == ["numpy"]


def test_a_module_comes_back_by_its_key_and_whole_when_this_side_let_its_mirror_go(student):
    linear = student["linear"]
    assert student["linear"] is linear  # sent again by its key only: the same mirror
    linear.eval()
    assert student["linear"].training is False
    student.kernel.mirrors.clear()  # as if the mirror had been collected after the kernel sent the module by its key
    again = student["linear"]
    assert again is not linear and isinstance(again, nn.Module)
    assert torch.equal(again.weight, torch.ones(1, 3)) and again.training is False


def test_a_batch_of_calls_reports_the_generators_once_after_its_last_call():
    kernel, namespace = in_process_kernel()
    exec("def draw(n):\n    return torch.rand(n)", namespace)
    received = []
    incoming = kernel.random.incoming
    kernel.random.incoming = lambda moved: (received.append(moved), incoming(moved))
    torch.manual_seed(0)
    outcomes = RemoteNamespace(kernel)["draw"].call_each([((2,), {}), ((3,), {})])
    assert [error for _, error in outcomes] == [None, None]
    moved = [states for states in received if states is not None]
    assert len(moved) == 1 and torch.equal(moved[0]["torch"], torch.get_rng_state())
    torch.manual_seed(0)
    assert torch.equal(torch.cat([result for result, _ in outcomes]), torch.rand(5))
