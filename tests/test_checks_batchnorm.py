"""Visible checks of batch normalization (dlcourse.checks.batchnorm), and the battery's lent batch_norm."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlcourse import checks
from dlcourse.checks.batchnorm import torch_batch_norm, with_torch_batch_norm


def vectors(channels, dtype=torch.float64):
    gen = torch.Generator().manual_seed(1)
    return [(torch.rand(channels, generator=gen, dtype=torch.float64) + 0.5).to(dtype) for _ in range(4)]


@pytest.mark.parametrize("shape", [(16, 4), (6, 3, 5, 5), (1, 2, 3, 3)])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("passing", ["keywords", "positional", "defaults"])
def test_check_batch_norm_accepts_torch(shape, training, passing):
    x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    checks.check_batch_norm("torch", torch_batch_norm, x, *vectors(shape[1]), training=training, passing=passing)


@pytest.mark.parametrize(
    "layout",
    [
        lambda x: x.transpose(0, 1).contiguous().transpose(0, 1),
        lambda x: x.contiguous(memory_format=torch.channels_last),
        lambda x: torch.cat([x, x], dim=-1)[..., ::2],
    ],
)
def test_check_batch_norm_keeps_the_layout_of_x(layout):
    seen = []

    def batch_norm(x, *args, **kwargs):
        seen.append(x.stride())
        return F.batch_norm(x, *args, **kwargs)

    x = layout(torch.randn(4, 3, 2, 5, dtype=torch.float64))
    checks.check_batch_norm("layout", batch_norm, x, *vectors(3), training=True)
    assert seen == [x.stride()]


def test_check_batch_norm_float32_is_compared_with_float64():
    x = torch.randn(64, 5, generator=torch.Generator().manual_seed(0)) + 1000
    checks.check_batch_norm("far from zero", F.batch_norm, x, *vectors(5, torch.float32), training=True, tol=2e-3)


def batch_norm_with(update=None, var_of=None, modify_x=False, output_dtype=None):
    """A batch_norm in training mode with one aspect changed."""

    def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
        dims = [0] + list(range(2, x.dim()))
        mean = x.mean(dim=dims, keepdim=True)
        var = var_of(x, dims) if var_of else x.var(dim=dims, keepdim=True, unbiased=False)
        if running_mean is not None:
            n = x.numel() // x.shape[1]
            (update or correct_update)(running_mean, running_var, mean.flatten(), var.flatten() * n / (n - 1), momentum)
        y = (x - mean) / torch.sqrt(var + eps)
        if modify_x:
            x.data.mul_(2)
        return y if output_dtype is None else y.to(output_dtype)

    return batch_norm


def correct_update(running_mean, running_var, mean, var, momentum):
    with torch.no_grad():
        running_mean.mul_(1 - momentum).add_(momentum * mean)
        running_var.mul_(1 - momentum).add_(momentum * var)


def data_swap(running_mean, running_var, mean, var, momentum):
    running_mean.data = ((1 - momentum) * running_mean + momentum * mean).detach()
    running_var.data = ((1 - momentum) * running_var + momentum * var).detach()


def recorded(running_mean, running_var, mean, var, momentum):
    running_mean.mul_(1 - momentum).add_(momentum * mean)
    running_var.mul_(1 - momentum).add_(momentum * var)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (batch_norm_with(update=data_swap), "running_mean got new storage"),
        (batch_norm_with(update=recorded), "running_mean became part of the autograd graph"),
        (batch_norm_with(modify_x=True), "x was modified in place"),
        (batch_norm_with(output_dtype=torch.float32), "keep x's dtype"),
        (
            batch_norm_with(var_of=lambda x, dims: x.detach().var(dim=dims, keepdim=True, unbiased=False)),
            "gradient with respect to x: result differs",
        ),
    ],
)
def test_check_batch_norm_rejects_broken_promises(wrong, message):
    x = torch.randn(8, 3, dtype=torch.float64)
    running_mean, running_var = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    checks.check_batch_norm("correct", batch_norm_with(), x, running_mean, running_var, training=True)
    with pytest.raises(AssertionError, match=message):
        checks.check_batch_norm("wrong", wrong, x, running_mean, running_var, training=True)


def test_check_batch_norm_rejects_writing_the_running_statistics_back_in_eval():
    def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
        running_mean.copy_(running_mean)
        return F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)

    with pytest.raises(AssertionError, match="running_mean was modified in place"):
        checks.check_batch_norm("eval", batch_norm, torch.randn(5, 2, dtype=torch.float64), *vectors(2))


def test_mistakes_hook_is_asked_only_for_wrong_quantities_and_names_the_mistake():
    asked = []

    def mistakes(quantity, case):
        asked.append(quantity)
        unbiased = batch_norm_with(var_of=lambda x, dims: x.var(dim=dims, keepdim=True))
        return {"the unbiased variance": case.run(unbiased).output.detach()}

    x = torch.randn(8, 3, dtype=torch.float64)
    checks.check_batch_norm("correct", F.batch_norm, x, training=True, mistakes=mistakes)
    assert asked == []
    wrong = batch_norm_with(var_of=lambda x, dims: x.var(dim=dims, keepdim=True))
    with pytest.raises(AssertionError, match="output: the unbiased variance"):
        checks.check_batch_norm("unbiased", wrong, x, training=True, mistakes=mistakes)
    assert asked == ["output"]


def test_check_batch_norm_module_accepts_torch():
    checks.check_batch_norm_module("torch 1d", nn.BatchNorm1d(3).double(), nn.BatchNorm1d(3).double(), (8, 3))
    checks.check_batch_norm_module(
        "torch 2d", nn.BatchNorm2d(3, momentum=None), nn.BatchNorm2d(3, momentum=None), [(4, 3, 2, 2), (1, 3, 3, 2)]
    )


def test_check_batch_norm_module_rejects_other_momenta_and_layouts_and_asks_the_hook():
    def keras(quantity, values):
        return {"Keras' momentum": 0.01 * values["before"] + 0.99 * values["batch"]}

    with pytest.raises(AssertionError, match="running_mean: Keras' momentum"):
        checks.check_batch_norm_module(
            "keras", nn.BatchNorm1d(3, momentum=0.99), nn.BatchNorm1d(3), (8, 3), mistakes=keras
        )
    with pytest.raises(AssertionError, match="state_dict layout"):
        checks.check_batch_norm_module(
            "untracked", nn.BatchNorm1d(3, track_running_stats=False), nn.BatchNorm1d(3), (8, 3)
        )


def test_with_torch_batch_norm_restores_the_name():
    def mine(*args, **kwargs):
        raise NotImplementedError

    namespace = {"batch_norm": mine}
    with with_torch_batch_norm(namespace):
        assert namespace["batch_norm"] is torch_batch_norm
    assert namespace["batch_norm"] is mine
    empty = {}
    with with_torch_batch_norm(empty):
        pass
    assert empty == {}


def test_lent_batch_norm_records_calls_and_its_torch_calls_are_not_forbidden():
    from autograder.battery.batchnorm import FORBIDDEN, LentBatchNorm
    from autograder.battery.forbidden import forbidden_calls, lent_helpers

    lent = LentBatchNorm()
    module = nn.BatchNorm1d(3)
    x = torch.randn(6, 3)
    with lent_helpers(lent), forbidden_calls(FORBIDDEN) as called:
        out = lent(x, module.running_mean, module.running_var, module.weight, module.bias, True, 0.5, 1e-3)
    assert called == []
    assert torch.allclose(out, F.batch_norm(x, None, None, module.weight, module.bias, True, 0.5, 1e-3))
    assert lent.calls[0]["training"] is True and lent.calls[0]["momentum"] == 0.5
    with forbidden_calls(FORBIDDEN) as called:
        module(x)
    assert "nn.BatchNorm1d/nn.BatchNorm2d" in called and "torch.nn.functional.batch_norm" in called


# ---------------------------------------------------------------- the backward pass by hand


def backward_by_hand(grad_out, x, weight, eps, *, wrong_dtype=False, keep_history=False, centre_x_in_place=False):
    """The closed form of batch norm's gradients in training mode, with one promise broken on request."""
    dims = [0, *range(2, x.dim())]
    shape = [1, -1] + [1] * (x.dim() - 2)
    g, x_, w = (grad_out, x, weight) if keep_history else (grad_out.detach(), x.detach(), weight.detach())
    n = x.numel() // x.shape[1]
    std = torch.sqrt(x_.var(dim=dims, unbiased=False, keepdim=True) + eps)
    x_hat = (x_ - x_.mean(dim=dims, keepdim=True)) / std
    sum_g, sum_g_x_hat = g.sum(dim=dims, keepdim=True), (g * x_hat).sum(dim=dims, keepdim=True)
    grad_x = w.reshape(shape) / (n * std) * (n * g - sum_g - x_hat * sum_g_x_hat)
    if centre_x_in_place:
        x_.sub_(x_.mean(dim=dims, keepdim=True))
    result = (grad_x, sum_g_x_hat.reshape(-1), sum_g.reshape(-1))
    return tuple(t.float() for t in result) if wrong_dtype else result


def backward_case(shape, dtype=torch.float64):
    gen = torch.Generator().manual_seed(3)
    x = (2 * torch.randn(shape, generator=gen, dtype=torch.float64) + 1).to(dtype)
    grad_out = (torch.randn(shape, generator=gen, dtype=torch.float64) + 0.5).to(dtype)
    weight = (torch.rand(shape[1], generator=gen, dtype=torch.float64) + 0.5).to(dtype)
    return grad_out, x, weight


@pytest.mark.parametrize("shape", [(16, 4), (2, 3), (4, 3, 5, 5), (1, 2, 3, 3)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("passing", ["positional", "keywords"])
def test_check_batch_norm_backward_accepts_the_closed_form(shape, dtype, passing):
    from dlcourse.checks.batchnorm import check_batch_norm_backward

    check_batch_norm_backward("closed form", backward_by_hand, *backward_case(shape, dtype), 1e-3, passing=passing)


def test_check_batch_norm_backward_keeps_layouts_and_requires_grad():
    from dlcourse.checks.batchnorm import check_batch_norm_backward

    seen = []

    def watching(grad_out, x, weight, eps):
        seen.append((x.stride(), x.requires_grad, weight.requires_grad))
        return backward_by_hand(grad_out, x, weight, eps)

    grad_out, x, weight = backward_case((4, 3, 2, 5))
    x = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    check_batch_norm_backward("layout", watching, grad_out, x, weight.requires_grad_(True))
    assert seen == [(x.stride(), True, True)]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"wrong_dtype": True}, "grad_x shape, dtype and device"),
        ({"keep_history": True}, "grad_x records no autograd history"),
        ({"centre_x_in_place": True}, "x left alone"),
    ],
)
def test_check_batch_norm_backward_rejects_broken_promises(options, message):
    from dlcourse.checks.batchnorm import check_batch_norm_backward

    grad_out, x, weight = backward_case((8, 3))
    with pytest.raises(AssertionError, match=message):
        check_batch_norm_backward(
            "wrong", lambda *a: backward_by_hand(*a, **options), grad_out, x.requires_grad_(True), weight
        )


def test_check_batch_norm_backward_asks_the_hook_only_for_wrong_quantities():
    from dlcourse.checks.batchnorm import check_batch_norm_backward

    asked = []

    def mistakes(quantity, arguments):
        asked.append(quantity)
        grad_out, x, weight, eps = arguments
        return {"the mean of grad_out": grad_out.mean(dim=0)}

    def mean_bias(*arguments):
        grad_x, grad_weight, grad_bias = backward_by_hand(*arguments)
        return grad_x, grad_weight, arguments[0].mean(dim=0)

    check_batch_norm_backward("right", backward_by_hand, *backward_case((8, 3)), mistakes=mistakes)
    assert asked == []
    with pytest.raises(AssertionError, match="grad_bias: the mean of grad_out"):
        check_batch_norm_backward("wrong", mean_bias, *backward_case((8, 3)), mistakes=mistakes)
    assert asked == ["grad_bias"]
    with pytest.raises(AssertionError, match="returns \\(grad_x, grad_weight, grad_bias\\)"):
        check_batch_norm_backward("two", lambda *a: backward_by_hand(*a)[:2], *backward_case((8, 3)))
