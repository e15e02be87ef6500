"""Visible checks of batch normalization against PyTorch's (lab 3)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from dlcourse.checks.core import check_close, check_true, one_line


def normalise(
    x: torch.Tensor,
    dims: list[int],
    eps: float,
    unbiased: bool = False,
    eps_inside: bool = True,
    detach_statistics: bool = False,
) -> torch.Tensor:
    """(x - mean) / sqrt(var + eps) with statistics over ``dims``: the reference and its known mistakes."""
    source = x.detach() if detach_statistics else x
    mean = source.mean(dim=dims, keepdim=True)
    var = source.var(dim=dims, keepdim=True, unbiased=unbiased)
    return (x - mean) / (torch.sqrt(var + eps) if eps_inside else torch.sqrt(var) + eps)


def with_affine(y: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None) -> torch.Tensor:
    """y * weight + bias per channel (dimension 1); a missing weight or bias is left out."""
    shape = [1, -1] + [1] * (y.dim() - 2)
    y = y if weight is None else y * weight.reshape(shape)
    return y if bias is None else y + bias.reshape(shape)


def check_batch_norm(
    name: str,
    batch_norm: Callable[..., torch.Tensor],
    x: torch.Tensor,
    running_mean: torch.Tensor | None = None,
    running_var: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
    seed: int = 0,
) -> None:
    """Compare ``batch_norm`` with ``torch.nn.functional.batch_norm`` on copies of the same arguments.

    Checks the output, the running statistics afterwards (updated in place in training, unchanged
    in evaluation) and the gradients of a random linear function of the output with respect to x,
    weight and bias. Known mistakes are named: the unbiased variance used to normalise, statistics
    over the wrong axes, eps outside the square root, batch statistics in evaluation, the momentum
    convention reversed, the biased variance stored in running_var, detached batch statistics.
    Tolerance: 1e-9 in float64, 1e-4 in float32 (absolute and relative).
    """
    tol = 1e-9 if x.dtype == torch.float64 else 1e-4
    gen = torch.Generator().manual_seed(seed)
    upstream = torch.randn(x.shape, generator=gen, dtype=torch.float64).to(x.device, x.dtype)

    def copy(t, grad=False):
        return None if t is None else t.detach().clone().requires_grad_(grad)

    def run(function, **extra):
        inputs = {"x": copy(x, True), "weight": copy(weight, weight is not None), "bias": copy(bias, bias is not None)}
        stats = copy(running_mean), copy(running_var)
        out = function(
            inputs["x"],
            *stats,
            inputs["weight"],
            inputs["bias"],
            training=training,
            momentum=momentum,
            eps=eps,
            **extra,
        )
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise AssertionError(f"{name}: the output must be a tensor of x's shape {tuple(x.shape)}, got {got}")
        (out * upstream).sum().backward()
        grads = {key: t.grad for key, t in inputs.items() if t is not None}
        return out.detach(), stats, grads

    out, (mean_after, var_after), grads = run(batch_norm)
    ref, (ref_mean_after, ref_var_after), ref_grads = run(torch.nn.functional.batch_norm)

    dims = [0] + list(range(2, x.dim()))

    def affine(y: torch.Tensor) -> torch.Tensor:
        return with_affine(y, copy(weight), copy(bias))

    def frozen_statistics(x, running_mean, running_var, weight=None, bias=None, **_):
        # the known mistake of treating the batch statistics as constants
        return with_affine(normalise(x, dims, eps, detach_statistics=True), weight, bias)

    xd = x.detach()
    if training:
        mistakes = {
            "the batch is normalised with the unbiased variance (divide by n - 1); use the biased one "
            "(divide by n), as torch does": affine(normalise(xd, dims, eps, unbiased=True)),
            "eps belongs inside the square root: (x - mean) / sqrt(var + eps)": affine(
                normalise(xd, dims, eps, eps_inside=False)
            ),
            "the statistics are per channel: reduce over every dimension except dimension 1 (N, H and W for "
            "(N, C, H, W) input)": affine(normalise(xd, [0], eps)),
            "these are statistics of each example (as in layer norm); batch norm takes them per channel over "
            "the batch": affine(normalise(xd, list(range(1, x.dim())), eps)),
        }
    else:
        mistakes = {
            "with training=False normalise with running_mean and running_var, not the statistics of the batch": affine(
                normalise(xd, dims, eps)
            )
        }
    check_close(f"{name}: output", out, ref, atol=tol, rtol=tol, mistakes=mistakes)

    if running_mean is not None:
        n = x.numel() // x.shape[1]
        batch_mean, batch_var = xd.mean(dim=dims), xd.var(dim=dims, unbiased=False)
        if training:
            mean_mistakes = {
                "momentum convention reversed: torch keeps (1 - momentum) of the old estimate, "
                "running = (1 - momentum) * running + momentum * batch statistic": momentum * running_mean
                + (1 - momentum) * batch_mean,
                "running_mean was not updated in place (e.g. running_mean.mul_(...).add_(...))": running_mean,
            }
            var_mistakes = {
                "running_var stores the unbiased variance of the batch (n / (n - 1) times the biased one)": (
                    (1 - momentum) * running_var + momentum * batch_var
                ),
                "momentum convention reversed: running = (1 - momentum) * running + momentum * batch statistic": (
                    momentum * running_var + (1 - momentum) * batch_var * n / max(n - 1, 1)
                ),
                "running_var was not updated in place": running_var,
            }
        else:
            mean_mistakes = var_mistakes = {}
        after = "after training=True" if training else "unchanged by training=False"
        check_close(f"{name}: running_mean {after}", mean_after, ref_mean_after, tol, tol, mean_mistakes)
        check_close(f"{name}: running_var {after}", var_after, ref_var_after, tol, tol, var_mistakes)

    detached = {}
    if training:
        # the gradient a student gets when the batch statistics are treated as constants
        _, _, detached = run(frozen_statistics)
    for key, ref_grad in ref_grads.items():
        mistake = {}
        if key == "x" and "x" in detached:
            mistake = {
                "the gradient treats the batch mean and variance as constants; they depend on x, so do not detach "
                "them or compute them under torch.no_grad()": detached["x"]
            }
        got = grads.get(key)
        if got is None:
            raise AssertionError(
                f"{name}: no gradient reached {key}; compute the output from it with tensor operations"
            )
        check_close(f"{name}: gradient with respect to {key}", got, ref_grad, atol=tol, rtol=tol, mistakes=mistake)


def check_batch_norm_module(
    name: str, module: nn.Module, reference: nn.Module, shape: tuple[int, ...], steps: int = 3, seed: int = 0
) -> None:
    """Compare a batch-norm module with PyTorch's (``reference``, same device and dtype).

    Checks the state_dict layout and initial values (weight and bias as parameters, the running
    statistics and ``num_batches_tracked`` as buffers), the output of the fresh module in eval
    mode, then ``steps`` training batches (outputs, gradients of x, weight and bias, every buffer),
    then eval mode (outputs, state unchanged), and that PyTorch's state_dict loads.
    """
    with one_line(f"{name}: state_dict layout, parameters and buffers, initial values"):
        expected = {key: (tuple(value.shape), value.dtype) for key, value in reference.state_dict().items()}
        got = {key: (tuple(value.shape), value.dtype) for key, value in module.state_dict().items()}
        check_true(f"{name}: state_dict layout", got == expected, f"the state_dict must hold {expected}, got {got}")
        check_true(
            f"{name}: parameters",
            sorted(key for key, _ in module.named_parameters()) == ["bias", "weight"],
            "weight and bias must be nn.Parameters; running_mean, running_var and num_batches_tracked are buffers "
            "(self.register_buffer)",
        )
        for key, value in reference.state_dict().items():
            check_close(f"{name}: initial {key}", module.state_dict()[key], value, atol=0, rtol=0)
    parameter = next(reference.parameters())
    gen = torch.Generator().manual_seed(seed)

    def random(*size: int) -> torch.Tensor:
        return torch.randn(*size, generator=gen, dtype=torch.float64).to(parameter.device, parameter.dtype)

    tol = 1e-9 if parameter.dtype == torch.float64 else 1e-4
    module.eval(), reference.eval()
    x = random(*shape)
    with torch.no_grad():
        check_close(f"{name}: fresh module in eval mode", module(x), reference(x), tol, tol)
    with torch.no_grad():
        reference.weight.copy_(random(shape[1]) + 1)
        reference.bias.copy_(random(shape[1]))
    module.load_state_dict(reference.state_dict())
    module.train(), reference.train()
    momentum = reference.momentum
    dims = [0] + list(range(2, len(shape)))
    for step in range(1, steps + 1):
        with one_line(f"{name}: training batch {step}: output, gradients of x, weight and bias, buffers"):
            x = 2 * random(*shape) + 1
            old_mean, batch_mean = reference.running_mean.clone(), x.mean(dim=dims)
            inputs = [x.clone().requires_grad_(True) for _ in range(2)]
            upstream = random(*shape)
            outputs = [m(inp) for m, inp in zip((module, reference), inputs, strict=True)]
            for m, out in zip((module, reference), outputs, strict=True):
                m.zero_grad()
                (out * upstream).sum().backward()
            with torch.no_grad():
                in_eval_mode = reference.eval()(x)
            reference.train()
            check_close(
                f"{name}: training batch {step}: output",
                outputs[0],
                outputs[1],
                tol,
                tol,
                {"in training mode normalise with the batch's statistics: pass training=self.training": in_eval_mode},
            )
            check_close(f"{name}: training batch {step}: gradient of x", inputs[0].grad, inputs[1].grad, tol, tol)
            for key in ("weight", "bias"):
                got_grad = getattr(module, key).grad
                check_true(f"{name}: gradient of {key}", got_grad is not None, f"{key} must take part in the output")
                check_close(
                    f"{name}: training batch {step}: gradient of {key}",
                    got_grad,
                    getattr(reference, key).grad,
                    tol,
                    tol,
                )
            mean_mistakes = {}
            if momentum is not None:
                mean_mistakes = {
                    f"the new batch mean must get the weight momentum = {momentum} and the old estimate "
                    f"1 - momentum (PyTorch's convention; Keras' momentum=0.99 is PyTorch's 0.01)": (
                        momentum * old_mean + (1 - momentum) * batch_mean
                    ),
                    "momentum=0.99 is Keras' convention; PyTorch's default is momentum=0.1, the weight of the new "
                    "batch": 0.01 * old_mean + 0.99 * batch_mean,
                }
            for key in ("running_mean", "running_var", "num_batches_tracked"):
                check_close(
                    f"{name}: after training batch {step}: {key}",
                    module.state_dict()[key],
                    reference.state_dict()[key],
                    tol,
                    tol,
                    mean_mistakes if key == "running_mean" else None,
                )
    module.eval(), reference.eval()
    state = {key: value.clone() for key, value in module.state_dict().items()}
    x = random(*shape)
    with one_line(f"{name}: eval mode after training: output, state unchanged"), torch.no_grad():
        check_close(f"{name}: eval mode after training: output", module(x), reference(x), tol, tol)
        for key, value in module.state_dict().items():
            check_true(
                f"{name}: eval mode leaves {key} alone",
                torch.equal(value, state[key]),
                "in eval mode the module must not change its state (running statistics, num_batches_tracked)",
            )
