"""Visible checks of batch normalization against PyTorch's (lab 3).

:func:`check_batch_norm` compares a ``batch_norm`` function with ``torch.nn.functional.batch_norm``,
:func:`check_batch_norm_module` a module with ``nn.BatchNorm1d`` / ``nn.BatchNorm2d``, and
:func:`check_batch_norm_backward` gradients computed by hand with PyTorch's autograd. They check
every promise of the lab's contract, not only the values, and print one line per quantity with its
tolerance. They take an optional ``mistakes`` hook, ``mistakes(quantity, case)``, called
only when a quantity is wrong: it returns ``{diagnosis: the value that mistake produces}`` so
that the failure names the mistake (the course's hidden tests use it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dlcourse.checks.core import as_cpu_float64, check_close, check_true, is_close, one_line

Mistakes = Callable[[str, Any], Mapping[str, Any]]
PASSING = ("keywords", "positional", "defaults")
DEFAULTS = {"weight": None, "bias": None, "training": False, "momentum": 0.1, "eps": 1e-5}


def is_default(key: str, value: Any) -> bool:
    default = DEFAULTS[key]
    return value is None if default is None else type(value) is type(default) and value == default


def tolerance(dtype: torch.dtype) -> float:
    """Absolute and relative tolerance of a comparison with PyTorch's result computed in float64."""
    return 1e-9 if dtype == torch.float64 else 1e-4


def copy_with_layout(tensor: torch.Tensor | None, requires_grad: bool = False, dtype=None) -> torch.Tensor | None:
    """A detached copy with the same strides (transposed, channels_last or strided stays so)."""
    if tensor is None:
        return None
    copy = torch.empty_strided(tensor.shape, tensor.stride(), dtype=dtype or tensor.dtype, device=tensor.device)
    with torch.no_grad():
        copy.copy_(tensor.detach())
    return copy.requires_grad_(requires_grad)


@dataclass
class BatchNormRun:
    """What one call of a batch_norm did: its output, the running statistics it was given (afterwards)
    and the gradients of sum(output * upstream) with respect to x, weight and bias."""

    inputs: dict[str, torch.Tensor | None]
    output: Any
    running_mean: torch.Tensor | None
    running_var: torch.Tensor | None
    grads: dict[str, torch.Tensor | None] = field(default_factory=dict)


@dataclass
class BatchNormCase:
    """The arguments of one comparison; :meth:`run` calls any batch_norm on fresh copies of them."""

    x: torch.Tensor
    running_mean: torch.Tensor | None
    running_var: torch.Tensor | None
    weight: torch.Tensor | None
    bias: torch.Tensor | None
    training: bool
    momentum: Any
    eps: Any
    upstream: torch.Tensor
    gradients: bool = True

    @property
    def dims(self) -> list[int]:
        """Every dimension but the channels (dimension 1)."""
        return [0, *range(2, self.x.dim())]

    def arguments(self, passing: str, dtype=None) -> tuple[dict[str, torch.Tensor | None], tuple, dict]:
        grad = self.gradients
        inputs = {
            "x": copy_with_layout(self.x, grad, dtype),
            "running_mean": copy_with_layout(self.running_mean, dtype=dtype),
            "running_var": copy_with_layout(self.running_var, dtype=dtype),
            "weight": copy_with_layout(self.weight, grad and self.weight is not None, dtype),
            "bias": copy_with_layout(self.bias, grad and self.bias is not None, dtype),
        }
        given = {"training": self.training, "momentum": self.momentum, "eps": self.eps}
        affine = {"weight": inputs["weight"], "bias": inputs["bias"]}
        first = (inputs["x"], inputs["running_mean"], inputs["running_var"])
        if passing == "positional":
            return inputs, (*first, *affine.values(), *given.values()), {}
        if passing == "defaults":
            options = {key: value for key, value in {**affine, **given}.items() if not is_default(key, value)}
            return inputs, first, options
        return inputs, first, {**affine, **given}

    def run(self, function: Callable, passing: str = "keywords", dtype=None) -> BatchNormRun:
        """Call ``function`` on copies (in ``dtype`` if given); backpropagate when gradients are checked."""
        inputs, args, kwargs = self.arguments(passing, dtype)
        output = function(*args, **kwargs)
        run = BatchNormRun(inputs, output, inputs["running_mean"], inputs["running_var"])
        if self.gradients and isinstance(output, torch.Tensor) and output.requires_grad:
            (output * self.upstream.to(output.dtype)).sum().backward()
            run.grads = {key: inputs[key].grad for key in ("x", "weight", "bias") if inputs[key] is not None}
        return run

    def reference(self) -> BatchNormRun:
        """PyTorch's batch_norm on float64 copies of the same values."""
        return self.run(F.batch_norm, dtype=torch.float64)


@dataclass
class InputState:
    tensor: torch.Tensor
    value: torch.Tensor
    version: int
    storage: int

    @classmethod
    def of(cls, tensor: torch.Tensor) -> InputState:
        return cls(tensor, tensor.detach().clone(), tensor._version, tensor.untyped_storage().data_ptr())

    def unchanged(self) -> bool:
        return torch.equal(self.tensor.detach(), self.value) and self.tensor._version == self.version


def batch_norm_case(
    x: torch.Tensor,
    running_mean: torch.Tensor | None = None,
    running_var: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
    seed: int = 0,
    gradients: bool = True,
) -> BatchNormCase:
    gen = torch.Generator().manual_seed(seed)
    upstream = torch.randn(x.shape, generator=gen, dtype=torch.float64).to(x.device, x.dtype)
    return BatchNormCase(x, running_mean, running_var, weight, bias, training, momentum, eps, upstream, gradients)


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
    *,
    gradients: bool = True,
    passing: str = "keywords",
    tol: float | None = None,
    mistakes: Mistakes | None = None,
) -> None:
    """Compare ``batch_norm`` with ``torch.nn.functional.batch_norm`` (in float64) on copies of the arguments.

    The copies keep x's memory layout. Checks that the output is a tensor of x's shape, dtype and
    device with PyTorch's values; that x, weight and bias are left alone (values and version
    counters); that the running statistics are updated in place in training (the very tensors
    passed, their storage too, without autograd history) and untouched in evaluation; and, with
    ``gradients``, the gradients of a random linear function of the output with respect to x,
    weight and bias. ``passing`` says how the arguments are passed: by keyword, by position, or
    leaving out those equal to the defaults. Tolerance ``tol``: by default 1e-9 in float64 and
    1e-4 in float32 (absolute and relative).
    """
    if passing not in PASSING:
        raise ValueError(f"passing must be one of {PASSING}")
    tol = tolerance(x.dtype) if tol is None else tol
    case = batch_norm_case(x, running_mean, running_var, weight, bias, training, momentum, eps, seed, gradients)
    inputs, args, kwargs = case.arguments(passing)
    watched = [key for key in ("x", "weight", "bias") if inputs[key] is not None]
    if not training:
        watched += [key for key in ("running_mean", "running_var") if inputs[key] is not None]
    before = {key: InputState.of(inputs[key]) for key in watched}
    stats_before = {
        key: InputState.of(inputs[key]) for key in ("running_mean", "running_var") if inputs[key] is not None
    }

    output = batch_norm(*args, **kwargs)
    expected = case.reference()

    def compare(quantity: str, actual: Any, wanted: torch.Tensor) -> None:
        wanted = wanted.to(x.dtype)
        diagnoses: Mapping[str, Any] = {}
        if mistakes is not None and not passes(actual, wanted, tol):
            diagnoses = mistakes(quantity, case)
        check_close(f"{name}: {quantity}", actual, wanted, atol=tol, rtol=tol, mistakes=diagnoses)

    check_true(
        f"{name}: output is a tensor",
        isinstance(output, torch.Tensor),
        f"expected a tensor, got {type(output).__name__}"
        + (" (did you forget to return it?)" if output is None else ""),
    )
    check_true(
        f"{name}: output shape, dtype and device",
        output.shape == x.shape and output.dtype == x.dtype and output.device == x.device,
        f"the output must have x's shape {tuple(x.shape)}, dtype {x.dtype} and device {x.device}, got "
        f"{tuple(output.shape)}, {output.dtype}, {output.device}: keep x's dtype and create tensors on x's device",
    )

    for key, state in before.items():
        check_true(
            f"{name}: {key} left alone",
            state.unchanged(),
            f"{key} was modified in place; the function may only update the running statistics, and only in "
            "training mode",
        )
    compare("output", output.detach(), expected.output.detach())
    for key, state in stats_before.items():
        tensor = inputs[key]
        if training:
            compare(f"{key} after training=True", tensor, getattr(expected, key))
            check_true(
                f"{name}: {key} updated in its own storage",
                tensor.untyped_storage().data_ptr() == state.storage,
                f"{key} got new storage (e.g. {key}.data = ...); update the tensor passed in place, "
                f"e.g. {key}.mul_(...).add_(...) or {key}.copy_(...)",
            )
            check_true(
                f"{name}: {key} records no autograd history",
                not tensor.requires_grad and tensor.grad_fn is None,
                f"{key} became part of the autograd graph; update it under torch.no_grad() (or from detached "
                "statistics)",
            )

    if not gradients:
        return
    check_true(
        f"{name}: output requires grad",
        output.requires_grad,
        "the output does not depend on x through autograd; compute it with tensor operations (no .detach(), no "
        "torch.no_grad() around the normalisation)",
    )
    (output * case.upstream).sum().backward()
    for key, wanted in expected.grads.items():
        got = inputs[key].grad
        check_true(
            f"{name}: gradient reaches {key}",
            got is not None,
            f"no gradient reached {key}; compute the output from it with tensor operations",
        )
        compare(f"gradient with respect to {key}", got, wanted)


def passes(actual: Any, expected: torch.Tensor, tol: float) -> bool:
    """The comparison :func:`check_close` makes, without printing or raising."""
    if not isinstance(actual, torch.Tensor) or actual.dtype != expected.dtype:
        return False
    values = as_cpu_float64(actual, "value")
    return bool(torch.isfinite(values).all()) and is_close(values, as_cpu_float64(expected, "value"), tol, tol)


def torch_batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """PyTorch's batch_norm with the lab's signature; momentum is not used (and may be None) in evaluation."""
    if not training and momentum is None:
        momentum = 0.0
    return F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)


@contextlib.contextmanager
def with_torch_batch_norm(namespace: MutableMapping[str, Any]) -> Iterator[None]:
    """Let ``batch_norm`` in ``namespace`` be PyTorch's while the block runs, then restore yours.

    A module test grades the module on its own: a mistake in your ``batch_norm`` costs points in its
    own tests, not again in the modules'.
    """
    missing = object()
    yours = namespace.get("batch_norm", missing)
    namespace["batch_norm"] = torch_batch_norm
    try:
        yield
    finally:
        if yours is missing:
            namespace.pop("batch_norm", None)
        else:
            namespace["batch_norm"] = yours


def random_like(parameter: torch.Tensor, gen: torch.Generator, *size: int) -> torch.Tensor:
    return torch.randn(*size, generator=gen, dtype=torch.float64).to(parameter.device, parameter.dtype)


def check_batch_norm_module(
    name: str,
    module: nn.Module,
    reference: nn.Module,
    shape: tuple[int, ...] | list[tuple[int, ...]],
    steps: int = 3,
    seed: int = 0,
    *,
    mistakes: Mistakes | None = None,
) -> None:
    """Compare a batch-norm module with PyTorch's (``reference``, same device and dtype).

    Checks the state_dict layout and initial values (weight and bias as parameters, the running
    statistics and ``num_batches_tracked`` as buffers), the output of the fresh module in eval
    mode, then ``steps`` training batches (outputs, gradients of x, weight and bias, every buffer),
    then eval mode (outputs, state unchanged), and that PyTorch's state_dict loads. ``shape`` is
    the input shape, or a list of shapes, one per training batch (the last one is used in eval).
    ``mistakes("running_mean", {"before": ..., "batch": ..., "step": ...})`` may name a wrong
    running mean. Tolerance 1e-9 in float64, 1e-4 in float32; 1e-7 for the running statistics of a float64
    module with momentum=None, and the eval-mode outputs that use them.
    """
    shapes = list(shape) if isinstance(shape, list) else [tuple(shape)] * steps
    with one_line(f"{name}: state_dict layout, parameters and buffers, initial values"):
        expected = {key: (tuple(value.shape), value.dtype) for key, value in reference.state_dict().items()}
        got = {key: (tuple(value.shape), value.dtype) for key, value in module.state_dict().items()}
        check_true(f"{name}: state_dict layout", got == expected, f"the state_dict must hold {expected}, got {got}")
        check_true(
            f"{name}: parameters",
            sorted(key for key, _ in module.named_parameters()) == ["bias", "weight"]
            and all(p.requires_grad for p in module.parameters()),
            "weight and bias must be nn.Parameters; running_mean, running_var and num_batches_tracked are buffers "
            "(self.register_buffer)",
        )
        check_true(
            f"{name}: buffers",
            sorted(key for key, _ in module.named_buffers()) == ["num_batches_tracked", "running_mean", "running_var"],
            "running_mean, running_var and num_batches_tracked must be registered with self.register_buffer",
        )
        for key, value in reference.state_dict().items():
            check_close(f"{name}: initial {key}", module.state_dict()[key], value, atol=0, rtol=0)
    parameter = next(reference.parameters())
    gen = torch.Generator().manual_seed(seed)
    tol = tolerance(parameter.dtype)
    # with momentum=None the momentum is 1 / num_batches_tracked; computed as a float32 tensor it is off by
    # 1e-8 relative, and so are the running statistics and the eval-mode outputs that use them
    state_tol = tol if reference.momentum is not None else max(tol, 1e-7)
    module.eval(), reference.eval()
    x = random_like(parameter, gen, *shapes[0])
    with torch.no_grad():
        check_close(f"{name}: fresh module in eval mode", module(x), reference(x), tol, tol)
    with torch.no_grad():
        reference.weight.copy_(random_like(parameter, gen, shapes[0][1]) + 1)
        reference.bias.copy_(random_like(parameter, gen, shapes[0][1]))
    module.load_state_dict(reference.state_dict())
    module.train(), reference.train()
    for step, step_shape in enumerate(shapes, start=1):
        with one_line(f"{name}: training batch {step} {step_shape}: output, gradients of x, weight and bias, buffers"):
            train_step(name, module, reference, step, step_shape, gen, tol, state_tol, mistakes)
    module.eval(), reference.eval()
    state = {key: value.clone() for key, value in module.state_dict().items()}
    x = random_like(parameter, gen, *shapes[-1])
    with one_line(f"{name}: eval mode after training: output, state unchanged"), torch.no_grad():
        check_close(f"{name}: eval mode after training: output", module(x), reference(x), state_tol, state_tol)
        for key, value in module.state_dict().items():
            check_true(
                f"{name}: eval mode leaves {key} alone",
                torch.equal(value, state[key]),
                "in eval mode the module must not change its state (running statistics, num_batches_tracked)",
            )


def train_step(name, module, reference, step, shape, gen, tol, state_tol, mistakes) -> None:
    """One training batch through both modules: outputs, gradients and buffers compared."""
    parameter = next(reference.parameters())
    label = f"{name}: training batch {step}"
    x = 2 * random_like(parameter, gen, *shape) + 1
    dims = [0, *range(2, len(shape))]
    before = {"before": reference.running_mean.clone(), "batch": x.mean(dim=dims), "step": step}
    inputs = [x.clone().requires_grad_(True) for _ in range(2)]
    upstream = random_like(parameter, gen, *shape)
    outputs = [m(inp) for m, inp in zip((module, reference), inputs, strict=True)]
    check_true(
        f"{label}: output",
        isinstance(outputs[0], torch.Tensor) and outputs[0].requires_grad,
        "forward must return a tensor computed from x, weight and bias with autograd",
    )
    for m, out in zip((module, reference), outputs, strict=True):
        m.zero_grad()
        (out * upstream).sum().backward()
    with torch.no_grad():
        in_eval_mode = reference.eval()(x)
    reference.train()
    check_close(
        f"{label}: output",
        outputs[0],
        outputs[1],
        tol,
        tol,
        {"in training mode normalise with the batch's statistics: pass training=self.training": in_eval_mode},
    )
    check_true(f"{label}: gradient of x", inputs[0].grad is not None, "the output must depend on x")
    check_close(f"{label}: gradient of x", inputs[0].grad, inputs[1].grad, tol, tol)
    for key in ("weight", "bias"):
        got_grad = getattr(module, key).grad
        check_true(f"{label}: gradient of {key}", got_grad is not None, f"{key} must take part in the output")
        check_close(f"{label}: gradient of {key}", got_grad, getattr(reference, key).grad, tol, tol)
    for key in ("running_mean", "running_var", "num_batches_tracked"):
        got, wanted = module.state_dict()[key], reference.state_dict()[key]
        diagnoses = {}
        if mistakes is not None and not passes(got, wanted, state_tol):
            diagnoses = mistakes(key, before)
        check_true(
            f"{label}: {key} dtype",
            isinstance(got, torch.Tensor) and got.dtype == wanted.dtype,
            f"{key} must stay a {wanted.dtype} tensor",
        )
        check_close(f"{name}: after training batch {step}: {key}", got, wanted, state_tol, state_tol, diagnoses)


# ---------------------------------------------------------------- the backward pass, by hand

GRADIENT_NAMES = ("grad_x", "grad_weight", "grad_bias")


def check_batch_norm_backward(
    name: str,
    batch_norm_backward: Callable[..., Any],
    grad_out: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    eps: float = 1e-5,
    *,
    passing: str = "positional",
    tol: float | None = None,
    mistakes: Mistakes | None = None,
) -> None:
    """Compare ``batch_norm_backward(grad_out, x, weight, eps)`` with PyTorch's autograd (in float64).

    The function is called on copies that keep the memory layout (and ``requires_grad``) of the
    arguments, by position or (``passing="keywords"``) by name. Checks that it returns three tensors,
    ``(grad_x, grad_weight, grad_bias)``, shaped like x, weight and weight, of their dtype and device,
    that none of them requires grad, that the inputs are left alone (values, version counters,
    ``.grad``), and the values. Tolerance ``tol`` (absolute and relative): by default 1e-9 in float64
    and 1e-4 in float32. ``mistakes(quantity, (grad_out, x, weight, eps))``, asked only for a wrong
    quantity, may name the mistake.
    """
    if passing not in ("positional", "keywords"):
        raise ValueError('passing must be "positional" or "keywords"')
    tol = tolerance(x.dtype) if tol is None else tol
    inputs = {
        "grad_out": copy_with_layout(grad_out, grad_out.requires_grad),
        "x": copy_with_layout(x, x.requires_grad),
        "weight": copy_with_layout(weight, weight.requires_grad),
    }
    before = {key: InputState.of(tensor) for key, tensor in inputs.items()}
    if passing == "keywords":
        result = batch_norm_backward(**inputs, eps=eps)
    else:
        result = batch_norm_backward(*inputs.values(), eps)
    # PyTorch's answer: autograd through F.batch_norm (training mode, weight and a zero bias) in float64
    x64, weight64 = (t.detach().to("cpu", torch.float64).requires_grad_(True) for t in (x, weight))
    bias64 = torch.zeros_like(weight64, requires_grad=True)
    y = F.batch_norm(x64, None, None, weight64, bias64, training=True, eps=float(eps))
    upstream = grad_out.detach().to("cpu", torch.float64)
    expected = torch.autograd.grad((y * upstream).sum(), (x64, weight64, bias64))

    check_true(
        f"{name}: returns (grad_x, grad_weight, grad_bias)",
        isinstance(result, tuple | list) and len(result) == 3 and all(isinstance(r, torch.Tensor) for r in result),
        f"expected a tuple of three tensors, got {type(result).__name__}"
        + (" (did you forget to return it?)" if result is None else ""),
    )
    for key, tensor in inputs.items():
        check_true(
            f"{name}: {key} left alone",
            before[key].unchanged() and tensor.grad is None,
            f"{key} was modified in place (or got a .grad); compute new tensors instead",
        )
    for label, got, like in zip(GRADIENT_NAMES, result, (x, weight, weight), strict=True):
        check_true(
            f"{name}: {label} shape, dtype and device",
            got.shape == like.shape and got.dtype == like.dtype and got.device == like.device,
            f"{label} must have shape {tuple(like.shape)}, dtype {like.dtype} and device {like.device}, got "
            f"{tuple(got.shape)}, {got.dtype}, {got.device}",
        )
        check_true(
            f"{name}: {label} records no autograd history",
            not got.requires_grad,
            "the gradients are computed by hand: work on detached inputs (or under torch.no_grad())",
        )
    for label, got, wanted in zip(GRADIENT_NAMES, result, expected, strict=True):
        wanted = wanted.to(got.dtype)
        diagnoses: Mapping[str, Any] = {}
        if mistakes is not None and not passes(got, wanted, tol):
            diagnoses = mistakes(label, (grad_out, x, weight, eps))
        check_close(f"{name}: {label}", got, wanted, atol=tol, rtol=tol, mistakes=diagnoses)
