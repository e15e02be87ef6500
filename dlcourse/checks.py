"""Visible checks for labs: each prints its measurement next to the tolerance.

A passing check prints one line such as
``standardize: max |error| = 2.4e-07 (tolerance 1.0e-05)  OK``; a failing one
raises ``AssertionError`` with a message that says what to fix.
"""

from __future__ import annotations

import contextlib
import io
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn


def as_cpu_float64(value, name: str) -> torch.Tensor:
    if value is None:
        raise AssertionError(f"{name}: got None; did the function forget to `return` its result?")
    if not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as error:
            raise AssertionError(f"{name}: expected a tensor, got {type(value).__name__}") from error
    return value.detach().to("cpu", torch.float64)


def is_close(actual: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float) -> bool:
    """Same shape and ``|actual - expected| <= atol + rtol * |expected|`` everywhere."""
    if actual.shape != expected.shape:
        return False
    return bool(((actual - expected).abs() <= atol + rtol * expected.abs()).all())


def check_close(
    name: str,
    actual,
    expected,
    atol: float = 1e-6,
    rtol: float = 1e-5,
    mistakes: Mapping[str, Any] | None = None,
) -> float:
    """Assert ``|actual - expected| <= atol + rtol * |expected|`` elementwise.

    Works for tensors on any device and for numbers; prints and returns the
    largest absolute error. ``mistakes`` maps a diagnosis to the value a known
    mistake produces: when ``actual`` fails but matches one, the error names it.
    """
    actual_t = as_cpu_float64(actual, name)
    expected_t = as_cpu_float64(expected, name)
    if actual_t.shape != expected_t.shape:
        raise AssertionError(f"{name}: shape {tuple(actual_t.shape)} but expected {tuple(expected_t.shape)}")
    if not torch.isfinite(actual_t).all():
        raise AssertionError(f"{name}: result contains NaN or infinity")
    error = (actual_t - expected_t).abs()
    max_error = error.max().item() if error.numel() else 0.0
    ok = is_close(actual_t, expected_t, atol, rtol)
    print(
        f"{name}: max |error| = {max_error:.1e} (tolerance {atol:.1e} + {rtol:.0e}*|expected|)  "
        f"{'OK' if ok else 'FAILED'}"
    )
    if not ok:
        for diagnosis, value in (mistakes or {}).items():
            if is_close(actual_t, as_cpu_float64(value, name), atol, rtol):
                raise AssertionError(f"{name}: {diagnosis}")
        raise AssertionError(
            f"{name}: result differs from the expected value by up to {max_error:.3g}, "
            f"more than the tolerance {atol:.1e} + {rtol:.0e}*|expected|"
        )
    return max_error


def check_true(name: str, condition: bool, message: str) -> None:
    """Assert a condition; print ``name: OK`` or raise with ``message``."""
    if not condition:
        print(f"{name}: FAILED")
        raise AssertionError(f"{name}: {message}")
    print(f"{name}: OK")


@contextlib.contextmanager
def quiet():
    """Run test code with warnings silenced and stderr sent to stdout.

    nbgrader scores a test cell zero when it writes to stderr, so a harmless
    warning raised inside a student's function must not cost points.
    """
    with warnings.catch_warnings(), contextlib.redirect_stderr(sys.stdout):
        warnings.simplefilter("ignore")
        yield


class ModeRecorder(nn.Module):
    """Wraps a model and records, for each forward call, whether it ran in training mode."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.calls: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(self.training)
        return self.model(x)


def check_attack_contract(
    name: str,
    attack: Callable[..., torch.Tensor],
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    **kwargs,
) -> torch.Tensor:
    """Check what every L-infinity attack ``attack(model, x, y, eps, **kwargs)`` promises.

    The result is a new detached tensor of x's shape, dtype and device, inside the
    eps-ball around x and inside [0, 1]; ``x``, the model's parameters, buffers and
    train/eval mode are left as they were, and the model runs in eval mode while
    attacked. The attack runs once from each mode; prints one line, returns the last result.
    """

    def require(condition: bool, message: str) -> None:
        if not condition:
            print(f"{name}: FAILED")
            raise AssertionError(f"{name}: {message}")

    result = None
    for start_in_training_mode in (True, False):
        recorder = ModeRecorder(model).train(start_in_training_mode)
        x_before = x.clone()
        state_before = {key: value.clone() for key, value in recorder.state_dict().items()}
        requires_grad_before = [p.requires_grad for p in recorder.parameters()]
        result = attack(recorder, x, y, eps, **kwargs)
        require(
            isinstance(result, torch.Tensor),
            f"expected a tensor, got {type(result).__name__}; did you forget to return the result?",
        )
        require(result.shape == x.shape, f"x has shape {tuple(x.shape)} but the result has shape {tuple(result.shape)}")
        require(
            result.dtype == x.dtype and result.device == x.device,
            f"x is {x.dtype} on {x.device} but the result is {result.dtype} on {result.device}",
        )
        require(result is not x, "return a new tensor, not x itself")
        require(not result.requires_grad, "the result still requires grad; return x_adv.detach()")
        require(torch.equal(x, x_before), "the attack changed the values of x in place; work on a copy (x.clone())")
        require(
            not x.requires_grad and x.grad is None,
            "the attack set requires_grad or .grad on the caller's x; "
            "use a copy: x.clone().detach().requires_grad_(True)",
        )
        distance = (result.detach() - x).abs().max().item() if x.numel() else 0.0
        require(
            distance <= eps * (1 + 1e-6) + 1e-6,
            f"result leaves the eps-ball around x: max |x_adv - x| = {distance:.4g} > eps = {eps}; no pixel may "
            "move by more than eps (step along the sign of the gradient, project onto [x - eps, x + eps])",
        )
        require(bool(((result >= 0) & (result <= 1)).all()), "result has pixels outside [0, 1]; clamp after every step")
        require(len(recorder.calls) > 0, "the attack never called the model")
        require(
            not any(recorder.calls),
            "the model ran in training mode during the attack; call model.eval() first "
            "(dropout and batch norm behave differently in training mode)",
        )
        mode = "train" if start_in_training_mode else "eval"
        require(
            all(module.training == start_in_training_mode for module in recorder.modules()),
            f"the model was in {mode} mode before the attack and must be left in it; "
            "remember model.training and restore it with model.train(was_training)",
        )
        require(
            all(torch.equal(value, recorder.state_dict()[key]) for key, value in state_before.items()),
            "the attack changed the model's parameters or buffers (e.g. batch-norm running statistics)",
        )
        require(
            requires_grad_before == [p.requires_grad for p in recorder.parameters()],
            "the attack changed requires_grad of the model's parameters; leave them as they were",
        )
    print(
        f"{name}: new detached tensor in the eps-ball and [0, 1], eval mode while attacking; "
        "x, model and its mode unchanged  OK"
    )
    return result


def parameter_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


def check_uniform_init(name: str, cell: nn.Module, hidden_size: int) -> None:
    """Every parameter drawn from U(-1/sqrt(H), 1/sqrt(H)), PyTorch's initialisation of recurrent cells.

    Bounds are exact; the standard deviation bound/sqrt(3) is checked within 20 % on tensors of
    at least 400 entries (the sample standard deviation of n uniforms is off by ~1/sqrt(n) relative).
    """
    bound = 1 / hidden_size**0.5
    for key, value in cell.state_dict().items():
        value = value.detach().double()
        check_true(
            f"{name}: {key} initialised",
            bool(torch.isfinite(value).all()) and value.abs().max().item() <= bound * (1 + 1e-6),
            f"{key} has entries outside [-1/sqrt(H), 1/sqrt(H)] = [-{bound:.3g}, {bound:.3g}] (or NaN); "
            "draw it with torch.empty(...).uniform_(-bound, bound)",
        )
        if value.numel() >= 400:
            ratio = value.std().item() / (bound / 3**0.5)
            check_true(
                f"{name}: {key} spread",
                0.8 < ratio < 1.2,
                f"{key} has standard deviation {ratio:.2f} times that of U(-1/sqrt(H), 1/sqrt(H)); "
                "initialise it uniformly over the whole interval",
            )


def check_recurrent_cell(
    name: str,
    cell: nn.Module,
    reference: nn.Module,
    batch: int = 5,
    pair_state: bool = False,
    atol: float | None = None,
    seed: int = 0,
) -> None:
    """Compare a recurrent cell with a reference cell (e.g. PyTorch's) that has the same state_dict layout.

    Loads the reference's parameters into ``cell``, then compares the next state for a random
    input and state and for ``state=None`` (zeros), and the gradients of a random linear function
    of the output with respect to the input, the state and every parameter. Both cells must live
    on the same device and dtype; ``pair_state`` for LSTM-style ``(h, c)`` states. The default
    tolerance is 1e-5 in float32 and 1e-10 in float64.
    """
    expected_shapes, shapes = parameter_shapes(reference), parameter_shapes(cell)
    check_true(
        f"{name}: parameters",
        shapes == expected_shapes,
        f"the state_dict must hold exactly {expected_shapes}, got {shapes}",
    )
    cell.load_state_dict(reference.state_dict())
    parameter = next(reference.parameters())
    dtype, device = parameter.dtype, parameter.device
    atol = atol if atol is not None else (1e-10 if dtype == torch.float64 else 1e-5)
    hidden = reference.hidden_size
    gen = torch.Generator().manual_seed(seed)

    def random(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=torch.float64).to(device, dtype)

    x = random(batch, reference.input_size)
    state = (random(batch, hidden), random(batch, hidden)) if pair_state else random(batch, hidden)
    weights = [random(batch, hidden) for _ in range(2 if pair_state else 1)]

    def run(module: nn.Module, with_state: bool):
        inputs = [x.clone().requires_grad_(True)]
        states = [s.clone().requires_grad_(True) for s in (state if pair_state else (state,))]
        given = (tuple(states) if pair_state else states[0]) if with_state else None
        output = module(inputs[0], given)
        outputs = tuple(output) if pair_state else (output,)
        for position, out in enumerate(outputs):
            if not isinstance(out, torch.Tensor) or out.shape != (batch, hidden):
                got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise AssertionError(f"{name}: output {position} should have shape {(batch, hidden)}, got {got}")
        module.zero_grad()
        sum((w * out).sum() for w, out in zip(weights, outputs, strict=True)).backward()
        leaves = inputs + (states if with_state else [])
        grads = [leaf.grad if leaf.grad is not None else torch.zeros_like(leaf) for leaf in leaves]
        params = {
            key: p.grad.clone() if p.grad is not None else torch.zeros_like(p) for key, p in module.named_parameters()
        }
        return [out.detach() for out in outputs], grads, params

    for with_state in (True, False):
        label = "given state" if with_state else "state=None (zeros)"
        outputs, grads, params = run(cell, with_state)
        ref_outputs, ref_grads, ref_params = run(reference, with_state)
        for position, (out, ref) in enumerate(zip(outputs, ref_outputs, strict=True)):
            part = ("h", "c")[position] if pair_state else "next state"
            check_close(f"{name}, {label}: {part}", out, ref, atol=atol, rtol=0)
        for leaf, grad, ref in zip(["x", "h", "c"], grads, ref_grads, strict=False):
            check_close(f"{name}, {label}: gradient with respect to {leaf}", grad, ref, atol=atol, rtol=0)
        for key, ref in ref_params.items():
            check_close(f"{name}, {label}: gradient of {key}", params[key], ref, atol=atol, rtol=0)


# Share of a normal sample beyond two standard deviations: 2 * (1 - Phi(2)).
NORMAL_BEYOND_TWO_SD = 0.0455002638963584


def check_init_statistics(
    name: str,
    tensor: torch.Tensor,
    std: float,
    distribution: str,
    mistakes: Mapping[str, float] | None = None,
) -> None:
    """Check that ``tensor`` looks like n independent draws from N(0, std^2) or U(-b, b), b = sqrt(3) std.

    Tolerances come from the sample size n (every check is six standard errors wide, so a correct
    initialiser fails with probability below 1e-8):

    - standard deviation: its relative standard error is sqrt((kurtosis - 1) / (4n)), i.e.
      sqrt(1 / (2n)) for a normal sample and sqrt(1 / (5n)) for a uniform one; we allow 6 sqrt(1 / (2n));
    - mean: standard error std / sqrt(n); we allow 6 std / sqrt(n);
    - normal: the share p of entries beyond 2 std is 4.55 %, with standard error sqrt(p (1 - p) / n);
    - uniform: no entry beyond b (up to rounding), and the largest |entry| within b (1 - 20 / n) of b,
      which fails with probability exp(-20).

    ``mistakes`` maps a diagnosis to the standard deviation a known mistake produces; a standard
    deviation that matches one gets that diagnosis.
    """
    if distribution not in ("normal", "uniform"):
        raise ValueError(f"distribution must be 'normal' or 'uniform', got {distribution!r}")
    values = as_cpu_float64(tensor, name).flatten()
    n = values.numel()
    check_true(
        f"{name}: filled",
        n > 0 and bool(torch.isfinite(values).all()),
        "the tensor still holds NaN or infinity: fill every entry of the tensor you were given, in place",
    )
    rel_tol, measured = 6 / (2 * n) ** 0.5, values.std().item()
    ok = abs(measured / std - 1) <= rel_tol
    print(
        f"{name}: std {measured:.5g}, expected {std:.5g} (tolerance ±{100 * rel_tol:.2g} % for n = {n:,})  "
        f"{'OK' if ok else 'FAILED'}"
    )
    if not ok:
        for diagnosis, mistaken_std in (mistakes or {}).items():
            if abs(measured / mistaken_std - 1) <= rel_tol:
                raise AssertionError(f"{name}: {diagnosis}")
        raise AssertionError(f"{name}: standard deviation {measured:.5g} but expected {std:.5g}")
    mean_tol = 6 * std / n**0.5
    check_true(
        f"{name}: mean {values.mean().item():+.2e} within ±{mean_tol:.1e}",
        abs(values.mean().item()) <= mean_tol,
        "the entries must have mean zero",
    )
    if distribution == "normal":
        share = (values.abs() > 2 * std).double().mean().item()
        share_tol = 6 * (NORMAL_BEYOND_TWO_SD * (1 - NORMAL_BEYOND_TWO_SD) / n) ** 0.5
        check_true(
            f"{name}: {100 * share:.2f} % of entries beyond 2 std (normal: 4.55 ± {100 * share_tol:.2f} %)",
            abs(share - NORMAL_BEYOND_TWO_SD) <= share_tol,
            "the entries do not follow a normal distribution; draw them with normal_ (or torch.randn)",
        )
    else:
        bound, largest = 3**0.5 * std, values.abs().max().item()
        check_true(
            f"{name}: largest |entry| {largest:.5g}, bound {bound:.5g}",
            bound * (1 - 20 / n) <= largest <= bound * (1 + 1e-5) + 1e-12,
            f"the entries must fill U(-b, b) with b = sqrt(3) * std = {bound:.5g}; draw them with uniform_",
        )


def check_init(
    name: str,
    init: Callable[..., torch.Tensor],
    shape: tuple[int, ...],
    std: float,
    distribution: str,
    mistakes: Mapping[str, float] | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    seed: int = 0,
    **kwargs,
) -> None:
    """Call ``init(tensor, **kwargs)`` on a NaN-filled tensor of ``shape``; check it returns that
    tensor, filled in place, with the statistics of :func:`check_init_statistics`."""
    tensor = torch.full(shape, float("nan"), dtype=dtype, device=device)
    torch.manual_seed(seed)
    result = init(tensor, **kwargs)
    check_true(
        f"{name}: returns its argument",
        result is tensor,
        "fill the tensor you were given in place (e.g. tensor.normal_(...)) and return that same tensor",
    )
    check_init_statistics(name, tensor, std, distribution, mistakes)


def fans_of(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of this shape, as PyTorch computes them."""
    return torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape, device="meta"))


def different_from(std: float, candidates: dict[str, float]) -> dict[str, float]:
    # A diagnosis only makes sense where the mistake changes the result (e.g. not for gain 1).
    return {diagnosis: value for diagnosis, value in candidates.items() if abs(value / std - 1) > 0.05}


def kaiming_mistakes(shape: tuple[int, ...], gain: float, mode: str, distribution: str) -> dict[str, float]:
    """Standard deviations that known mistakes in kaiming_normal_/kaiming_uniform_ produce, by diagnosis."""
    fan_in, fan_out = fans_of(shape)
    fan, other = (fan_in, fan_out) if mode == "fan_in" else (fan_out, fan_in)
    receptive_field = fan_in // shape[1]
    std, relu_std = gain / fan**0.5, (2 / fan) ** 0.5
    candidates = {
        "a variance used as the standard deviation: std = gain / sqrt(fan), not gain^2 / fan": gain**2 / fan,
        f"mode={mode!r} asks for {mode}, but the other fan was used": gain / other**0.5,
        "the fan of a convolution includes its receptive field: fan_in = in_channels * kernel_h * kernel_w "
        "(fan_out = out_channels * kernel_h * kernel_w)": gain / (fan / receptive_field) ** 0.5,
        "the gain is missing: std = gain / sqrt(fan)": 1 / fan**0.5,
        "the gain must not be squared: std = gain / sqrt(fan)": gain**2 / fan**0.5,
        "the gain belongs outside the square root: std = gain / sqrt(fan)": (gain / fan) ** 0.5,
        "the gain of ReLU was used whatever the nonlinearity and slope: use calculate_gain(nonlinearity, a)": relu_std,
    }
    if distribution == "uniform":
        candidates["the bound of U(-b, b) is sqrt(3) times the standard deviation: b = sqrt(3) * gain / sqrt(fan)"] = (
            std / 3**0.5
        )
    return different_from(std, candidates)


def xavier_mistakes(shape: tuple[int, ...], gain: float, distribution: str) -> dict[str, float]:
    """Standard deviations that known mistakes in xavier_normal_/xavier_uniform_ produce, by diagnosis."""
    fan_in, fan_out = fans_of(shape)
    receptive_field = fan_in // shape[1]
    fans = fan_in + fan_out
    std = gain * (2 / fans) ** 0.5
    candidates = {
        "a variance used as the standard deviation: std = gain * sqrt(2 / (fan_in + fan_out))": gain**2 * 2 / fans,
        "the factor 2 is missing: std = gain * sqrt(2 / (fan_in + fan_out))": gain / fans**0.5,
        "Xavier averages the two fans, std = gain * sqrt(2 / (fan_in + fan_out)); this is gain / sqrt(fan_in)": (
            gain / fan_in**0.5
        ),
        "Xavier averages the two fans, std = gain * sqrt(2 / (fan_in + fan_out)); this is gain / sqrt(fan_out)": (
            gain / fan_out**0.5
        ),
        "the fans of a convolution include its receptive field (kernel_h * kernel_w)": (
            gain * (2 * receptive_field / fans) ** 0.5
        ),
        "the gain is missing: std = gain * sqrt(2 / (fan_in + fan_out))": (2 / fans) ** 0.5,
        "the gain belongs outside the square root: std = gain * sqrt(2 / (fan_in + fan_out))": (
            (2 * gain / fans) ** 0.5
        ),
    }
    if distribution == "uniform":
        bound_is_std = (
            "the bound of U(-b, b) is sqrt(3) times the standard deviation: b = gain * sqrt(6 / (fan_in + fan_out))"
        )
        candidates[bound_is_std] = std / 3**0.5
    return different_from(std, candidates)


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


@contextlib.contextmanager
def one_line(title: str):
    """Run several checks and print one line for all of them when they pass (a failure still raises)."""
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        yield
    print(f"{title}: {log.getvalue().count(chr(10))} checks OK")


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
