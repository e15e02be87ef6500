"""The notebook's modules and classes in the grader (mirrors), the grader's functions and optimizers in the
notebook (callbacks, one pickle): autograder.remote over a socket, with the agent run in a thread."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from autograder.remote.client import Mirror, RemoteClass, RemoteNamespace
from tests.test_remote import in_process_kernel, serve_from_a_thread

STUDENT_CODE = """
import torch
from torch import nn

class Scale(nn.Module):
    def __init__(self, n, gain=2.0):
        super().__init__()
        self.gain = gain
        self.weight = nn.Parameter(torch.ones(n))
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))
        self.inner = nn.Linear(n, n)

    def forward(self, x):
        if self.training:
            self.calls += 1
        return self.gain * x * self.weight

class Normalised(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))

    def forward(self, x):
        return normalise(x) * self.weight

def apply(f, x):
    return f(x) + f(2 * x)

def train_step(model, optimizer, x):
    optimizer.zero_grad()
    model(x).pow(2).sum().backward()
    optimizer.step()

def step_only(optimizer):
    optimizer.step()

def count_words(words):
    return sum(1 for word in words if check(word))

def twice(cell, x):
    cell.eval()
    return cell(cell(x))

def catches(x):
    try:
        return check(x)
    except Exception as error:
        return type(error).__name__
"""


def socket_kernel(folder):
    """A kernel in this process whose agent serves its socket from a thread, with STUDENT_CODE run."""
    kernel, namespace = in_process_kernel()
    exec(STUDENT_CODE, namespace)
    serve_from_a_thread(kernel, folder)
    return kernel, namespace


@pytest.fixture
def student(tmp_path):
    kernel, _ = socket_kernel(tmp_path)
    with kernel.session():
        yield RemoteNamespace(kernel)


def test_a_lent_function_the_notebook_kept_is_gone_in_the_next_hidden_part(tmp_path):
    from autograder.battery.student import Student

    kernel, namespace = socket_kernel(tmp_path)
    exec("def keep(x):\n    global kept\n    kept = check\n    return check(x)\n", namespace)
    student = RemoteNamespace(kernel)
    with kernel.session(), Student(student).lending(check=lambda x: x + 1):
        assert student["keep"](1) == 2
    exec("def use_kept(x):\n    return kept(x)\n", namespace)
    with kernel.session(), pytest.raises(LookupError, match="lent for one test only"):
        student["use_kept"](1)


def test_a_class_builds_a_mirrored_module(student):
    scale_class = student["Scale"]
    assert isinstance(scale_class, RemoteClass) and scale_class.is_module_class
    assert nn.Module in scale_class.__mro__
    module = scale_class(3, gain=3.0)
    assert isinstance(module, Mirror) and isinstance(module, nn.Module) and type(module).__name__ == "Scale"
    assert sorted(dict(module.named_parameters())) == ["inner.bias", "inner.weight", "weight"]
    assert sorted(module.state_dict()) == ["calls", "inner.bias", "inner.weight", "weight"]
    assert isinstance(module.inner, nn.Linear) and module.gain == 3.0 and module.training


def test_calls_train_eval_and_to_run_in_the_kernel_and_are_followed(student):
    module = student["Scale"](2)
    x = torch.ones(1, 2)
    assert torch.equal(module(x), torch.full((1, 2), 2.0)) and int(module.calls) == 1
    assert module.eval() is module and not module.training and not module.inner.training
    module(x)
    assert int(module.calls) == 1  # eval mode ran in the kernel
    assert module.to(torch.float64) is module and module.weight.dtype == torch.float64
    assert module.calls.dtype == torch.long


def test_what_the_grader_changes_is_pushed_to_the_kernel(student):
    module = student["Scale"](2)
    with torch.no_grad():
        module.weight.copy_(torch.tensor([3.0, 4.0]))
    assert torch.equal(module(torch.ones(1, 2)), torch.tensor([[6.0, 8.0]]))
    module.load_state_dict({**module.state_dict(), "weight": torch.tensor([1.0, -1.0])})
    assert torch.equal(module(torch.ones(1, 2)), torch.tensor([[2.0, -2.0]]))


def test_gradients_reach_the_mirrors_parameters_once(student):
    module = student["Scale"](2)
    x = torch.tensor([[1.0, 2.0]], requires_grad=True)
    module(x).sum().backward()
    assert torch.equal(module.weight.grad, torch.tensor([2.0, 4.0]))
    assert torch.equal(x.grad, torch.full((1, 2), 2.0))
    (grad,) = torch.autograd.grad(module(x).sum(), [module.weight])
    assert torch.equal(grad, torch.tensor([2.0, 4.0]))


def test_instances_are_independent_and_followed(student):
    first, second = student["Scale"](2), student["Scale"](2)
    first(torch.ones(1, 2))
    assert int(first.calls) == 1 and int(second.calls) == 0


def test_a_grader_function_passed_as_an_argument_is_called_back(student):
    calls = []

    def double(t):
        calls.append(t.clone())
        return 2 * t

    x = torch.tensor([1.0, 2.0], requires_grad=True)
    result = student["apply"](double, x)
    assert torch.equal(result.detach(), torch.tensor([6.0, 12.0])) and len(calls) == 2
    result.sum().backward()
    assert torch.equal(x.grad, torch.full((2,), 6.0))


def test_a_lent_function_is_called_back_with_autograd_and_in_place_updates(student):
    from autograder.battery.student import Student

    seen = []

    def normalise(x):
        seen.append(x.shape)
        return x / x.norm()

    module = student["Normalised"](2)
    x = torch.tensor([[3.0, 4.0]], requires_grad=True)
    with Student(student).lending(normalise=normalise):
        out = module(x)
    assert seen == [(1, 2)] and torch.allclose(out.detach(), torch.tensor([[0.6, 0.8]]))
    out[0, 0].backward()
    expected_x = torch.autograd.functional.jacobian(lambda t: t / t.norm(), torch.tensor([[3.0, 4.0]]))[0, 0]
    assert torch.allclose(x.grad, expected_x) and torch.allclose(module.weight.grad, torch.tensor([0.6, 0.0]))
    assert "normalise" not in student


def test_a_callbacks_exception_reaches_the_grader_as_itself(student):
    from autograder.battery.student import Student

    class TooMany(Exception):
        pass

    def check(word):
        raise TooMany("stop")

    with Student(student).lending(check=check), pytest.raises(TooMany):
        student["count_words"]([[1], [2]])
    with Student(student).lending(check=check):
        assert student["catches"](1) == "TooMany"  # the notebook may catch it, as in-process


def test_an_optimizer_steps_the_graders_model_through_the_kernel(student):
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    expected = nn.Linear(3, 1)
    expected.load_state_dict(model.state_dict())
    expected_optimizer = torch.optim.SGD(expected.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(4, 3)
    for _ in range(2):
        student["train_step"](model, optimizer, x)
        expected_optimizer.zero_grad()
        expected(x).pow(2).sum().backward()
        expected_optimizer.step()
    assert torch.allclose(model.weight, expected.weight) and torch.allclose(model.bias, expected.bias)
    momentum = optimizer.state[model.weight]["momentum_buffer"]
    assert torch.allclose(momentum, expected_optimizer.state[expected.weight]["momentum_buffer"])


def test_a_module_built_on_a_simulated_gpu_in_the_kernel(student):
    from autograder.battery.devices import module_on_simulated_gpu

    violations, outputs, tensors = module_on_simulated_gpu(student["Scale"], (2,), {}, torch.ones(1, 2), [True])
    assert violations == [] and outputs == [True] and all(tensors.values())


class GraderCell(nn.Module):
    """A module whose class the kernel cannot import: it reaches the notebook as a proxy that calls back."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.tensor([[0.5, -1.0], [2.0, 0.25]]))
        self.modes_seen: list[bool] = []

    def forward(self, x):
        self.modes_seen.append(self.training)
        return torch.tanh(x @ self.weight.T)


def test_a_grader_model_the_kernel_cannot_import_is_called_back(student):
    cell, reference = GraderCell(), GraderCell()
    x = torch.tensor([[1.0, 2.0]], requires_grad=True)
    out = student["twice"](cell, x)
    assert cell.modes_seen == [False, False] and not cell.training  # the kernel's eval() reached the grader's model
    expected = reference(reference(x))
    assert torch.allclose(out, expected)
    grads = torch.autograd.grad(out.sum(), [x, cell.weight])
    expected_grads = torch.autograd.grad(expected.sum(), [x, reference.weight])
    assert all(torch.allclose(a, b) for a, b in zip(grads, expected_grads, strict=True))


def test_a_sent_models_leftover_grads_arrive_with_it(student):
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)
    before = [p.detach().clone() for p in model.parameters()]
    student["step_only"](optimizer)
    assert all(torch.allclose(p, b - 0.5) for p, b in zip(model.parameters(), before, strict=True))
