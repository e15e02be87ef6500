"""Visible checks for labs: each prints its measurement next to the tolerance.

A passing check prints one line such as
``standardize: max |error| = 2.4e-07 (tolerance 1.0e-05)  OK``; a failing one
raises ``AssertionError`` with a message that says what to fix.
"""

from __future__ import annotations

import contextlib
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
