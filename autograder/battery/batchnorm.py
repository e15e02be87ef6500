"""Hidden tests of lab 3: ``batch_norm`` in training and evaluation mode, ``batch_norm_backward``, the modules.

The contract of ``batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
momentum=0.1, eps=1e-5)`` is that of ``torch.nn.functional.batch_norm`` for (N, C) and (N, C, H, W)
inputs: statistics per channel over every other dimension; in training the batch is normalised
with its biased variance and the running statistics, when given, are updated in place (the very
tensors, without autograd history) with the unbiased one; in evaluation the running statistics
are used and nothing changes; the output has x's shape, dtype and device; x, weight and bias are
left alone; gradients flow through the batch statistics; one value per channel in training raises
ValueError. The oracle is PyTorch's function in float64 on copies, via the visible
:func:`dlcourse.checks.check_batch_norm`, to which this module adds the diagnoses of known
mistakes, forbidden calls, a simulated GPU and property-based cases.

``batch_norm_backward(grad_out, x, weight, eps)`` returns ``(grad_x, grad_weight, grad_bias)`` of
``sum(grad_out * batch_norm(x, training=True))``, shaped like x, weight and weight, with the inputs'
dtype and device and no autograd history, computed without autograd (no ``backward``, no
``torch.autograd.grad``, no ``torch.func``) and leaving the inputs alone; the oracle is autograd of
``F.batch_norm`` in float64 (:func:`dlcourse.checks.batchnorm.check_batch_norm_backward`), and
:func:`gradients_by_formula` gives the closed form and its known mistakes.

The modules' contract: weight and bias parameters, running statistics and a long
``num_batches_tracked`` as buffers, PyTorch's initial values and state_dict; ``forward`` calls the
global ``batch_norm`` exactly once with ``training=self.training``, its eps and its momentum
(``1 / num_batches_tracked`` when momentum is None); ``num_batches_tracked`` counts training
batches only. The modules are graded on their own: :class:`LentBatchNorm`, PyTorch's function
recording how it is called, stands in for the student's ``batch_norm`` while they run.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from autograder.battery.compare import assert_close, counted, group, require
from autograder.battery.devices import module_on_simulated_gpu, run_on_simulated_gpu
from autograder.battery.forbidden import forbidding
from autograder.battery.inputs import layouts, normal, requiring_grad, seeded, transposed_layout
from autograder.battery.properties import for_all, st
from autograder.battery.snapshot import Snapshot
from autograder.battery.student import Student, call, case, describe
from dlcourse.checks.batchnorm import (
    BatchNormCase,
    check_batch_norm,
    check_batch_norm_backward,
    check_batch_norm_module,
    is_default,
)

FORBIDDEN: dict[Callable, str] = {
    F.batch_norm: "torch.nn.functional.batch_norm",
    F.instance_norm: "torch.nn.functional.instance_norm",
    F.layer_norm: "torch.nn.functional.layer_norm",
    F.group_norm: "torch.nn.functional.group_norm",
    nn.modules.batchnorm._BatchNorm.forward: "nn.BatchNorm1d/nn.BatchNorm2d",
    **{
        getattr(torch, name): f"torch.{name}"
        for name in dir(torch)
        if "batch_norm" in name or name in ("instance_norm", "layer_norm", "group_norm", "native_layer_norm")
    },
}
TASK = "batch normalization from tensor operations such as mean and var"
CONTRACT = "batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5)"
AFFINES = ("both", "weight", "bias", None)
FAR_FROM_ZERO_TOL = 2e-3  # float32 with mean 1000 and std 1: every two-pass order errs by < 3e-4, one pass by > 3e-2


# ---------------------------------------------------------------- the student's function, watched


def watched(
    label: str, function: Callable, forbidden: dict[Callable, str] = FORBIDDEN, task: str = TASK, contract=CONTRACT
) -> Callable:
    """``function`` as the harness calls it: no forbidden calls, an exception named with its case."""

    def run(*args, **kwargs):
        with forbidding(label, forbidden, task):
            return call(label, function, *args, contract=contract, **kwargs)

    return run


@contextlib.contextmanager
def counting_lines() -> Iterator[None]:
    """Silence a visible check's printed lines; each one counts as a check of the enclosing group."""
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        yield
    for _ in range(log.getvalue().count("\n")):
        counted()


# ---------------------------------------------------------------- known mistakes


def normalise(
    x: torch.Tensor,
    dims: list[int],
    eps: float,
    *,
    unbiased: bool = False,
    eps_inside: bool = True,
    std: bool = False,
    one_pass: bool = False,
    detach_mean: bool = False,
    detach_var: bool = False,
) -> torch.Tensor:
    """(x - mean) / sqrt(var + eps) with statistics over ``dims``, and the known ways to get it wrong."""
    mean = (x.detach() if detach_mean else x).mean(dim=dims, keepdim=True)
    source = x.detach() if detach_var else x
    if one_pass:
        var = (source * source).mean(dim=dims, keepdim=True) - source.mean(dim=dims, keepdim=True) ** 2
    else:
        var = source.var(dim=dims, keepdim=True, unbiased=unbiased)
    spread = var.sqrt() if std else var
    return (x - mean) / (torch.sqrt(spread + eps) if eps_inside else torch.sqrt(spread) + eps)


def channel_view(vector: torch.Tensor, dim: int) -> torch.Tensor:
    return vector.reshape([1, -1] + [1] * (dim - 2))


def with_affine(y: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None) -> torch.Tensor:
    """y * weight + bias per channel (dimension 1); a missing weight or bias is left out."""
    y = y if weight is None else y * channel_view(weight, y.dim())
    return y if bias is None else y + channel_view(bias, y.dim())


def float64(tensor: torch.Tensor | None) -> torch.Tensor | None:
    return None if tensor is None else tensor.detach().to(torch.float64)


def output_mistakes(setup: BatchNormCase) -> dict[str, torch.Tensor]:
    """What the output would be after each known mistake (in float64, except the float32 one-pass variance)."""
    x, weight, bias = float64(setup.x), float64(setup.weight), float64(setup.bias)
    dims, eps = setup.dims, setup.eps

    def variant(y: torch.Tensor) -> torch.Tensor:
        return with_affine(y, weight, bias)

    found = {}
    if setup.training:
        found |= {
            "the batch is normalised with the unbiased variance (divide by n - 1); normalise with the biased one "
            "(divide by n), as torch does; only running_var gets the unbiased one": variant(
                normalise(x, dims, eps, unbiased=True)
            ),
            "eps belongs inside the square root: (x - mean) / sqrt(var + eps)": variant(
                normalise(x, dims, eps, eps_inside=False)
            ),
            "eps is missing: divide by sqrt(var + eps)": variant(normalise(x, dims, 0.0)),
            "divide by sqrt(var + eps), where var is the variance, not the standard deviation": variant(
                normalise(x, dims, eps, std=True)
            ),
            "these are statistics of each example (as in layer norm); batch norm takes them per channel over the "
            "batch": variant(normalise(x, list(range(1, x.dim())), eps)),
            "the variance was computed as E[x^2] - E[x]^2, which loses its precision when x is far from zero; "
            "compute it from x - mean (or with torch.var)": with_affine(
                normalise(setup.x.detach(), dims, eps, one_pass=True), setup.weight, setup.bias
            ),
        }
        if x.dim() > 2:
            found[
                "the statistics are per channel: reduce over every dimension except dimension 1 (N, H and W for "
                "(N, C, H, W) input)"
            ] = variant(normalise(x, [0], eps))
        if setup.running_mean is not None and setup.running_var is not None:
            found["with training=True normalise with the batch's statistics, not the running ones"] = variant(
                with_running_statistics(x, setup, eps_inside=True)
            )
    else:
        found |= {
            "with training=False normalise with running_mean and running_var, not the statistics of the batch": (
                variant(normalise(x, dims, eps))
            ),
            "eps belongs inside the square root: (x - running_mean) / sqrt(running_var + eps)": variant(
                with_running_statistics(x, setup, eps_inside=False)
            ),
            "running_var is a variance: divide by sqrt(running_var + eps), not by running_var + eps": variant(
                (x - channel_view(float64(setup.running_mean), x.dim()))
                / (channel_view(float64(setup.running_var), x.dim()) + eps)
            ),
        }
    if eps == 1e-5:
        keras = normalise(x, dims, 1e-3) if setup.training else with_running_statistics(x, setup, True, eps=1e-3)
        found["the result fits eps=1e-3, Keras' default; PyTorch's default (and this lab's) is eps=1e-5"] = variant(
            keras
        )
    y = normalise(x, dims, eps) if setup.training else with_running_statistics(x, setup, eps_inside=True)
    if weight is not None and bias is not None:
        found["weight and bias are swapped: y * weight + bias"] = with_affine(y, bias, weight)
    if weight is not None:
        found["the weight was not applied: multiply by weight when it is given"] = with_affine(y, None, bias)
    if bias is not None:
        found["the bias was not applied: add bias when it is given"] = with_affine(y, weight, None)
    return found


def with_running_statistics(x: torch.Tensor, setup: BatchNormCase, eps_inside: bool, eps=None) -> torch.Tensor:
    mean, var = channel_view(float64(setup.running_mean), x.dim()), channel_view(float64(setup.running_var), x.dim())
    eps = setup.eps if eps is None else eps
    return (x - mean) / (torch.sqrt(var + eps) if eps_inside else torch.sqrt(var) + eps)


def running_statistic_mistakes(key: str, setup: BatchNormCase) -> dict[str, torch.Tensor]:
    """What running_mean or running_var would hold after each known mistake in training."""
    x, momentum = float64(setup.x), setup.momentum
    running = float64(getattr(setup, key))
    n = x.numel() // x.shape[1]
    batch_mean, batch_var = x.mean(dim=setup.dims), x.var(dim=setup.dims, unbiased=False)
    statistic = batch_mean if key == "running_mean" else batch_var * n / (n - 1)
    found = {
        f"{key} was not updated in place: change the tensor passed (e.g. {key}.mul_(1 - momentum).add_(...)); "
        f"assigning to the name {key} only rebinds it inside the function": running,
        "momentum convention reversed: torch keeps (1 - momentum) of the old estimate, "
        "running = (1 - momentum) * running + momentum * batch statistic": momentum * running
        + (1 - momentum) * statistic,
    }
    if momentum == 0.1:
        found[
            "the result fits momentum=0.99, Keras' convention; PyTorch's default is momentum=0.1, the weight of "
            "the new batch"
        ] = 0.01 * running + 0.99 * statistic
    if key == "running_var":
        found["running_var stores the unbiased variance of the batch (n / (n - 1) times the biased one)"] = (
            1 - momentum
        ) * running + momentum * batch_var
    return found


def gradient_mistakes(setup: BatchNormCase) -> dict[str, torch.Tensor]:
    """The gradient with respect to x when (some of) the batch statistics are treated as constants."""
    if not setup.training:
        return {}

    def frozen(**detach):
        def batch_norm(x, running_mean, running_var, weight=None, bias=None, **_):
            return with_affine(normalise(x, setup.dims, setup.eps, **detach), weight, bias)

        return setup.run(batch_norm).grads["x"]

    return {
        "the gradient treats the batch mean and variance as constants; they depend on x, so do not detach them or "
        "compute them under torch.no_grad()": frozen(detach_mean=True, detach_var=True),
        "the gradient treats the batch variance as a constant; it depends on x, so do not detach it": frozen(
            detach_var=True
        ),
        "the gradient treats the batch mean as a constant; it depends on x, so do not detach it": frozen(
            detach_mean=True
        ),
    }


def function_mistakes(quantity: str, setup: BatchNormCase) -> dict[str, torch.Tensor]:
    """The ``mistakes`` hook of :func:`check_batch_norm`: what known mistakes give for ``quantity``."""
    if quantity == "output":
        return output_mistakes(setup)
    for key in ("running_mean", "running_var"):
        if quantity.startswith(key) and setup.training:
            return running_statistic_mistakes(key, setup)
    if quantity == "gradient with respect to x":
        return gradient_mistakes(setup)
    return {}


# ---------------------------------------------------------------- cases


def channel_vectors(channels: int, dtype: torch.dtype, seed: int, device) -> dict[str, torch.Tensor]:
    """Running mean, running variance (positive), weight (away from 0) and bias for ``channels``."""
    gen = seeded(seed)

    def draw(scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
        return (scale * torch.randn(channels, generator=gen, dtype=torch.float64) + shift).to(device, dtype)

    running_var = (torch.rand(channels, generator=gen, dtype=torch.float64) * 2 + 0.3).to(device, dtype)
    return {"running_mean": draw(), "running_var": running_var, "weight": draw(0.5, 1.0), "bias": draw()}


def batch(shape, seed: int, dtype: torch.dtype, device, offset: float = 0.0, spread: float | None = None):
    """x with a different mean and scale per channel (around ``offset``; scale ``spread`` when given)."""
    gen = seeded(seed)
    channels = shape[1]
    view = [1, channels] + [1] * (len(shape) - 2)
    means = offset + 2 * torch.randn(channels, generator=gen, dtype=torch.float64)
    if spread is None:
        scales = 0.5 + 2.5 * torch.rand(channels, generator=gen, dtype=torch.float64)
    else:
        scales = torch.full((channels,), spread, dtype=torch.float64)
    x = torch.randn(tuple(shape), generator=gen, dtype=torch.float64) * scales.view(view) + means.view(view)
    return x.to(device, dtype)


def arguments(shape, dtype, device, seed, affine, stats) -> dict[str, torch.Tensor | None]:
    vectors = channel_vectors(shape[1], dtype, seed, device)
    return {
        "running_mean": vectors["running_mean"] if stats else None,
        "running_var": vectors["running_var"] if stats else None,
        "weight": vectors["weight"] if affine in ("both", "weight") else None,
        "bias": vectors["bias"] if affine in ("both", "bias") else None,
    }


def call_label(x: torch.Tensor, given: dict, training: bool, momentum: Any, eps: Any, passing: str) -> str:
    """The call as the check makes it: every argument by position, by keyword, or only those not at their default."""
    first = (x, given["running_mean"], given["running_var"])
    options = {"weight": given["weight"], "bias": given["bias"], "training": training, "momentum": momentum, "eps": eps}
    if passing == "positional":
        return case("batch_norm", *first, *options.values())
    if passing == "defaults":
        options = {key: value for key, value in options.items() if not is_default(key, value)}
    return case("batch_norm", *first, **options)


def compare(
    batch_norm: Callable,
    x: torch.Tensor,
    given: dict[str, torch.Tensor | None],
    *,
    training: bool,
    momentum: Any = 0.1,
    eps: Any = 1e-5,
    seed: int = 0,
    passing: str = "keywords",
    gradients: bool = True,
    tol: float | None = None,
    note: str = "",
) -> None:
    """One case through the visible check, with the diagnoses of known mistakes, forbidden calls watched."""
    label = call_label(x, given, training, momentum, eps, passing) + (f" ({note})" if note else "")
    with counting_lines():
        check_batch_norm(
            label,
            watched(label, batch_norm),
            x,
            **given,
            training=training,
            momentum=momentum,
            eps=eps,
            seed=seed,
            gradients=gradients,
            passing=passing,
            tol=tol,
            mistakes=function_mistakes,
        )


TRAINING_CASES = [  # shape, momentum, eps, affine, running statistics given, how the arguments are passed
    ((32, 10), 0.1, 1e-5, "both", True, "keywords"),
    ((5, 7), 0.3, 1e-3, None, True, "defaults"),
    ((2, 6), 1.0, 1e-5, "both", True, "positional"),  # N = 2: the smallest batch
    ((2, 1), 1, 1e-5, "weight", True, "keywords"),  # C = 1, integer momentum
    ((13, 1), 0.0, 0.1, "bias", True, "keywords"),  # momentum 0: the running statistics keep their values
    ((3, 5), 0.1, 1e-5, "bias", False, "keywords"),  # no running statistics: nothing to update
    ((9, 4), 0.1, 1e-5, None, False, "defaults"),  # batch_norm(x, None, None, training=True)
    ((4, 3, 6, 5), 0.1, 1e-5, "both", True, "keywords"),
    ((3, 8, 2, 7), 0.25, 1e-2, None, True, "positional"),
    ((1, 4, 3, 3), 0.1, 1e-5, "both", True, "defaults"),  # one image: statistics over its positions
    ((1, 2, 1, 2), 0.5, 1e-5, "weight", True, "keywords"),  # two values per channel
    ((2, 1, 3, 1), 0.1, 1e-3, "both", True, "keywords"),  # C = 1, W = 1
    ((7, 3, 1, 1), 0.1, 1e-5, "both", True, "keywords"),  # H = W = 1: statistics over the batch only
    ((5, 3, 4, 4), 0.1, 1e-5, "bias", False, "positional"),
]
EVAL_CASES = [  # shape, momentum, eps, affine, how the arguments are passed
    ((7, 3), 0.1, 1e-5, "both", "keywords"),
    ((1, 5), 0.1, 1e-3, "both", "defaults"),  # one example: no batch statistics needed
    ((1, 2, 1, 1), 0.1, 1e-5, "weight", "keywords"),  # one value per channel is fine in evaluation
    ((4, 6, 3, 3), 0.5, 1e-5, "weight", "positional"),
    ((1, 2, 4, 4), 0.1, 1e-5, None, "defaults"),  # batch_norm(x, running_mean, running_var): training=False
    ((6, 1), 0.1, 0.1, "bias", "defaults"),
    ((3, 4, 2, 5), 1, 1e-5, "both", "positional"),
    ((5, 3), 0.1, 1e-5, None, "defaults"),
]


def check_batch_norm_training(namespace: MutableMapping[str, Any]) -> None:
    """batch_norm(..., training=True) against PyTorch's, with every promise of the contract."""
    student = Student(namespace)
    batch_norm = student.function("batch_norm")
    device = student.device

    title = (
        "batch_norm(training=True) against PyTorch in float64: shapes, N = 1 and 2, C = 1, momenta, eps, weight, "
        "bias and running statistics None or given, arguments by keyword, by position and left to their defaults"
    )
    with group(title):
        for seed, (shape, momentum, eps, affine, stats, passing) in enumerate(TRAINING_CASES):
            x = batch(shape, seed, torch.float64, device)
            given = arguments(shape, torch.float64, device, seed, affine, stats)
            compare(batch_norm, x, given, training=True, momentum=momentum, eps=eps, seed=seed, passing=passing)

    with group("batch_norm(training=True): memory layouts of x, x with and without requires_grad"):
        check_layouts(batch_norm, device, training=True)

    with group("batch_norm(training=True) in float32, inputs far from zero (mean 1000) and of tiny variance"):
        for seed, shape in enumerate([(64, 20), (16, 8, 6, 6)]):
            x = batch(shape, 40 + seed, torch.float32, device)
            compare(batch_norm, x, arguments(shape, torch.float32, device, seed, "both", True), training=True)
        for seed, shape in enumerate([(16, 5), (4, 3, 5, 5)]):
            x = batch(shape, 50 + seed, torch.float32, device, offset=1000.0, spread=1.0)
            given = arguments(shape, torch.float32, device, seed, "both", True)
            compare(batch_norm, x, given, training=True, tol=FAR_FROM_ZERO_TOL, note="x of mean 1000 and std 1")
        for seed, shape in enumerate([(40, 5), (6, 5, 4, 4)]):
            x = batch(shape, 60 + seed, torch.float64, device, offset=3.0, spread=1e-4)
            given = arguments(shape, torch.float64, device, seed, "both", True)
            compare(batch_norm, x, given, training=True, note="variance 1e-8: eps dominates")

    with group("batch_norm(training=True) with one value per channel raises ValueError, changing nothing"):
        for shape, stats in [((1, 6), True), ((1, 3, 1, 1), True), ((1, 4), False)]:
            check_one_value_per_channel(batch_norm, shape, stats, device)

    with group("batch_norm(training=True) on a simulated GPU"):
        check_on_simulated_gpu(batch_norm, device, training=True)

    with group("batch_norm(training=True) on random cases (hypothesis)"):
        for_all(random_cases(training=True), lambda drawn: compare_drawn(batch_norm, device, drawn), examples=20)


def check_batch_norm_eval(namespace: MutableMapping[str, Any]) -> None:
    """batch_norm(..., training=False) against PyTorch's: running statistics used, nothing changed."""
    student = Student(namespace)
    batch_norm = student.function("batch_norm")
    device = student.device

    title = (
        "batch_norm(training=False) against PyTorch in float64: shapes, N = 1, C = 1, eps, weight and bias None or "
        "given, training=False by default, running statistics unchanged"
    )
    with group(title):
        for seed, (shape, momentum, eps, affine, passing) in enumerate(EVAL_CASES):
            x = batch(shape, 100 + seed, torch.float64, device)
            given = arguments(shape, torch.float64, device, 100 + seed, affine, True)
            compare(batch_norm, x, given, training=False, momentum=momentum, eps=eps, seed=seed, passing=passing)

    with group("batch_norm(training=False): memory layouts, float32, inputs far from zero, x without requires_grad"):
        check_layouts(batch_norm, device, training=False)
        for seed, shape in enumerate([(32, 8, 5, 5), (50, 20)]):
            x = batch(shape, 110 + seed, torch.float32, device)
            compare(batch_norm, x, arguments(shape, torch.float32, device, seed, "both", True), training=False)
        x = batch((6, 3, 2, 2), 120, torch.float32, device, offset=1000.0, spread=1.0)
        given = arguments((6, 3, 2, 2), torch.float32, device, 120, "both", True)
        given["running_mean"] = given["running_mean"] + 1000
        compare(batch_norm, x, given, training=False, tol=FAR_FROM_ZERO_TOL, note="x of mean 1000")

    with group("batch_norm(training=False) on a simulated GPU"):
        check_on_simulated_gpu(batch_norm, device, training=False)

    with group("batch_norm(training=False) on random cases (hypothesis)"):
        for_all(random_cases(training=False), lambda drawn: compare_drawn(batch_norm, device, drawn), examples=12)


def check_layouts(batch_norm: Callable, device, training: bool) -> None:
    """Every memory layout of x (strided, transposed storage, channels_last), and x without requires_grad."""
    for seed, shape in enumerate([(6, 4), (5, 3, 4, 3)]):
        base = batch(shape, 70 + seed, torch.float64, device)
        given = arguments(shape, torch.float64, device, 70 + seed, "both", True)
        for name, x in layouts(base):
            if name != "contiguous":
                compare(batch_norm, x, given, training=training, momentum=0.2, note=name)
        compare(batch_norm, base, given, training=training, momentum=0.2, gradients=False, note="x without grad")


def check_one_value_per_channel(batch_norm: Callable, shape, stats: bool, device) -> None:
    x = batch(shape, 80, torch.float64, device)
    given = arguments(shape, torch.float64, device, 80, "both", stats)
    label = case("batch_norm", x, given["running_mean"], given["running_var"], training=True)
    snapshot = Snapshot(running_mean=given["running_mean"], running_var=given["running_var"])
    with forbidding(label, FORBIDDEN, TASK):
        try:
            batch_norm(x, given["running_mean"], given["running_var"], given["weight"], given["bias"], training=True)
        except ValueError:
            raised = None
        except Exception as error:  # noqa: BLE001 - the wrong kind of error is the finding
            raised = f"raised {type(error).__name__}: {error}"
        else:
            raised = "returned without an error"
    require(
        raised is None,
        label,
        f"{raised}; with one value per channel (N * H * W = 1) the batch variance is undefined: raise ValueError "
        "in training mode, as torch does",
    )
    snapshot.assert_unchanged(label + " (raise ValueError before changing the running statistics)")


def check_on_simulated_gpu(batch_norm: Callable, device, training: bool) -> None:
    """Nothing made on the CPU may meet x or the statistics when they live on a GPU."""
    if device.type != "cpu":
        return  # the cases above ran on the real GPU
    for seed, (shape, affine) in enumerate([((8, 3), "both"), ((4, 3, 2, 2), None), ((5, 2), "bias")]):
        x = batch(shape, 90 + seed, torch.float64, device)
        given = arguments(shape, torch.float64, device, 90 + seed, affine, True)
        label = case("batch_norm", x, *given.values(), training=training) + " with every tensor on a GPU"
        _, violations = run_on_simulated_gpu(
            batch_norm, x, *given.values(), training=training, momentum=0.1, eps=1e-5
        )  # running statistics moved to the CPU (.data = ...) and a result made there are violations too
        require(not violations, label, violations[0] if violations else "")


def random_cases(training: bool) -> st.SearchStrategy:
    """(shape, dtype, momentum, eps, affine, stats, seed, training), with more than one value per channel in
    training, and at least 8 in float32, where the batch variance of a handful of values can be so small
    that rounding alone moves the gradients by more than the tolerance."""
    sizes = st.integers(1, 4)
    shape = st.one_of(
        st.tuples(st.integers(1, 7), st.integers(1, 4)),
        st.tuples(st.integers(1, 4), st.integers(1, 4), sizes, sizes),
    )
    drawn = st.tuples(
        shape,
        st.sampled_from((torch.float64, torch.float32)),
        st.sampled_from((0.0, 0.1, 0.3, 1.0, 1)),
        st.sampled_from((1e-5, 1e-3, 0.1)),
        st.sampled_from(AFFINES),
        st.booleans() if training else st.just(True),
        st.integers(0, 2**16),
        st.just(training),
    )
    if training:
        return drawn.filter(lambda d: values_per_channel(d[0]) >= (8 if d[1] == torch.float32 else 2))
    return drawn


def values_per_channel(shape) -> int:
    """n = N * H * W, the number of values each channel's batch statistics are taken over."""
    return shape[0] * math.prod(shape[2:])


def compare_drawn(batch_norm: Callable, device, drawn) -> None:
    shape, dtype, momentum, eps, affine, stats, seed, training = drawn
    x = batch(shape, seed, dtype, device)
    given = arguments(shape, dtype, device, seed, affine, stats)
    compare(batch_norm, x, given, training=training, momentum=momentum, eps=eps, seed=seed)


# ---------------------------------------------------------------- the backward pass by hand

AUTOGRAD: dict[Callable, str] = {
    torch.autograd.grad: "torch.autograd.grad",
    torch.autograd.backward: "torch.autograd.backward",
    torch.Tensor.backward: "Tensor.backward",
    torch.autograd.functional.vjp: "torch.autograd.functional.vjp",
    torch.autograd.functional.jacobian: "torch.autograd.functional.jacobian",
    torch.func.grad: "torch.func.grad",
    torch.func.vjp: "torch.func.vjp",
    torch.func.jacrev: "torch.func.jacrev",
}
BACKWARD_FORBIDDEN = {**FORBIDDEN, **AUTOGRAD}
BACKWARD_TASK = "the gradients of batch normalization by hand, from tensor operations, without autograd"
BACKWARD_CONTRACT = "batch_norm_backward(grad_out, x, weight, eps) returns (grad_x, grad_weight, grad_bias)"


def gradients_by_formula(
    grad_out: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    eps: float,
    *,
    dims: list[int] | None = None,
    count: int | None = None,
    unbiased: bool = False,
    eps_inside: bool = True,
    mean_term: float = 1.0,
    var_term: float = 1.0,
    weight_factor: bool = True,
    weight_from_x: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The closed form in float64, and (through the options) the known ways to get it wrong:

    grad_x = weight / std * (g - mean_term * sum(g) / n - var_term * x_hat * sum(g * x_hat) / n),
    grad_weight = sum(g * x_hat), grad_bias = sum(g), sums per channel over ``dims`` (every dim but 1).
    """
    g, x, weight = float64(grad_out), float64(x), float64(weight)
    channels = [0, *range(2, x.dim())]
    dims = channels if dims is None else dims
    n = math.prod(x.shape[d] for d in dims) if count is None else count
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, keepdim=True, unbiased=unbiased)
    std = torch.sqrt(var + eps) if eps_inside else torch.sqrt(var) + eps
    x_hat = (x - mean) / std
    sum_g, sum_g_x_hat = g.sum(dim=dims, keepdim=True), (g * x_hat).sum(dim=dims, keepdim=True)
    grad_x = (g - mean_term * sum_g / n - var_term * x_hat * sum_g_x_hat / n) / std
    if weight_factor:
        grad_x = grad_x * channel_view(weight, x.dim())
    grad_weight = (g * (x if weight_from_x else x_hat)).sum(dim=channels)
    return grad_x, grad_weight, g.sum(dim=channels)


def batch_norm_gradients(
    grad_out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PyTorch's gradients of sum(grad_out * y), y = F.batch_norm(x, training=True) with weight and a bias,
    with respect to x, weight and bias: autograd in float64 on the CPU (what the visible check compares with)."""
    x64 = x.detach().to("cpu", torch.float64).requires_grad_(True)
    weight64 = weight.detach().to("cpu", torch.float64).requires_grad_(True)
    bias64 = torch.zeros_like(weight64, requires_grad=True)
    y = F.batch_norm(x64, None, None, weight64, bias64, training=True, eps=float(eps))
    upstream = grad_out.detach().to("cpu", torch.float64)
    return torch.autograd.grad((y * upstream).sum(), (x64, weight64, bias64))


def backward_mistakes(quantity: str, arguments: tuple) -> dict[str, torch.Tensor]:
    """The ``mistakes`` hook of :func:`check_batch_norm_backward`: what known mistakes give for ``quantity``."""
    grad_out, x, weight, eps = arguments
    index = ("grad_x", "grad_weight", "grad_bias").index(quantity)

    def wrong(**options) -> torch.Tensor:
        return gradients_by_formula(grad_out, x, weight, eps, **options)[index]

    found = {}
    if quantity == "grad_x":
        found |= {
            "the batch mean and variance were treated as constants; both depend on every x of the channel, and "
            "each adds a term to the gradient": wrong(mean_term=0, var_term=0),
            "the path through the batch mean is missing (a term with the sum of grad_out)": wrong(mean_term=0),
            "the path through the batch variance is missing (a term with x_hat)": wrong(var_term=0),
            "sign error in the term through the variance": wrong(var_term=-1),
            "sign error in the term through the mean": wrong(mean_term=-1),
            "the factor weight is missing: y = weight * x_hat + bias": wrong(weight_factor=False),
        }
        if x.dim() > 2 and x.shape[0] != x.numel() // x.shape[1]:
            found["n is the number of values per channel, N * H * W, not the batch size N"] = wrong(count=x.shape[0])
            found[
                "the sums and statistics are per channel: reduce over every dimension except dimension 1 (N, H and W "
                "for (N, C, H, W) input)"
            ] = wrong(dims=[0])
    if quantity == "grad_weight":
        found["grad_weight sums grad_out times the normalised input x_hat, not times x"] = wrong(weight_from_x=True)
        found["grad_weight and grad_bias are swapped"] = gradients_by_formula(grad_out, x, weight, eps)[2]
    if quantity == "grad_bias":
        found["grad_weight and grad_bias are swapped"] = gradients_by_formula(grad_out, x, weight, eps)[1]
        found["grad_bias is a sum over the values of each channel, not a mean"] = float64(grad_out).mean(
            dim=[0, *range(2, x.dim())]
        )
    if quantity in ("grad_x", "grad_weight"):
        found[
            "the batch variance in x_hat is the biased one (divide by n), as in the forward pass in training mode"
        ] = wrong(unbiased=True)
        found["eps belongs inside the square root: sqrt(var + eps)"] = wrong(eps_inside=False)
    return found


def backward_arguments(shape, seed: int, dtype: torch.dtype, device, offset: float = 0.0, spread=None):
    """(grad_out, x, weight) for one case: grad_out of non-zero mean per channel, so every term matters.

    Far from zero (``offset``) grad_out has mean zero: in float32 the batch mean of x errs by some 1e-4
    there, which shifts every x_hat alike and grad_weight = sum(grad_out * x_hat) by that times sum(grad_out).
    """
    x = batch(shape, seed, dtype, device, offset=offset, spread=spread)
    if offset:
        grad_out = normal(shape, seed=seed + 1000, dtype=dtype, device=device)
    else:
        grad_out = batch(shape, seed + 1000, dtype, device, spread=1.0) * 0.5
    weight = channel_vectors(shape[1], dtype, seed, device)["weight"]
    return grad_out, x, weight


def compare_backward(
    batch_norm_backward: Callable,
    grad_out: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    eps: Any = 1e-5,
    *,
    passing: str = "positional",
    tol: float | None = None,
    note: str = "",
) -> None:
    """One case through the visible check, with the diagnoses of known mistakes, autograd and torch's batch norm
    forbidden."""
    label = case("batch_norm_backward", grad_out, x, weight, eps=eps) + (f" ({note})" if note else "")
    watched_backward = watched(label, batch_norm_backward, BACKWARD_FORBIDDEN, BACKWARD_TASK, BACKWARD_CONTRACT)
    with counting_lines():
        check_batch_norm_backward(
            label, watched_backward, grad_out, x, weight, eps, passing=passing, tol=tol, mistakes=backward_mistakes
        )


BACKWARD_CASES = [  # shape, eps, how the arguments are passed
    ((32, 10), 1e-5, "positional"),
    ((2, 6), 1e-5, "keywords"),  # N = 2: the smallest batch
    ((2, 1), 1e-3, "positional"),  # C = 1
    ((7, 3), 0.1, "positional"),  # eps comparable with the variance
    ((6, 2), 1, "keywords"),  # an integer eps
    ((13, 5), 1e-5, "positional"),
    ((4, 3, 6, 5), 1e-5, "positional"),
    ((1, 4, 3, 3), 1e-5, "keywords"),  # one image: statistics over its positions
    ((1, 2, 1, 2), 1e-5, "positional"),  # one image, two values per channel
    ((3, 5, 2, 7), 1e-2, "positional"),
    ((5, 3, 1, 1), 1e-5, "positional"),  # H = W = 1: statistics over the batch only
    ((2, 1, 3, 1), 1e-3, "keywords"),  # C = 1, W = 1
]


def check_batch_norm_backward_pass(namespace: MutableMapping[str, Any]) -> None:
    """batch_norm_backward(grad_out, x, weight, eps) against autograd of F.batch_norm(training=True)."""
    student = Student(namespace)
    backward = student.function("batch_norm_backward")
    device = student.device

    title = (
        "batch_norm_backward against autograd of F.batch_norm(training=True) in float64: (N, C) and (N, C, H, W), "
        "N = 1 and 2, C = 1, odd sizes, eps, several seeds; inputs left alone; no autograd"
    )
    with group(title):
        for seed, (shape, eps, passing) in enumerate(BACKWARD_CASES):
            compare_backward(backward, *backward_arguments(shape, seed, torch.float64, device), eps, passing=passing)

    with group("batch_norm_backward: memory layouts, inputs that require grad"):
        for seed, shape in enumerate([(6, 4), (5, 3, 4, 3)]):
            grad_out, base, weight = backward_arguments(shape, 200 + seed, torch.float64, device)
            for name, x in layouts(base):
                if name != "contiguous":
                    compare_backward(backward, transposed_layout(grad_out), x, weight, note=f"x {name}")
            leaf = base.detach().clone().requires_grad_(True)
            parameter = nn.Parameter(weight.detach().clone())
            compare_backward(backward, grad_out, leaf, parameter, note="x and weight require grad")
            compare_backward(backward, grad_out, requiring_grad(base), weight, note="x computed with autograd")
            compare_backward(backward, requiring_grad(grad_out), leaf, parameter, note="every input requires grad")

    with group("batch_norm_backward in float32, inputs far from zero (mean 1000) and of tiny variance"):
        for seed, shape in enumerate([(64, 20), (16, 8, 6, 6), (2, 5)]):
            compare_backward(backward, *backward_arguments(shape, 210 + seed, torch.float32, device))
        for seed, shape in enumerate([(16, 5), (4, 3, 5, 5)]):
            arguments = backward_arguments(shape, 220 + seed, torch.float32, device, offset=1000.0, spread=1.0)
            compare_backward(backward, *arguments, tol=FAR_FROM_ZERO_TOL, note="x of mean 1000 and std 1")
            arguments = backward_arguments(shape, 230 + seed, torch.float64, device, offset=1000.0, spread=1.0)
            compare_backward(backward, *arguments, note="x of mean 1000 and std 1")
        for seed, shape in enumerate([(40, 5), (6, 5, 4, 4)]):
            arguments = backward_arguments(shape, 240 + seed, torch.float64, device, offset=3.0, spread=1e-4)
            compare_backward(backward, *arguments, note="variance 1e-8: eps dominates")

    if device.type == "cpu":
        with group("batch_norm_backward on a simulated GPU"):
            for seed, shape in enumerate([(8, 3), (3, 2, 2, 3)]):
                arguments = backward_arguments(shape, 250 + seed, torch.float64, device)
                label = case("batch_norm_backward", *arguments, eps=1e-5) + " with every tensor on a GPU"
                _, violations = run_on_simulated_gpu(backward, *arguments, 1e-5)
                require(not violations, label, violations[0] if violations else "")

    with group("batch_norm_backward on random cases (hypothesis)"):
        for_all(backward_cases(), lambda drawn: compare_backward_drawn(backward, device, drawn), examples=12)


def backward_cases() -> st.SearchStrategy:
    """(shape, dtype, eps, seed), with at least 2 values per channel (8 in float32)."""
    sizes = st.integers(1, 4)
    shape = st.one_of(
        st.tuples(st.integers(2, 9), st.integers(1, 4)),
        st.tuples(st.integers(1, 4), st.integers(1, 4), sizes, sizes),
    )
    drawn = st.tuples(
        shape,
        st.sampled_from((torch.float64, torch.float32)),
        st.sampled_from((1e-5, 1e-3, 0.1)),
        st.integers(0, 2**16),
    )
    return drawn.filter(lambda d: values_per_channel(d[0]) >= (8 if d[1] == torch.float32 else 2))


def compare_backward_drawn(backward: Callable, device, drawn) -> None:
    shape, dtype, eps, seed = drawn
    compare_backward(backward, *backward_arguments(shape, seed, dtype, device), eps)


# ---------------------------------------------------------------- the modules


class LentBatchNorm:
    """PyTorch's batch_norm lent to the student's modules in place of theirs; records every call.

    It calls ``torch.batch_norm`` (what ``F.batch_norm`` calls) from this file, so the forbidden-call
    watch, which ignores calls made by the battery, sees only the student's own calls. It accepts
    any momentum in evaluation (None too), where it is not used, and computes with whatever it
    gets, so that :func:`check_calls` can name a wrong argument rather than a crash.
    """

    def __init__(self):
        self.calls: list[dict[str, Any]] = []

    def __call__(self, x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
        self.calls.append({"training": training, "momentum": momentum, "eps": eps, "running_mean": running_mean})
        if isinstance(momentum, torch.Tensor):
            momentum = momentum.item()
        if not training:
            momentum = 0.0
        elif momentum is None:
            raise TypeError("momentum=None reached batch_norm in training; pass 1 / num_batches_tracked instead")
        if training and values_per_channel(x.shape) == 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {x.shape}")
        cudnn = torch.backends.cudnn.enabled
        return torch.batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps, cudnn)


@dataclass
class Shapes:
    """Batch sizes (N, ...) without the channels: for training batches, then for eval."""

    train: list[tuple[int, ...]]
    eval: list[tuple[int, ...]]


class ModuleSpec:
    """How one module is built: ``Student(C, *args, **kwargs)`` and ``nn.BatchNormXd(C, eps, momentum)``."""

    def __init__(self, name: str, reference: type[nn.Module], channels: int, *args, dtype=None, **kwargs):
        self.name, self.reference_class, self.channels, self.args, self.kwargs = name, reference, channels, args, kwargs
        self.dtype = dtype
        options = dict(zip(("eps", "momentum"), args, strict=False)) | kwargs
        self.eps, self.momentum = options.get("eps", 1e-5), options.get("momentum", 0.1)

    @property
    def label(self) -> str:
        parts = [str(self.channels), *map(repr, self.args), *(f"{k}={v!r}" for k, v in self.kwargs.items())]
        suffix = "" if self.dtype is None else f".to({str(self.dtype).removeprefix('torch.')})"
        return f"{self.name}({', '.join(parts)}){suffix}"

    def shape(self, size: tuple[int, ...]) -> tuple[int, ...]:
        """The input shape (N, C, ...) for a batch of ``size`` = (N, ...)."""
        return (size[0], self.channels, *size[1:])

    def build(self, module_class: type[nn.Module], device) -> nn.Module:
        module = call(self.label, module_class, self.channels, *self.args, contract=self.contract, **self.kwargs)
        return call(f"{self.label}.to({device.type})", module.to, device=device, dtype=self.dtype)

    def reference(self, device) -> nn.Module:
        module = self.reference_class(self.channels, eps=self.eps, momentum=self.momentum)
        return module.to(device=device, dtype=self.dtype)

    @property
    def contract(self) -> str:
        return f"{self.name}(num_features, eps=1e-5, momentum=0.1)"


def expected_momentum(spec: ModuleSpec, batches: int) -> float:
    return 1.0 / batches if spec.momentum is None else spec.momentum


def check_calls(label: str, lent: LentBatchNorm, before: int, module: nn.Module, spec: ModuleSpec, batches: int):
    """The forward just run called batch_norm once, with training=self.training, its eps and momentum."""
    calls = lent.calls[before:]
    require(
        len(calls) == 1,
        label,
        f"forward called batch_norm {len(calls)} times; call the global batch_norm function exactly once per forward "
        "(the grader puts PyTorch's in its place to grade the module on its own)",
    )
    made = calls[0]
    require(
        made["training"] is module.training or made["training"] == module.training,
        label,
        f"the module is in {'train' if module.training else 'eval'} mode but called batch_norm with "
        f"training={made['training']!r}; pass training=self.training",
    )
    require(
        isinstance(made["eps"], int | float) and abs(made["eps"] - spec.eps) <= 1e-12 * spec.eps,
        label,
        f"batch_norm got eps={made['eps']!r}; pass the module's eps ({spec.eps}; the default is eps=1e-5)",
    )
    if module.training and made["running_mean"] is not None:
        momentum = made["momentum"]
        if isinstance(momentum, torch.Tensor) and momentum.dim() == 0:
            momentum = momentum.item()  # 1.0 / self.num_batches_tracked: a float32 tensor, fine too
        wanted = expected_momentum(spec, batches)
        if spec.momentum is None:
            rule = (
                f"with momentum=None use the cumulative average: momentum = 1 / num_batches_tracked = 1/{batches} "
                "once this batch is counted"
            )
        elif isinstance(momentum, int | float) and abs(momentum - (1 - wanted)) <= 1e-12:
            rule = (
                f"pass the module's momentum ({wanted}) itself, not 1 - momentum: in PyTorch's convention momentum "
                "is the weight of the new batch (Keras' momentum=0.99 is PyTorch's 0.01)"
            )
        elif momentum == 0.99:
            rule = "momentum=0.99 is Keras' convention; PyTorch's default is momentum=0.1, the weight of the new batch"
        else:
            rule = f"pass the module's momentum ({wanted}; the default is momentum=0.1)"
        require(
            isinstance(momentum, int | float) and abs(momentum - wanted) <= 1e-7 * wanted,
            label,
            f"training batch {batches}: batch_norm got momentum={momentum!r}; {rule}",
        )


def module_mistakes(spec: ModuleSpec) -> Callable:
    """The ``mistakes`` hook of :func:`check_batch_norm_module`: wrong running means a module can produce."""

    def mistakes(quantity: str, values: dict[str, Any]) -> dict[str, torch.Tensor]:
        if quantity != "running_mean":
            return {}
        before, mean = values["before"], values["batch"]
        momentum = expected_momentum(spec, values["step"])
        return {
            "momentum=0.99 is Keras' convention; PyTorch's default is momentum=0.1, the weight of the new batch": (
                0.01 * before + 0.99 * mean
            ),
            f"pass momentum = {momentum:.4g} itself to batch_norm, not 1 - momentum": momentum * before
            + (1 - momentum) * mean,
        }

    return mistakes


@contextlib.contextmanager
def lent_batch_norm(student: Student) -> Iterator[LentBatchNorm]:
    lent = LentBatchNorm()
    with student.lending(batch_norm=lent):
        yield lent


def check_module(namespace: MutableMapping[str, Any], name: str, specs: list[ModuleSpec], shapes: Shapes) -> None:
    """The whole contract of ``name`` (BatchNorm1d or BatchNorm2d), graded with PyTorch's batch_norm lent."""
    student = Student(namespace)
    module_class = student.module_class(name)
    device = student.device
    reference_class = specs[0].reference_class

    with group(f"{name}: parameters and buffers, initial values, state_dict, .to(dtype), instances independent"):
        with lent_batch_norm(student):
            check_structure(module_class, specs[0], shapes)

    title = (
        f"{name}: forward calls batch_norm once with training=self.training, its eps and momentum; eval changes "
        "nothing; batches of several sizes and memory layouts; no forbidden calls"
    )
    with group(title):
        for seed, spec in enumerate(specs):
            with lent_batch_norm(student) as lent:
                check_forward_calls(module_class, spec, shapes, device, lent, seed)

    title = (
        f"{name} against nn.{reference_class.__name__}: outputs, gradients of x, weight and bias, buffers through "
        "training batches of several sizes, then eval"
    )
    with group(title):
        for seed, spec in enumerate(specs):
            with lent_batch_norm(student):
                module = spec.build(module_class, device)
                batches = [spec.shape(size) for size in shapes.train * 2]
                with counting_lines():
                    check_batch_norm_module(
                        spec.label, module, spec.reference(device), batches, seed=seed, mistakes=module_mistakes(spec)
                    )

    if device.type == "cpu":
        with group(f"{name} on a simulated GPU"), lent_batch_norm(student):
            check_module_on_simulated_gpu(module_class, specs[0], shapes)


def check_structure(module_class: type[nn.Module], spec: ModuleSpec, shapes: Shapes) -> None:
    """Parameters, buffers, initial values and dtypes as PyTorch's; .to(dtype); instances independent."""
    label = f"{spec.name}({spec.channels})"
    module = call(label, module_class, spec.channels, contract=spec.contract)
    reference = spec.reference_class(spec.channels)
    require(isinstance(module, nn.Module), label, "must be an nn.Module")
    parameters, buffers = dict(module.named_parameters()), dict(module.named_buffers())
    require(
        sorted(parameters) == ["bias", "weight"],
        label,
        f"the parameters must be exactly weight and bias (nn.Parameter), got {sorted(parameters)}; the running "
        "statistics and num_batches_tracked are buffers (self.register_buffer)",
    )
    require(
        sorted(buffers) == ["num_batches_tracked", "running_mean", "running_var"],
        label,
        f"the buffers must be running_mean, running_var and num_batches_tracked (self.register_buffer), got "
        f"{sorted(buffers)}",
    )
    state = module.state_dict()
    for key, wanted in reference.state_dict().items():
        require(key in state, label, f"the state_dict has no {key}")
        require(
            state[key].shape == wanted.shape and state[key].dtype == wanted.dtype,
            label,
            f"{key} must be a {wanted.dtype} tensor of shape {tuple(wanted.shape)}, got {state[key].dtype} "
            f"{tuple(state[key].shape)}",
        )
        assert_close(f"{label}: initial {key}", state[key], wanted, atol=0)
    for dtype in (torch.float64, torch.float32):
        moved = call(f"{label}.to({dtype})", module.to, dtype)
        for key, value in moved.state_dict().items():
            wanted = torch.long if key == "num_batches_tracked" else dtype
            require(value.dtype == wanted, f"{label}.to({dtype})", f"{key} is {value.dtype}, expected {wanted}")
    call(f"{label}.load_state_dict(PyTorch's state_dict)", module.load_state_dict, reference.state_dict())
    other = call(label, module_class, spec.channels)
    initial = {key: value.clone() for key, value in other.state_dict().items()}
    x = batch(spec.shape(shapes.train[0]), 1, torch.float32, "cpu")
    call(f"{label} in train mode on x: {describe(x)}", module.train(), x)
    for key, value in other.state_dict().items():
        require(
            torch.equal(value, initial[key]),
            label,
            f"training one instance changed {key} of another: give every instance its own tensors (create them in "
            "__init__, not as class attributes)",
        )


def check_forward_calls(module_class, spec: ModuleSpec, shapes: Shapes, device, lent: LentBatchNorm, seed: int):
    """Training then eval forwards on batches of several sizes and layouts: calls, outputs and buffers."""
    module = spec.build(module_class, device)
    reference = spec.reference(device)
    dtype = next(reference.parameters()).dtype
    gen = seeded(seed)
    with torch.no_grad():
        reference.weight.copy_(1 + 0.5 * torch.randn(spec.channels, generator=gen, dtype=torch.float64))
        reference.bias.copy_(torch.randn(spec.channels, generator=gen, dtype=torch.float64))
    call(f"{spec.label}.load_state_dict(PyTorch's state_dict)", module.load_state_dict, reference.state_dict())
    tol = 1e-9 if dtype == torch.float64 else 1e-4
    batches = 0
    for training, size in [(True, size) for size in shapes.train] + [(False, size) for size in shapes.eval]:
        module.train(training), reference.train(training)
        base = batch(spec.shape(size), seed + batches, dtype, device)
        for layout, x in layouts(base):
            batches += training
            label = f"{spec.label} in {'train' if training else 'eval'} mode on x: {describe(x)} ({layout})"
            snapshot = Snapshot(x=x) if training else Snapshot(x=x, module=module)
            before = len(lent.calls)
            with forbidding(label, FORBIDDEN, TASK):
                output = call(label, module, x, contract=f"{spec.name}.forward(x)")
            check_calls(label, lent, before, module, spec, batches)
            snapshot.assert_unchanged(label)
            with torch.no_grad():
                expected = reference(x)
            # a cumulative momentum computed in float32 (1.0 / the long counter) is off by 1e-8 relative,
            # and so are the running statistics and the eval-mode outputs that use them
            state_tol = max(tol, 1e-7) if spec.momentum is None else tol
            output_tol = tol if training else state_tol
            assert_close(
                label,
                output.detach() if isinstance(output, torch.Tensor) else output,
                expected,
                atol=output_tol,
                rtol=output_tol,
            )
            got, wanted = module.state_dict(), reference.state_dict()
            for key in ("running_mean", "running_var", "num_batches_tracked"):
                assert_close(f"{label}: {key} afterwards", got[key], wanted[key], atol=state_tol, rtol=state_tol)


def check_module_on_simulated_gpu(module_class, spec: ModuleSpec, shapes: Shapes) -> None:
    """Build the module, move it to a GPU, run a training and an eval forward: nothing made on the CPU.

    The module is built under the simulation, and its parameters and buffers then count as moved to the
    GPU, as ``module.to("cuda")`` would move them; a tensor kept in a plain attribute stays on the CPU.
    """
    label = f"{spec.name}({spec.channels}).to('cuda') on x on the GPU"
    x = batch(spec.shape(shapes.train[0]), 300, torch.float32, "cpu")
    violations, outputs, tensors = module_on_simulated_gpu(module_class, (spec.channels,), {}, x, [True, False])
    require(
        not violations,
        label,
        (violations[0] if violations else "")
        + " (module.to(device) moves parameters and buffers only: keep no tensor in a plain attribute)",
    )
    for on_gpu in outputs:
        require(on_gpu is not False, label, "the output was made on the CPU while x was on the GPU")
    for key, on_gpu in tensors.items():
        require(
            on_gpu,
            label,
            f"{key} was replaced by a tensor made on the CPU; update it in place (e.g. self.{key} += 1) or compute "
            f"the new one from the old (self.{key} + 1), so that it stays on the module's device",
        )


SHAPES_1D = Shapes(train=[(16,), (5,), (2,)], eval=[(8,), (1,)])
SHAPES_2D = Shapes(train=[(4, 5, 5), (1, 2, 3), (2, 4, 1)], eval=[(3, 3, 2), (1, 1, 1)])


def check_batchnorm1d(namespace: MutableMapping[str, Any]) -> None:
    """BatchNorm1d(num_features, eps=1e-5, momentum=0.1) against nn.BatchNorm1d."""
    specs = [
        ModuleSpec("BatchNorm1d", nn.BatchNorm1d, 3, dtype=torch.float64),
        ModuleSpec("BatchNorm1d", nn.BatchNorm1d, 4, eps=1e-3, momentum=0.3, dtype=torch.float64),
        ModuleSpec("BatchNorm1d", nn.BatchNorm1d, 5, 1e-3, 0.5, dtype=torch.float64),
        ModuleSpec("BatchNorm1d", nn.BatchNorm1d, 2, momentum=None, dtype=torch.float64),
        ModuleSpec("BatchNorm1d", nn.BatchNorm1d, 1, momentum=1.0, dtype=torch.float64),
        ModuleSpec("BatchNorm1d", nn.BatchNorm1d, 6),
    ]
    check_module(namespace, "BatchNorm1d", specs, SHAPES_1D)


def check_batchnorm2d(namespace: MutableMapping[str, Any]) -> None:
    """BatchNorm2d(num_features, eps=1e-5, momentum=0.1) against nn.BatchNorm2d."""
    specs = [
        ModuleSpec("BatchNorm2d", nn.BatchNorm2d, 3, dtype=torch.float64),
        ModuleSpec("BatchNorm2d", nn.BatchNorm2d, 4, momentum=None, dtype=torch.float64),
        ModuleSpec("BatchNorm2d", nn.BatchNorm2d, 2, 1e-3, 0.3, dtype=torch.float64),
        ModuleSpec("BatchNorm2d", nn.BatchNorm2d, 8),
    ]
    check_module(namespace, "BatchNorm2d", specs, SHAPES_2D)
