"""The shared hidden-test battery (autograder/battery): each check catches what it promises, and only that."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autograder.battery.compare import assert_close, assert_equal, check_form, group
from autograder.battery.devices import run_on_simulated_gpu
from autograder.battery.forbidden import forbidden_calls
from autograder.battery.inputs import layouts, non_contiguous
from autograder.battery.models import TrainEvalGap, mode_sensitive_mlp
from autograder.battery.properties import for_all, st
from autograder.battery.snapshot import Snapshot
from autograder.battery.student import Student, call, case, expect_raises

X = torch.rand(4, 3)


@pytest.mark.parametrize(
    "function",
    [
        lambda x: torch.zeros_like(x) + x,
        lambda x: x.new_zeros(4, 3) + x,
        lambda x: torch.zeros(4, 3, device=x.device) + x,
        lambda x: torch.zeros(4, 3).to(x.device) + x,
        lambda x: torch.zeros(4, 3).to(x) + x,
        lambda x: x * torch.tensor(2.0),  # a CPU scalar is fine on a GPU too
        lambda x: x * x.sum().item(),
        lambda x: (x + torch.rand_like(x)).clamp(0, 1),
    ],
)
def test_simulated_gpu_accepts_device_agnostic_code(function):
    assert run_on_simulated_gpu(function, X)[1] == []


@pytest.mark.parametrize(
    "function, phrase",
    [
        (lambda x: torch.zeros(4, 3) + x, "made on the CPU"),
        (lambda x: x * torch.tensor([1.0, 2.0, 3.0]), "made on the CPU"),
        (lambda x: (x + torch.rand(x.shape)).clamp(0, 1), "made on the CPU"),
        (lambda x: torch.zeros(x.shape), "result was made on the CPU"),
        (lambda x: torch.from_numpy(x.numpy()), ".numpy()"),
        (lambda x: torch.zeros(3, 3) @ x.T, "made on the CPU"),  # a property (.T) of a GPU tensor is on the GPU
        (lambda x: setattr(x, "data", torch.zeros(4, 3)) or x, "`.data = ...`"),
    ],
)
def test_simulated_gpu_catches_cpu_tensors(function, phrase):
    _, violations = run_on_simulated_gpu(function, X.clone())
    assert violations and phrase in violations[0]


def test_simulated_gpu_follows_modules_autograd_and_optimizers():
    model = nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)

    def step(model, optimizer, x):
        optimizer.zero_grad()
        model(x).pow(2).mean().backward()
        optimizer.step()
        x_var = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(model(x_var).sum(), x_var)
        return x + grad.sign()

    assert run_on_simulated_gpu(step, model, optimizer, X)[1] == []


def test_simulated_gpu_is_inconclusive_when_the_answer_asks_for_cuda_itself():
    result, violations = run_on_simulated_gpu(lambda x: torch.Generator(device=x.device), X)
    assert result is None and violations == []


def test_forbidden_calls_are_seen_through_aliases_and_modules():
    from torch.nn.functional import batch_norm as renamed

    forbidden = {F.batch_norm: "F.batch_norm", torch.batch_norm: "torch.batch_norm"}
    x = torch.randn(4, 3)
    with forbidden_calls(forbidden) as called:
        renamed(x, None, None, training=True)
    assert called == ["F.batch_norm", "torch.batch_norm"]
    with forbidden_calls(forbidden) as called:
        nn.BatchNorm1d(3)(x)
    assert "F.batch_norm" in called
    with forbidden_calls(forbidden) as called:
        (x - x.mean(0)) / x.var(0, unbiased=False).add(1e-5).sqrt()
    assert called == []


def test_assert_close_compares_numbers_in_float64_and_checks_the_form():
    with pytest.raises(AssertionError, match="differs"):
        assert_close("number", 1 + 1e-8, 1.0, atol=1e-12)
    assert_close("number", 1 + 1e-13, 1.0, atol=1e-12)
    with pytest.raises(AssertionError, match="dtype torch.float32, expected torch.float64"):
        assert_close("dtype", torch.ones(2), torch.ones(2, dtype=torch.float64))
    with pytest.raises(AssertionError, match="expected a Python number"):
        assert_close("type", torch.tensor(1.0), 1.0)
    with pytest.raises(AssertionError, match="expected a tensor"):
        assert_close("type", 1.0, torch.tensor(1.0))
    with pytest.raises(AssertionError, match="take the norm"):
        assert_close("mistake", torch.zeros(2), torch.ones(2), mistakes={"take the norm": torch.zeros(2)})
    with pytest.raises(AssertionError, match="NaN"):
        assert_close("nan", torch.tensor([float("nan")]), torch.tensor([0.0]), atol=1)
    with pytest.raises(AssertionError, match="shape"):
        check_form("form", torch.ones(2, 1), shape=(2,))
    with pytest.raises(AssertionError, match="expected True"):
        assert_equal("bool", 1, True)


def test_group_prints_one_line_for_its_checks(capsys):
    with group("title"):
        assert_close("a", 1.0, 1.0)
        assert_close("b", 2.0, 2.0)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("title: ") and out.endswith(" checks OK\n")
    with pytest.raises(AssertionError), group("failing"):
        assert_close("c", 1.0, 2.0)
    assert capsys.readouterr().out == ""


def test_snapshot_names_in_place_changes_modes_hooks_and_buffers():
    x = torch.ones(3)
    snapshot = Snapshot(x=x)
    x.add_(0)
    with pytest.raises(AssertionError, match="version counter"):
        snapshot.assert_unchanged("f")
    snapshot.assert_unchanged("f", versions=False)
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)).eval()
    for change, phrase in [
        (lambda m: m.train(), "left model in train mode"),
        (lambda m: m[0].register_forward_hook(lambda *a: None), "hooks"),
        (lambda m: [m.train()(torch.randn(4, 2)), m.eval()], "buffer"),
        (lambda m: m[0].weight.data.mul_(2), "values of model.0.weight"),
        (lambda m: m[0].weight.requires_grad_(False), "requires_grad"),
    ]:
        fresh = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)).eval()
        snapshot = Snapshot(model=fresh)
        change(fresh)
        with pytest.raises(AssertionError, match=phrase):
            snapshot.assert_unchanged("f")
    Snapshot(model=model).assert_unchanged("f")


def test_student_lending_restores_exactly_what_was_there():
    namespace = {"pgd": "theirs"}
    student = Student(namespace)
    with student.lending(pgd="ours", extra=1):
        assert namespace == {"pgd": "ours", "extra": 1}
    assert namespace == {"pgd": "theirs"}
    with pytest.raises(AssertionError, match="`missing` is not defined"):
        student["missing"]


def test_call_names_the_case_and_expect_raises():
    label = case("f", torch.zeros(2, 3, dtype=torch.float64), eps=0.1)
    assert label == "f(tensor float64 (2, 3) on cpu, eps=0.1)"
    with pytest.raises(AssertionError, match=r"f\(.*\) raised ZeroDivisionError: .* The contract: be kind"):
        call(label, lambda *a, **k: 1 / 0, 1, contract="be kind")
    expect_raises("g", ValueError, int, "x")
    with pytest.raises(AssertionError, match="must raise ValueError"):
        expect_raises("g", ValueError, int, "1")


def test_layouts_keep_values_and_change_strides():
    x = torch.randn(2, 3, 4, 5)
    seen = {name for name, _ in layouts(x)}
    assert seen == {
        "contiguous",
        "non-contiguous (strided view)",
        "non-contiguous (transposed storage)",
        "channels_last",
    }
    for name, variant in layouts(x):
        assert torch.equal(variant, x)
        assert name == "contiguous" or not variant.is_contiguous()
    assert not non_contiguous(torch.ones(3, 2)).is_contiguous()


def test_models_differ_in_train_and_eval_mode():
    model = mode_sensitive_mlp(4, 3)
    x = torch.randn(5, 4, dtype=torch.float64)
    assert not torch.allclose(model.train()(x), model.eval()(x))
    assert torch.equal(TrainEvalGap().eval()(x), x)


def test_for_all_draws_the_same_cases_every_time():
    draws = [[], []]
    for seen in draws:
        for_all(st.integers(0, 1000), seen.append, examples=10)
    assert draws[0] == draws[1] and len(draws[0]) == 10


def test_forbidden_calls_tell_decorated_functions_apart():
    parameter = torch.zeros(3, requires_grad=True)
    parameter.grad = torch.ones(3)
    forbidden = {torch.nn.utils.clip_grad_norm_: "clip_grad_norm_"}
    with forbidden_calls(forbidden) as called:
        torch.nn.utils.clip_grad_value_([parameter], 1.0)  # shares clip_grad_norm_'s decorator
    assert called == []
    with forbidden_calls(forbidden) as called:
        torch.nn.utils.clip_grad_norm_([parameter], 1.0)
    assert called == ["clip_grad_norm_"]


def test_forbidden_calls_see_a_class_that_is_pytorchs_but_not_a_lent_helper():
    x = torch.randn(4, 3)
    forbidden = {nn.modules.batchnorm._BatchNorm.forward: "nn.BatchNorm"}
    alias = nn.BatchNorm1d  # a student's `BatchNorm1d = nn.BatchNorm1d`: no frame of the student's at all
    with forbidden_calls(forbidden) as called:
        alias(3)(x)
    assert called == ["nn.BatchNorm"]

    def lent_helper(t):
        return nn.BatchNorm1d(3)(t)

    namespace = {"helper": None}
    with Student(namespace).lending(helper=lent_helper), forbidden_calls(forbidden) as called:
        namespace["helper"](x)  # the answer calls the lent helper, which may use PyTorch's code
    assert called == []
