"""The hidden tests of lab 3's backward pass by hand (autograder.battery.batchnorm): the closed form and its
known mistakes, correct styles accepted, autograd and in-place changes and CPU tensors caught."""

import contextlib
import io

import pytest
import torch
import torch.nn.functional as F

from autograder.battery.batchnorm import (
    AUTOGRAD,
    BACKWARD_CASES,
    backward_arguments,
    backward_mistakes,
    batch_norm_gradients,
    check_batch_norm_backward_pass,
    compare_backward,
    gradients_by_formula,
)


def closed_form(grad_out, x, weight, eps):
    dims = [0, *range(2, x.dim())]
    shape = [1, -1] + [1] * (x.dim() - 2)
    g, x = grad_out.detach(), x.detach()
    n = x.numel() // x.shape[1]
    std = torch.sqrt(x.var(dim=dims, unbiased=False, keepdim=True) + eps)
    x_hat = (x - x.mean(dim=dims, keepdim=True)) / std
    sum_g, sum_g_x_hat = g.sum(dim=dims, keepdim=True), (g * x_hat).sum(dim=dims, keepdim=True)
    grad_x = weight.detach().reshape(shape) / (n * std) * (n * g - sum_g - x_hat * sum_g_x_hat)
    return grad_x, sum_g_x_hat.reshape(-1), sum_g.reshape(-1)


def in_float64(grad_out, x, weight, eps):
    result = closed_form(grad_out.double(), x.double(), weight.double(), eps)
    return tuple(tensor.to(x.dtype) for tensor in result)


def with_autograd(grad_out, x, weight, eps):
    x = x.detach().requires_grad_(True)
    weight = weight.detach().requires_grad_(True)
    with torch.enable_grad():
        y = F.batch_norm(x, None, None, weight, torch.zeros_like(weight), training=True, eps=eps)
        (grad_x, grad_weight) = torch.autograd.grad(y, (x, weight), grad_out)
    dims = [0, *range(2, x.dim())]
    return grad_x, grad_weight, grad_out.sum(dim=dims)


def own_autograd(grad_out, x, weight, eps):
    """Autograd through an own normalisation: no forbidden batch norm, but autograd all the same."""
    dims = [0, *range(2, x.dim())]
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        x_hat = (x - x.mean(dim=dims, keepdim=True)) / torch.sqrt(x.var(dim=dims, unbiased=False, keepdim=True) + eps)
        (x_hat * weight.detach().reshape([1, -1] + [1] * (x.dim() - 2))).backward(grad_out)
    return x.grad, (grad_out * x_hat.detach()).sum(dim=dims), grad_out.sum(dim=dims)


def keeping_history(grad_out, x, weight, eps):
    dims = [0, *range(2, x.dim())]
    x_hat = (x - x.mean(dim=dims, keepdim=True)) / torch.sqrt(x.var(dim=dims, unbiased=False, keepdim=True) + eps)
    n = x.numel() // x.shape[1]
    view = weight.reshape([1, -1] + [1] * (x.dim() - 2))
    sum_g, sum_g_x_hat = grad_out.sum(dim=dims, keepdim=True), (grad_out * x_hat).sum(dim=dims, keepdim=True)
    grad_x = view / n / torch.sqrt(x.var(dim=dims, unbiased=False, keepdim=True) + eps)
    return grad_x * (n * grad_out - sum_g - x_hat * sum_g_x_hat), sum_g_x_hat.reshape(-1), sum_g.reshape(-1)


def centring_in_place(grad_out, x, weight, eps):
    result = closed_form(grad_out, x, weight, eps)
    x.detach().sub_(x.detach().mean(dim=[0, *range(2, x.dim())], keepdim=True))
    return result


def bias_made_on_the_cpu(grad_out, x, weight, eps):
    grad_x, grad_weight, grad_bias = closed_form(grad_out, x, weight, eps)
    return grad_x, grad_weight, torch.zeros(x.shape[1], dtype=x.dtype) + grad_bias


def quietly(check, *args, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()):
        check(*args, **kwargs)


@pytest.mark.parametrize("shape", [(8, 3), (2, 5), (1, 3, 2, 2), (3, 4, 3, 5)])
@pytest.mark.parametrize("eps", [1e-5, 0.1])
def test_the_closed_form_is_autograds(shape, eps):
    arguments = backward_arguments(shape, 7, torch.float64, "cpu")
    for got, wanted in zip(gradients_by_formula(*arguments, eps), batch_norm_gradients(*arguments, eps), strict=True):
        torch.testing.assert_close(got, wanted, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("answer", [closed_form, in_float64], ids=["closed form", "float64 inside"])
def test_the_battery_passes_correct_answers(answer):
    quietly(check_batch_norm_backward_pass, {"batch_norm_backward": answer})


def test_no_diagnosis_fits_the_right_gradients():
    """Every known mistake differs from the right gradients by far more than the tolerance on the battery's cases
    (a diagnosis is only looked for when a result is wrong, but it must never name a right one)."""
    for seed, (shape, eps, _) in enumerate(BACKWARD_CASES):
        arguments = backward_arguments(shape, seed, torch.float64, "cpu")
        right = dict(zip(("grad_x", "grad_weight", "grad_bias"), gradients_by_formula(*arguments, eps), strict=True))
        for quantity, wanted in right.items():
            for diagnosis, value in backward_mistakes(quantity, (*arguments, eps)).items():
                if value.shape == wanted.shape:
                    gap = (value - wanted).abs().max().item()
                    assert gap > 1e-6, f"{shape}: {quantity}: {diagnosis} is within {gap:.1e} of the right value"


@pytest.mark.parametrize(
    "answer, message",
    [
        (with_autograd, "called .*torch.autograd.grad"),
        (own_autograd, "called Tensor.backward"),
        (centring_in_place, "x left alone"),
    ],
)
def test_autograd_and_changed_inputs_fail(answer, message):
    arguments = backward_arguments((6, 3), 1, torch.float64, "cpu")
    with pytest.raises(AssertionError, match=message):
        quietly(compare_backward, answer, *arguments)


def test_results_with_autograd_history_fail_when_the_inputs_require_grad():
    grad_out, x, weight = backward_arguments((6, 3, 2, 2), 1, torch.float64, "cpu")
    quietly(compare_backward, keeping_history, grad_out, x, weight)
    with pytest.raises(AssertionError, match="grad_x records no autograd history"):
        quietly(compare_backward, keeping_history, grad_out, x.requires_grad_(True), weight)


def test_a_tensor_made_on_the_cpu_fails_on_the_simulated_gpu():
    with pytest.raises(AssertionError, match="on a simulated GPU|made on the CPU"):
        quietly(check_batch_norm_backward_pass, {"batch_norm_backward": bias_made_on_the_cpu})


@pytest.mark.parametrize(
    "options, message",
    [
        ({"mean_term": 0, "var_term": 0}, "treated as constants"),
        ({"unbiased": True}, "biased one"),
        ({"eps_inside": False}, "inside the square root"),
        ({"weight_factor": False}, "factor weight"),
        ({"count": 2}, "not the batch size"),
    ],
)
def test_known_mistakes_are_named(options, message):
    def wrong(grad_out, x, weight, eps):
        return tuple(t.to(x.dtype) for t in gradients_by_formula(grad_out, x, weight, eps, **options))

    arguments = backward_arguments((2, 3, 2, 3), 4, torch.float64, "cpu")
    with pytest.raises(AssertionError, match=message):
        quietly(compare_backward, wrong, *arguments)


def test_the_forbidden_autograd_functions_resolve_by_name_in_the_kernel():
    from autograder.remote.client import qualified_name, resolve_here

    for function in AUTOGRAD:
        assert resolve_here(qualified_name(function)) is function
