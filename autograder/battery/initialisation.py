"""Hidden tests of lab 2: gains, fans, Kaiming and Xavier initialisers, gradient clipping, activation variances.

The contracts, as the lab states them:

- ``calculate_gain(nonlinearity, param=None)`` returns a Python number (an int or a float, not a bool or a
  tensor) equal to ``torch.nn.init.calculate_gain``'s for every name of the table; ``param`` is leaky_relu's
  negative slope (0.01 when None) and is ignored by the other names; any other name, also one of the table's
  names written in another case, raises ValueError. It has no test cell of its own (a lookup table earns no
  points): the test of ``kaiming_normal_`` runs :func:`check_calculate_gain` as well.
- ``fan_in_and_fan_out(tensor)`` returns a tuple of two Python ints, ``(size(1) * r, size(0) * r)`` with ``r``
  the product of the other sizes, for any tensor of two or more dimensions (also on the meta device, which holds
  no values, and non-contiguous) and leaves the tensor unchanged; fewer dimensions raise ValueError.
- The initialisers ``kaiming_normal_``, ``kaiming_uniform_``, ``xavier_normal_``, ``xavier_uniform_`` fill the
  very tensor passed in its own memory (contiguous or not, an ``nn.Parameter`` that requires grad included),
  keep its dtype, device and ``requires_grad``, record no autograd history and return it; an unknown mode raises
  ValueError. Each is graded on its own: PyTorch's ``calculate_gain`` and fan computation are lent in place of
  the student's for the call (:meth:`Student.lending`).
- ``clip_grad_norm_(parameters, max_norm, norm_type=2.0)`` scales the same ``.grad`` tensors in place by
  ``min(1, max_norm / (total_norm + 1e-6))`` (without the 1e-6 accepted too), skips parameters whose ``.grad``
  is None, leaves the parameters alone and returns the total norm before clipping as a 0-dim tensor of the
  gradients' dtype and device without autograd history (a 0-dim tensor 0. without gradients).
- ``activation_variances(model, x)`` returns one Python float per ``nn.Linear`` child of the ``nn.Sequential``,
  in order: the variance (unbiased or biased) of all entries of its output, for the model in the mode it is
  in; the model (mode, parameters and their ``.grad``, hooks, global hooks too) and x are left as they were.
- No answer calls the PyTorch function it is asked to write (:data:`FORBIDDEN`).

Oracles: ``torch.nn.init`` and ``torch.nn.utils.clip_grad_norm_`` (on identical copies of the inputs), forward
hooks on a copy of the model. Random initialisers are tested statistically by
:func:`dlcourse.checks.init.check_init_statistics` on a NaN-filled tensor of at least 100,000 entries per case:
every statistic is allowed six standard errors (for 100,000 entries the standard deviation within ±1.3 %), so
a correct answer fails a check with probability below 1e-8, while a standard deviation off by 3 % or more
fails with probability above 1 - 1e-8 (7 standard errors beyond the tolerance).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import math
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from autograder.battery.compare import assert_close, check_form, counted, group, require, within
from autograder.battery.devices import run_on_simulated_gpu
from autograder.battery.forbidden import forbidding
from autograder.battery.inputs import seeded
from autograder.battery.models import TrainEvalGap
from autograder.battery.properties import for_all, st
from autograder.battery.snapshot import Snapshot
from autograder.battery.student import Student, call, case, expect_raises
from dlcourse.checks.init import check_init_statistics

FLOAT32, FLOAT64 = torch.float32, torch.float64

# The PyTorch function each task asks to write.
FORBIDDEN: dict[str, dict[Callable, str]] = {
    "calculate_gain": {nn.init.calculate_gain: "torch.nn.init.calculate_gain"},
    "fan_in_and_fan_out": {nn.init._calculate_fan_in_and_fan_out: "torch.nn.init._calculate_fan_in_and_fan_out"},
    "kaiming_normal_": {nn.init.kaiming_normal_: "torch.nn.init.kaiming_normal_"},
    "kaiming_uniform_": {nn.init.kaiming_uniform_: "torch.nn.init.kaiming_uniform_"},
    "xavier_normal_": {nn.init.xavier_normal_: "torch.nn.init.xavier_normal_"},
    "xavier_uniform_": {nn.init.xavier_uniform_: "torch.nn.init.xavier_uniform_"},
    "clip_grad_norm_": {
        torch.nn.utils.clip_grad_norm_: "torch.nn.utils.clip_grad_norm_",
        torch.nn.utils.clip_grad_norm: "torch.nn.utils.clip_grad_norm",
        torch.nn.utils.clip_grads_with_norm_: "torch.nn.utils.clip_grads_with_norm_",
        torch.nn.utils.get_total_norm: "torch.nn.utils.get_total_norm",
    },
    "activation_variances": {},
}

# Correct versions of the helpers, lent to the initialisers so that each is graded on its own.
TORCH_HELPERS = {
    "calculate_gain": nn.init.calculate_gain,
    "fan_in_and_fan_out": nn.init._calculate_fan_in_and_fan_out,
}


class Answer:
    """A graded function of the student's, called under its contract.

    Every call runs with PyTorch's helpers lent (``lend``), watches for the forbidden PyTorch twin, and turns an
    exception into an AssertionError that names the case.
    """

    def __init__(self, student: Student, name: str, lend: dict[str, Any] | None = None, contract: str = ""):
        self.student = student
        self.name = name
        self.function = student.function(name)
        self.lend = lend or {}
        self.contract = contract

    @contextlib.contextmanager
    def watched(self, label: str) -> Iterator[None]:
        with self.student.lending(**self.lend), forbidding(label, FORBIDDEN[self.name], f"write {self.name} yourself"):
            yield

    def __call__(self, label: str, *args: Any, **kwargs: Any) -> Any:
        with self.watched(label):
            return call(label, self.function, *args, contract=self.contract, **kwargs)

    def raises(self, label: str, error: type[BaseException], *args: Any, **kwargs: Any) -> None:
        with self.watched(label):
            expect_raises(label, error, self.function, *args, **kwargs)
        counted()

    def on_simulated_gpu(self, label: str, *args: Any, **kwargs: Any) -> Any:
        """Call the answer with its tensor arguments on a simulated GPU; fail on what a GPU would refuse.

        The label should say so ("... on the GPU"). Returns None when the simulation made the answer raise,
        which proves nothing by itself.
        """
        with self.watched(label):
            result, violations = run_on_simulated_gpu(self.function, *args, **kwargs)
        require(not violations, label, violations[0] if violations else "")
        return result


@contextlib.contextmanager
def rng_left_alone() -> Iterator[None]:
    """The tests seed their own cases; the notebook's global random stream continues as if they never ran."""
    with torch.random.fork_rng(devices=[]):
        yield


# --------------------------------------------------------------------------------------------- calculate_gain

GAIN_NAMES = (
    "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "sigmoid", "tanh", "relu", "leaky_relu", "selu",
)  # fmt: skip
SLOPES = (None, 0, 0.0, 0.01, 0.2, 1, 3, math.sqrt(5), 0.5, 100.0)  # None, zero (int and float), ints, floats, large
UNSUPPORTED_NAMES = ("softmax", "gelu", "swish", "ReLU", "Tanh", "LINEAR", "Leaky_ReLU", "leaky-relu", "conv4d", "")


def leaky_relu_mistakes(param: float | None) -> dict[str, float]:
    """Gains that known mistakes in leaky_relu's formula produce, by diagnosis."""
    slope = 0.01 if param is None else param
    mistakes = {
        "the gain is a square root: sqrt(2 / (1 + a^2))": 2 / (1 + slope**2),
    }
    if slope >= 0:
        mistakes["the slope must be squared: sqrt(2 / (1 + a^2))"] = math.sqrt(2 / (1 + slope))
    if param is None:
        mistakes["without param, leaky_relu's negative slope is 0.01"] = math.sqrt(2.0)
    if param == 0:
        zero_is_none = "param=0 is a slope of 0, not a missing one: test `param is None`, not `param or 0.01`"
        mistakes[zero_is_none] = nn.init.calculate_gain("leaky_relu", 0.01)
    return mistakes


def assert_gain(gain: Answer, nonlinearity: str, *param: Any, keyword: bool = False) -> None:
    """calculate_gain(nonlinearity[, param]) equals PyTorch's as a Python number, to 1e-12 relative."""
    args, kwargs = ((nonlinearity,), {"param": param[0]}) if keyword else ((nonlinearity, *param), {})
    label = case("calculate_gain", *args, **kwargs)
    expected = nn.init.calculate_gain(nonlinearity, *param)
    mistakes = leaky_relu_mistakes(param[0] if param else None) if nonlinearity == "leaky_relu" else {}
    if nonlinearity != "leaky_relu" and param and param[0] not in (None, 0):
        mistakes["param is leaky_relu's slope only; the other names ignore it"] = nn.init.calculate_gain(
            "leaky_relu", param[0]
        )
    assert_close(label, gain(label, *args, **kwargs), expected, rtol=1e-12, mistakes=mistakes)


def check_calculate_gain(namespace: MutableMapping[str, Any]) -> None:
    """calculate_gain against torch.nn.init.calculate_gain: every name, leaky_relu's slopes, unknown names."""
    gain = Answer(Student(namespace), "calculate_gain")

    with group("calculate_gain: every name of the table, a Python number, with and without param (ignored there)"):
        for nonlinearity in GAIN_NAMES:
            assert_gain(gain, nonlinearity)
            assert_gain(gain, nonlinearity, None)
            assert_gain(gain, nonlinearity, 0)
            assert_gain(gain, nonlinearity, 0.3, keyword=True)

    with group("calculate_gain('leaky_relu', param): None, 0, ints, floats, a large slope, and drawn slopes"):
        for slope in SLOPES:
            assert_gain(gain, "leaky_relu", slope)
        slopes = st.one_of(st.floats(0, 1000, allow_nan=False), st.integers(0, 1000), st.floats(-10, 0))
        for_all(slopes, lambda slope: assert_gain(gain, "leaky_relu", slope), examples=25)

    with group("calculate_gain: any other name, also in another case, raises ValueError"):
        for nonlinearity in UNSUPPORTED_NAMES:
            gain.raises(case("calculate_gain", nonlinearity), ValueError, nonlinearity)
        gain.raises(case("calculate_gain", "Tanh", None), ValueError, "Tanh", None)


# ------------------------------------------------------------------------------------------ fan_in_and_fan_out

FAN_SHAPES = (
    (7, 3), (3, 7), (1, 1), (1, 9), (8, 4, 5), (6, 3, 2, 5), (16, 8, 1, 1), (4, 9, 3, 3), (1, 5, 1),
    (2, 3, 4, 5, 6), (5, 1, 7, 1, 2),
)  # fmt: skip


def fans_of(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of this shape, as PyTorch computes them."""
    return nn.init._calculate_fan_in_and_fan_out(torch.empty(shape, device="meta"))


def fan_mistakes(shape: tuple[int, ...]) -> dict[str, tuple[int, int]]:
    fan_in, fan_out = fans_of(shape)
    mistakes = {
        "fan_in comes from size(1) (the inputs), fan_out from size(0) (the outputs): they are swapped": (
            fan_out,
            fan_in,
        ),
        "a convolution's fans include the receptive field, the product of all sizes after the first two": (
            shape[1],
            shape[0],
        ),
    }
    if len(shape) > 3:
        mistakes["the receptive field is the product of ALL sizes after the first two, not only the third"] = (
            shape[1] * shape[2],
            shape[0] * shape[2],
        )
    return {diagnosis: value for diagnosis, value in mistakes.items() if value != (fan_in, fan_out)}


def fan_tensors(shape: tuple[int, ...], device: torch.device) -> Iterator[tuple[str, torch.Tensor]]:
    """(description, tensor) of this shape: contiguous, float64, on the meta device, non-contiguous, a Parameter."""
    yield "float32", torch.zeros(shape)
    yield "float64 on the notebook's device", torch.zeros(shape, dtype=FLOAT64, device=device)
    yield "on the meta device (no values to read)", torch.empty(shape, device="meta")
    swapped = (shape[1], shape[0], *shape[2:])
    yield "a transposed view (non-contiguous)", torch.zeros(swapped).transpose(0, 1)
    yield "an nn.Parameter that requires grad", nn.Parameter(torch.ones(shape))


def assert_fans(fans: Answer, description: str, tensor: torch.Tensor) -> None:
    label = case("fan_in_and_fan_out", tensor) + f" ({description})"
    snapshot = Snapshot(tensor=tensor) if tensor.device.type != "meta" else None
    got = fans(label, tensor)
    shape = tuple(tensor.shape)
    expected = fans_of(shape)
    require(
        isinstance(got, tuple) and len(got) == 2,
        label,
        f"expected a tuple (fan_in, fan_out), got {got!r}" + (" (a list)" if isinstance(got, list) else ""),
    )
    require(
        all(isinstance(fan, int) and not isinstance(fan, bool) for fan in got),
        label,
        f"expected two Python ints, got {tuple(type(fan).__name__ for fan in got)}: use int sizes "
        "(math.prod of tensor.shape[2:]; numpy's prod gives a float 1.0 for no sizes, torch's a tensor)",
    )
    diagnosis = next((text for text, value in fan_mistakes(shape).items() if got == value), None)
    require(
        got == expected,
        label,
        diagnosis or f"expected {expected} = (size(1) * receptive field, size(0) * receptive field), got {got}",
    )
    if snapshot is not None:
        snapshot.assert_unchanged(label)


def check_fan_in_and_fan_out(namespace: MutableMapping[str, Any]) -> None:
    """fan_in_and_fan_out against PyTorch's on shapes of 2 to 5 dimensions, any device and layout."""
    student = Student(namespace)
    fans = Answer(student, "fan_in_and_fan_out")

    with group("fan_in_and_fan_out: 2-D to 5-D, size-1 sizes, float32/float64, meta, non-contiguous, Parameter"):
        for shape in FAN_SHAPES:
            for description, tensor in fan_tensors(shape, student.device):
                assert_fans(fans, description, tensor)

    with group("fan_in_and_fan_out on drawn shapes of 2 to 5 dimensions (meta tensors)"):
        shapes = st.lists(st.integers(1, 12), min_size=2, max_size=5)
        for_all(shapes, lambda shape: assert_fans(fans, "drawn", torch.empty(shape, device="meta")), examples=30)

    with group("fan_in_and_fan_out: fewer than 2 dimensions raise ValueError"):
        for shape in [(), (5,), (1,)]:
            for tensor in (torch.zeros(shape), torch.empty(shape, device="meta")):
                fans.raises(case("fan_in_and_fan_out", tensor), ValueError, tensor)


# ---------------------------------------------------------------------------------------------- initialisers


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


@dataclass(frozen=True)
class Initialiser:
    """One of the four initialisers: its name, distribution and family (Kaiming or Xavier)."""

    name: str
    distribution: str  # "normal" or "uniform"

    @property
    def kaiming(self) -> bool:
        return self.name.startswith("kaiming")

    def arguments(self, args: tuple, kwargs: dict) -> dict[str, Any]:
        """The arguments after the tensor, by name, defaults filled in, as PyTorch's signature binds them."""
        bound = inspect.signature(getattr(nn.init, self.name)).bind(None, *args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    def std(self, shape: tuple[int, ...], args: tuple, kwargs: dict) -> float:
        """std = gain / sqrt(fan) (Kaiming) or gain * sqrt(2 / (fan_in + fan_out)) (Xavier)."""
        arguments = self.arguments(args, kwargs)
        fan_in, fan_out = fans_of(shape)
        if self.kaiming:
            fan = fan_in if arguments["mode"] == "fan_in" else fan_out
            return nn.init.calculate_gain(arguments["nonlinearity"], arguments["a"]) / math.sqrt(fan)
        return arguments["gain"] * math.sqrt(2.0 / (fan_in + fan_out))

    def mistakes(self, shape: tuple[int, ...], args: tuple, kwargs: dict) -> dict[str, float]:
        arguments = self.arguments(args, kwargs)
        if self.kaiming:
            gain = nn.init.calculate_gain(arguments["nonlinearity"], arguments["a"])
            return kaiming_mistakes(shape, gain, arguments["mode"], self.distribution)
        return xavier_mistakes(shape, arguments["gain"], self.distribution)


# Shapes, positional arguments, keyword arguments, dtype. Every case has at least 100,000 entries and
# different fans in and out, so a mode mistake changes the standard deviation by 9 % or more.
KAIMING_CASES = (
    ((384, 512), (), {}, FLOAT32),  # every default: leaky_relu with a = 0
    ((384, 512), (), {"mode": "fan_out", "nonlinearity": "relu"}, FLOAT32),
    ((64, 32, 7, 7), (), {"a": math.sqrt(5)}, FLOAT32),  # a convolution, as nn.Conv2d's own default
    ((48, 32, 9, 9), (), {"mode": "fan_out", "nonlinearity": "relu"}, FLOAT32),
    ((128, 96, 9), (), {"mode": "fan_out", "nonlinearity": "tanh"}, FLOAT32),  # conv1d
    ((40, 24, 5, 5, 5), (), {"nonlinearity": "selu"}, FLOAT32),  # conv3d
    ((300, 400), (), {"nonlinearity": "linear"}, FLOAT64),
    ((400, 300), (0.5,), {}, FLOAT64),  # a by position
    ((256, 512), (1, "fan_out", "leaky_relu"), {}, FLOAT32),  # everything by position, an integer slope
    ((384, 300), (), {"nonlinearity": "sigmoid", "a": 3}, FLOAT32),  # a slope that sigmoid ignores
    ((320, 384), (), {"mode": "fan_in", "nonlinearity": "conv2d"}, FLOAT64),
    ((256, 400), (), {"a": 0.2, "nonlinearity": "leaky_relu"}, FLOAT32),
    # the other names of the table, which the answer passes on to calculate_gain (gain 1)
    ((96, 128, 9), (), {"nonlinearity": "conv1d"}, FLOAT32),
    ((24, 40, 5, 5, 5), (), {"mode": "fan_out", "nonlinearity": "conv3d"}, FLOAT32),
    ((128, 96, 9), (), {"nonlinearity": "conv_transpose1d"}, FLOAT32),
    ((48, 32, 9, 9), (), {"nonlinearity": "conv_transpose2d"}, FLOAT32),
    ((40, 24, 5, 5, 5), (), {"mode": "fan_out", "nonlinearity": "conv_transpose3d"}, FLOAT32),
)
XAVIER_CASES = (
    ((384, 512), (), {}, FLOAT32),  # the default gain 1
    ((1024, 192), (), {"gain": 5 / 3}, FLOAT32),
    ((64, 32, 7, 7), (), {}, FLOAT32),  # conv2d
    ((128, 96, 9), (math.sqrt(2),), {}, FLOAT32),  # conv1d, the gain by position
    ((40, 24, 5, 5, 5), (), {"gain": 0.5}, FLOAT32),  # conv3d
    ((300, 400), (), {"gain": 2}, FLOAT64),  # an integer gain
    ((400, 300), (), {"gain": 0.75}, FLOAT64),
)
INVALID_MODES = ("fan_avg", "fan", "in", "")


def nan_tensor(shape: tuple[int, ...], dtype: torch.dtype = FLOAT32, device=None) -> torch.Tensor:
    return torch.full(shape, math.nan, dtype=dtype, device=device)


def assert_draws(label: str, values: torch.Tensor, std: float, distribution: str, mistakes: dict[str, float]) -> None:
    """The statistical test of :func:`check_init_statistics` (six standard errors), its printing silenced."""
    with contextlib.redirect_stdout(io.StringIO()):
        check_init_statistics(label, values, std, distribution, mistakes)
    counted()


def assert_filled_in_place(label: str, tensor: torch.Tensor, result: Any, before: dict[str, Any]) -> None:
    """The very tensor returned, its memory written, its dtype, device, shape and requires_grad kept, no history."""
    require(
        result is tensor,
        label,
        "return the tensor you were given, filled in place, not a new tensor"
        + (" (the function returned None: add `return tensor`)" if result is None else ""),
    )
    require(
        tensor.data_ptr() == before["pointer"],
        label,
        "the values must be written into the tensor's own memory: `tensor.data = ...` (or a new tensor) replaces "
        "it; fill it in place (tensor.normal_(...), tensor.uniform_(...) or tensor.copy_(...) under torch.no_grad())",
    )
    require(
        tensor.dtype == before["dtype"] and tensor.device == before["device"],
        label,
        f"the tensor is now {tensor.dtype} on {tensor.device}, it was {before['dtype']} on {before['device']}: "
        "keep its dtype and device",
    )
    require(tuple(tensor.shape) == before["shape"], label, f"the tensor's shape changed to {tuple(tensor.shape)}")
    require(
        tensor.requires_grad == before["requires_grad"],
        label,
        f"requires_grad changed to {tensor.requires_grad}: leave it as it was",
    )
    require(tensor.grad_fn is None, label, "the filling was recorded by autograd: fill under torch.no_grad()")


def fill(
    init: Answer, label: str, tensor: torch.Tensor, args: tuple, kwargs: dict, *, gpu: bool = False
) -> torch.Tensor | None:
    """Call the initialiser on ``tensor`` and check that it filled it in place; return the memory it filled."""
    before = {
        "pointer": tensor.data_ptr(),
        "dtype": tensor.dtype,
        "device": tensor.device,
        "shape": tuple(tensor.shape),
        "requires_grad": tensor.requires_grad,
    }
    memory = tensor.detach()  # shares the tensor's memory: if the answer swaps .data, it still holds NaN
    if gpu:
        result = init.on_simulated_gpu(label, tensor, *args, **kwargs)
        if result is None:  # the simulation made the answer raise: inconclusive (None itself fails on the CPU)
            return None
    else:
        result = init(label, tensor, *args, **kwargs)
    assert_filled_in_place(label, tensor, result, before)
    return memory


def assert_initialised(
    init: Answer,
    spec: Initialiser,
    label: str,
    tensor: torch.Tensor,
    args: tuple,
    kwargs: dict,
    *,
    gpu: bool = False,
    base: torch.Tensor | None = None,
) -> None:
    """Fill ``tensor`` (a view of ``base``, if given) in place and test its entries against the formula's
    distribution."""
    shape = tuple(tensor.shape)
    memory = fill(init, label, tensor, args, kwargs, gpu=gpu)
    if base is not None:
        require(
            bool(base.isfinite().all()),
            label,
            "the values did not reach the weight the view belongs to: fill the view itself in place "
            "(view(-1) fails on a non-contiguous tensor; reshape(...), flatten() and contiguous() fill a copy)",
        )
    if memory is not None:
        std, mistakes = spec.std(shape, args, kwargs), spec.mistakes(shape, args, kwargs)
        assert_draws(label, memory, std, spec.distribution, mistakes)


def check_initialiser(namespace: MutableMapping[str, Any], spec: Initialiser, cases: tuple) -> None:
    student = Student(namespace)
    device = student.device
    init = Answer(
        student,
        spec.name,
        lend=TORCH_HELPERS,
        contract=f"{spec.name} fills any floating tensor of two or more dimensions in place and returns it",
    )

    with rng_left_alone():
        with group(f"{spec.name}: modes, gains, slopes, shapes of 2 to 5 dimensions, float32 and float64"):
            for seed, (shape, args, kwargs, dtype) in enumerate(cases):
                torch.manual_seed(seed)
                tensor = nan_tensor(shape, dtype, device)
                assert_initialised(init, spec, case(spec.name, tensor, *args, **kwargs), tensor, args, kwargs)

        with group(f"{spec.name} of any tensor: a transposed view of a weight, a strided view, an nn.Parameter"):
            torch.manual_seed(20)
            weight = nan_tensor((512, 256), device=device)
            view = weight.t()
            kwargs = {"mode": "fan_out"} if spec.kaiming else {}
            label = case(spec.name, view, **kwargs) + " (a transposed view of a (512, 256) weight)"
            assert_initialised(init, spec, label, view, (), kwargs, base=weight)

            wider = nan_tensor((300, 800), FLOAT64, device)
            view = wider[:, ::2]
            args = (0.2,) if spec.kaiming else (1.5,)
            label = case(spec.name, view, *args) + " (every other column of a (300, 800) tensor)"
            assert_initialised(init, spec, label, view, args, {})
            require(bool(wider[:, 1::2].isnan().all()), label, "wrote outside the tensor it was given")

            torch.manual_seed(21)
            layer = nn.Conv2d(32, 64, 7) if spec.kaiming else nn.Linear(512, 256)
            layer = layer.to(device)
            with torch.no_grad():
                layer.weight.fill_(math.nan)
            parameter = layer.weight
            kwargs = {"nonlinearity": "relu"} if spec.kaiming else {"gain": nn.init.calculate_gain("relu")}
            label = case(spec.name, parameter, **kwargs) + f" (the weight of {type(layer).__name__}, an nn.Parameter)"
            assert_initialised(init, spec, label, parameter, (), kwargs)
            require(
                layer.weight is parameter and parameter.is_leaf and parameter.grad is None,
                label,
                "the parameter must stay the layer's own leaf tensor, without .grad: fill it under torch.no_grad()",
            )

        if device.type == "cpu":
            with group(f"{spec.name} on a (simulated) GPU: no tensor made on the CPU for a tensor on the GPU"):
                torch.manual_seed(22)
                for dtype in (FLOAT32, FLOAT64):
                    tensor = nan_tensor((384, 300), dtype)
                    label = case(spec.name, tensor) + " on the GPU"
                    assert_initialised(init, spec, label, tensor, (), {}, gpu=True)

        if spec.kaiming:
            with group(f"{spec.name}: any mode but 'fan_in' and 'fan_out' raises ValueError"):
                for mode in INVALID_MODES:
                    tensor = torch.zeros(10, 20, device=device)
                    init.raises(case(spec.name, tensor, mode=mode), ValueError, tensor, mode=mode)


def check_kaiming_normal(namespace: MutableMapping[str, Any]) -> None:
    """kaiming_normal_: N(0, std^2), std = gain / sqrt(fan), filled in place (statistical, six standard errors)."""
    check_initialiser(namespace, Initialiser("kaiming_normal_", "normal"), KAIMING_CASES)


def check_kaiming_uniform(namespace: MutableMapping[str, Any]) -> None:
    """kaiming_uniform_: U(-b, b), b = sqrt(3) gain / sqrt(fan), filled in place."""
    check_initialiser(namespace, Initialiser("kaiming_uniform_", "uniform"), KAIMING_CASES)


def check_xavier_normal(namespace: MutableMapping[str, Any]) -> None:
    """xavier_normal_: N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)), filled in place."""
    check_initialiser(namespace, Initialiser("xavier_normal_", "normal"), XAVIER_CASES)


def check_xavier_uniform(namespace: MutableMapping[str, Any]) -> None:
    """xavier_uniform_: U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)), filled in place."""
    check_initialiser(namespace, Initialiser("xavier_uniform_", "uniform"), XAVIER_CASES)


# -------------------------------------------------------------------------------------------- clip_grad_norm_

GRADIENT_SHAPES = ((20, 10), (10,), (5, 4, 3), (1,))


def tolerance_of(dtype: torch.dtype) -> float:
    """Relative tolerance: float32 rounding in any summation order; in float64 far below the 1e-6 of the formula."""
    return 1e-5 if dtype == FLOAT32 else 1e-10


def parameters_with_gradients(seed: int, dtype: torch.dtype, device, scale: float = 1.0) -> list[torch.Tensor]:
    """Four parameters of different shapes with N(0, scale^2) gradients (the first one's stored transposed, so
    non-contiguous), and a fifth without a gradient. The same seed gives identical copies."""
    generator = seeded(seed)
    parameters = []
    for index, shape in enumerate(GRADIENT_SHAPES):
        parameter = torch.zeros(shape, dtype=dtype, device=device, requires_grad=True)
        values = scale * torch.randn(shape[::-1] if index == 0 else shape, generator=generator, dtype=FLOAT64)
        gradient = (values.t() if index == 0 else values).to(device, dtype)
        parameter.grad = gradient
        parameters.append(parameter)
    parameters.append(torch.zeros(7, dtype=dtype, device=device, requires_grad=True))
    return parameters


def as_argument(parameters: list[torch.Tensor], kind: str) -> Any:
    if kind == "tensor":
        return parameters[0]
    if kind == "tuple":
        return tuple(parameters)
    if kind == "generator":
        return (parameter for parameter in parameters)
    return list(parameters)


def norm_of(gradients: list[torch.Tensor], norm_type: float) -> float:
    """The norm of all gradients as one vector, in float64."""
    flat = torch.cat([gradient.detach().double().flatten() for gradient in gradients])
    return torch.linalg.vector_norm(flat, float(norm_type)).item()


def total_norm_mistakes(gradients: list[torch.Tensor], max_norm: float, norm_type: float) -> dict[str, float]:
    total = norm_of(gradients, norm_type)
    norms = [norm_of([gradient], norm_type) for gradient in gradients]
    mistakes = {
        "return the total norm from before clipping, not after": min(max_norm, total),
        "the total norm is the norm of all gradients together; this is the largest single parameter's norm": max(norms),
        "the total norm combines the parameters' norms with the same p-norm, not by adding them": sum(norms),
        "norm_type was ignored: compute the norm of the given order (math.inf: the largest |entry|)": norm_of(
            gradients, 2.0
        ),
        "this is the sum of squares; the 2-norm is its square root": norm_of(gradients, 2.0) ** 2,
    }
    if math.isinf(norm_type):
        mistakes["the inf-norm is the largest |entry|: take abs() before max()"] = max(
            gradient.max().item() for gradient in gradients
        )
    return mistakes


def clipping_factor(max_norm: float, norm: float) -> float:
    """min(1, max_norm / norm), 1 for a norm of 0."""
    return min(1.0, max_norm / norm) if norm > 0 else 1.0


def gradient_mistakes(before: torch.Tensor, everything: list[torch.Tensor], max_norm: float, norm_type: float):
    own = norm_of([before], norm_type)
    total = norm_of(everything, norm_type)
    if total == 0:
        return {}
    return {
        "each parameter was clipped on its own: scale all gradients by one factor, from the total norm": before
        * clipping_factor(max_norm, own),
        "gradients whose total norm is below max_norm must be left alone, not scaled up to max_norm": before
        * (max_norm / total),
        "the gradients were not changed: scale each p.grad in place (e.g. p.grad.mul_(factor))": before,
    }


def assert_returned_norm(label: str, total: Any, expected: torch.Tensor, mistakes: dict[str, float]) -> None:
    label = f"{label}: the returned total norm"
    check_form(label, total, shape=(), dtype=expected.dtype, device=expected.device)
    require(
        not total.requires_grad,
        label,
        "the returned norm carries autograd history: compute it under torch.no_grad() (or from p.grad.detach())",
    )
    assert_close(label, total, expected, rtol=tolerance_of(expected.dtype), mistakes=mistakes)


def assert_clipped_gradient(
    label: str,
    parameter: torch.Tensor,
    state: dict[str, Any],
    expected: torch.Tensor,
    without_eps: torch.Tensor,
    mistakes: dict[str, Any],
) -> None:
    """The parameter's very .grad tensor, its memory scaled in place to torch's result (or the one without eps)."""
    require(
        parameter.grad is state["grad"],
        label,
        "in place: scale the same .grad tensors (p.grad.mul_(factor)); `p.grad = p.grad * factor` replaces them"
        + (" (p.grad is now None)" if parameter.grad is None else ""),
    )
    require(
        parameter.grad.data_ptr() == state["pointer"],
        label,
        "in place: scale p.grad's own memory; `p.grad.data = ...` replaces it",
    )
    rtol = tolerance_of(expected.dtype)
    target = expected if within(parameter.grad.detach().double(), expected.double(), 0.0, rtol) else without_eps
    assert_close(label, parameter.grad, target, rtol=rtol, mistakes=mistakes)


def compare_with_torch(
    clip: Answer,
    label: str,
    make: Callable[[], list[torch.Tensor]],
    kind: str,
    max_norm: float,
    norm_type: float | None,
    gpu: bool = False,
) -> None:
    """Run the answer (on a simulated GPU with ``gpu``) and torch.nn.utils.clip_grad_norm_ on identical
    parameters; compare everything."""
    mine, theirs = make(), make()
    if kind == "tensor":
        mine, theirs = mine[:1], theirs[:1]
    # norm_type: left to its default (None), by keyword (with a tuple of parameters) or by position
    extra = () if norm_type is None or kind == "tuple" else (norm_type,)
    named = {"norm_type": norm_type} if norm_type is not None and kind == "tuple" else {}
    expected_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm, *extra, **named)
    norm_type = 2.0 if norm_type is None else norm_type
    states = [
        {"grad": p.grad, "pointer": p.grad.data_ptr() if p.grad is not None else None, "value": p.detach().clone(),
         "version": p._version, "before": p.grad.detach().clone() if p.grad is not None else None}
        for p in mine
    ]  # fmt: skip
    label = case("clip_grad_norm_", as_argument(mine, kind), max_norm, *extra, **named) + f" ({label})"
    if gpu:
        label += " on the GPU"
        total = clip.on_simulated_gpu(label, as_argument(mine, kind), max_norm, *extra, **named)
        if total is None:  # the simulation made the answer raise: inconclusive
            return
    else:
        total = clip(label, as_argument(mine, kind), max_norm, *extra, **named)
    before = [state["before"] for state in states if state["before"] is not None]
    assert_returned_norm(label, total, expected_total, total_norm_mistakes(before, max_norm, norm_type))
    factor = clipping_factor(max_norm, norm_of(before, norm_type)) if before else 1.0
    for index, (p, q, state) in enumerate(zip(mine, theirs, states, strict=True)):
        where = f"{label}, parameter {index} {tuple(p.shape)}"
        require(
            p.detach().equal(state["value"]) and p._version == state["version"],
            where,
            "the parameter itself changed: scale its gradient p.grad, not p",
        )
        if q.grad is None:
            require(p.grad is None, where, "parameters whose .grad is None must be skipped (and keep .grad None)")
            continue
        without_eps = (state["before"].double() * factor).to(q.grad.dtype)
        mistakes = gradient_mistakes(state["before"], before, max_norm, norm_type)
        assert_clipped_gradient(where, p, state, q.grad, without_eps, mistakes)


def check_clip_grad_norm(namespace: MutableMapping[str, Any]) -> None:
    """clip_grad_norm_ against torch.nn.utils.clip_grad_norm_ on identical copies of the parameters."""
    student = Student(namespace)
    device = student.device
    clip = Answer(
        student,
        "clip_grad_norm_",
        contract="clip_grad_norm_ scales the gradients in place and returns their total norm before clipping",
    )

    def parameters(seed, dtype, scale=1.0):
        return lambda: parameters_with_gradients(seed, dtype, device, scale)

    with group("clip_grad_norm_: a list, tuple, generator or one tensor; norm_type 1, 2, 3, 1.5, inf; clipped or not"):
        cases = [  # label, parameters, how they are passed, max_norm, norm_type (None: the default)
            ("clipped", parameters(0, FLOAT32), "list", 1.0, None),
            ("not clipped: max_norm above the norm", parameters(1, FLOAT32), "tuple", 50.0, 2.0),
            ("model.parameters()-style generator, read once", parameters(2, FLOAT32), "generator", 0.5, 2.0),
            ("integer norm_type 1", parameters(3, FLOAT64), "list", 3.0, 1),
            ("norm_type math.inf", parameters(4, FLOAT64), "tuple", 0.7, math.inf),
            ("norm_type float('inf'), not clipped", parameters(5, FLOAT32), "list", 10.0, float("inf")),
            ("norm_type 3.0", parameters(6, FLOAT64), "generator", 0.2, 3.0),
            ("integer max_norm and norm_type", parameters(7, FLOAT32), "list", 2, 2),
            ("norm_type 1.5, integer max_norm above the norm", parameters(8, FLOAT64), "list", 400, 1.5),
            ("one tensor, not in a list", parameters(9, FLOAT64), "tensor", 1.0, None),
            ("one tensor, float32, norm_type inf", parameters(10, FLOAT32, scale=3.0), "tensor", 4, math.inf),
            ("all gradients zero: total norm 0", parameters(11, FLOAT64, scale=0.0), "list", 1.0, None),
        ]
        for label, make, kind, max_norm, norm_type in cases:
            compare_with_torch(clip, label, make, kind, max_norm, norm_type)

    with group("clip_grad_norm_ without gradients: a 0-dim tensor 0., every .grad stays None"):
        for kind in ("list", "generator"):
            frozen = [torch.zeros(3, device=device, requires_grad=True), torch.zeros(2, 2, device=device)]
            label = case("clip_grad_norm_", as_argument(frozen, kind), 1.0) + " (no parameter has a gradient)"
            total = clip(label, as_argument(frozen, kind), 1.0)
            check_form(label, total, shape=())
            assert_close(label, total, torch.tensor(0.0), exact_form=False)
            require(all(p.grad is None for p in frozen), label, "parameters without .grad must keep .grad None")
        label = case("clip_grad_norm_", [], 1.0)
        total = clip(label, [], 1.0)
        check_form(label, total, shape=())
        assert_close(label, total, torch.tensor(0.0), exact_form=False)

    if device.type == "cpu":
        with group("clip_grad_norm_ on a (simulated) GPU: the norm returned on the gradients' device"):
            compare_with_torch(clip, "clipped", parameters(13, FLOAT32), "list", 1.0, None, gpu=True)
            compare_with_torch(clip, "norm_type inf", parameters(14, FLOAT64), "list", 0.5, math.inf, gpu=True)

    with group("clip_grad_norm_ on drawn gradients, max_norm and norm_type (against torch)"):
        drawn = st.tuples(
            st.integers(100, 10_000),
            st.sampled_from([FLOAT32, FLOAT64]),
            st.sampled_from([1, 2, 3, 1.5, 2.0, math.inf]),
            st.floats(0.05, 40.0),
            st.sampled_from([0.1, 1.0, 10.0]),
        )

        def check(draw):
            seed, dtype, norm_type, max_norm, scale = draw
            compare_with_torch(clip, "drawn", parameters(seed, dtype, scale), "list", max_norm, norm_type)

        for_all(drawn, check, examples=20)


# ------------------------------------------------------------------------------------------ activation_variances

GLOBAL_HOOKS = (
    "_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks", "_global_backward_pre_hooks",
    "_global_forward_hooks_with_kwargs", "_global_forward_hooks_always_called",
)  # fmt: skip


def global_hook_counts() -> dict[str, int]:
    return {name: len(getattr(torch.nn.modules.module, name, {})) for name in GLOBAL_HOOKS}


def linear_outputs(model: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """Every nn.Linear child's output in one forward pass of a copy of the model (same mode), by forward hooks."""
    twin = copy.deepcopy(model)
    outputs: list[torch.Tensor] = []
    handles = [
        layer.register_forward_hook(lambda module, inputs, output: outputs.append(output.detach()))
        for layer in twin
        if isinstance(layer, nn.Linear)
    ]
    with torch.no_grad():
        twin(x.detach())
    for handle in handles:
        handle.remove()
    return outputs


def walked(model: nn.Sequential, x: torch.Tensor) -> dict[str, list[float]]:
    """Walking the layers by hand: what known mistakes measure at each nn.Linear, by diagnosis."""
    layers, out = list(model), x.detach()
    found: dict[str, list[float]] = {"after": [], "input": [], "std": [], "second": [], "per feature": []}
    with torch.no_grad():
        for index, layer in enumerate(layers):
            before, out = out, layer(out)
            if isinstance(layer, nn.Linear):
                following = layers[index + 1](out) if index + 1 < len(layers) else out
                found["after"].append(following.var().item())
                found["input"].append(before.var().item())
                found["std"].append(out.std().item())
                found["second"].append(out.pow(2).mean().item())
                found["per feature"].append(out.var(dim=0).mean().item() if len(out) > 1 else math.nan)
    return found


def variance_mistakes(model: nn.Sequential, x: torch.Tensor) -> dict[str, list[float]]:
    found = walked(model, x)
    mistakes = {
        "this is the variance after the layer that follows; take the output of the nn.Linear itself": found["after"],
        "this is the variance of each nn.Linear's input; take its output": found["input"],
        "these are standard deviations; return variances": found["std"],
        "this is the mean of the squares; the variance subtracts the mean": found["second"],
        "this is the mean of the per-feature variances; take the variance of all entries, output.var()": found[
            "per feature"
        ],
    }
    if any(isinstance(module, TrainEvalGap) for module in model):
        other = copy.deepcopy(model).train(not model.training)
        mode = "train" if model.training else "eval"
        wrong_mode = f"the model is in {mode} mode: measure it in the mode it is in (no model.eval() or .train())"
        mistakes[wrong_mode] = [output.var().item() for output in linear_outputs(other, x)]
    return mistakes


def assert_variances(label: str, got: Any, outputs: list[torch.Tensor], mistakes: dict[str, list[float]]) -> None:
    """One Python float per nn.Linear, each the unbiased or the biased variance of all entries of its output."""
    require(
        isinstance(got, list),
        label,
        f"return a list of floats, got {type(got).__name__}"
        + (" (did you forget to return it?)" if got is None else ""),
    )
    require(
        len(got) == len(outputs),
        label,
        f"{len(got)} values for {len(outputs)} nn.Linear layers: return one variance per nn.Linear layer, in order, "
        "and only for nn.Linear layers",
    )
    for value in got:
        require(
            isinstance(value, float),
            label,
            f"expected Python floats, got {type(value).__name__}: convert each variance with .item() or float(...)",
        )
    dtype = outputs[0].dtype if outputs else FLOAT32
    rtol = 1e-3 if dtype == FLOAT32 else 1e-9
    unbiased = torch.tensor([output.double().var().item() for output in outputs], dtype=FLOAT64)
    biased = torch.tensor([output.double().var(unbiased=False).item() for output in outputs], dtype=FLOAT64)
    actual = torch.tensor(got, dtype=FLOAT64)
    expected = biased if within(actual, biased, 0.0, rtol) and not within(actual, unbiased, 0.0, rtol) else unbiased
    assert_close(
        label,
        actual,
        expected,
        rtol=rtol,
        mistakes={diagnosis: torch.tensor(values, dtype=FLOAT64) for diagnosis, values in mistakes.items()},
    )


def biased_mlp(sizes: list[int], activation: type[nn.Module], seed: int, dtype=FLOAT32, device=None) -> nn.Sequential:
    """Linear layers with biases in [0.5, 1.5] (so mean and variance clearly differ), the activation between them."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        linear = nn.Linear(fan_in, fan_out)
        nn.init.uniform_(linear.bias, 0.5, 1.5)
        layers += [linear, activation()]
    return nn.Sequential(*layers[:-1]).to(device=device, dtype=dtype)


def measure(variances: Answer, label: str, model: nn.Sequential, x: torch.Tensor) -> None:
    """Call twice; check the values, the types, and that model, hooks and x are left as they were."""
    outputs = linear_outputs(model, x)
    mistakes = variance_mistakes(model, x)
    label = case("activation_variances", model, x) + f" ({label})"
    for attempt in ("", ", called a second time"):
        snapshot = Snapshot(model=model, x=x)
        hooks = global_hook_counts()
        got = variances(label + attempt, model, x)
        snapshot.assert_unchanged(label + attempt, grads=True)
        require(
            global_hook_counts() == hooks,
            label + attempt,
            "left a global hook registered; keep its handle and call handle.remove() when done",
        )
        assert_variances(label + attempt, got, outputs, mistakes)


def check_activation_variances(namespace: MutableMapping[str, Any]) -> None:
    """activation_variances against forward hooks on a copy of the model, in the model's own mode."""
    student = Student(namespace)
    device = student.device
    variances = Answer(
        student,
        "activation_variances",
        contract="activation_variances returns one float per nn.Linear layer and leaves the model as it was",
    )

    with rng_left_alone():
        with group("activation_variances: ReLU and tanh MLPs with large biases, Flatten and Identity, batch of one"):
            models = [
                ("ReLU MLP", biased_mlp([64, 128, 128, 128, 32], nn.ReLU, 1, device=device), (512, 64)),
                ("tanh MLP, a batch of one row", biased_mlp([64, 96, 48, 10], nn.Tanh, 2, device=device), (1, 64)),
                ("a single nn.Linear", biased_mlp([64, 24], nn.ReLU, 3, device=device), (300, 64)),
            ]
            torch.manual_seed(4)
            images = nn.Sequential(nn.Flatten(), nn.Linear(64, 40), nn.Tanh(), nn.Identity(), nn.Linear(40, 10))
            models.append(("Flatten and Identity layers", images.to(device), (300, 1, 8, 8)))
            for seed, (label, model, shape) in enumerate(models):
                x = torch.randn(shape, generator=seeded(10 + seed)).to(device)
                measure(variances, label, model, x)
            model = models[0][1].eval()
            x = torch.randn(64, 256, generator=seeded(15)).to(device).t().requires_grad_(True)
            measure(variances, "x non-contiguous and requiring grad, the model in eval mode", model, x)

        with group("activation_variances in the mode the model is in (train and eval differ), float64"):
            torch.manual_seed(5)
            model = nn.Sequential(
                nn.Linear(16, 32), nn.Tanh(), TrainEvalGap(3.0), nn.Linear(32, 8), TrainEvalGap(0.5), nn.Linear(8, 4)
            ).to(device=device, dtype=FLOAT64)
            x = torch.randn(200, 16, generator=seeded(16), dtype=FLOAT64).to(device)
            for training in (True, False):
                measure(variances, "train mode" if training else "eval mode", model.train(training), x)

        if device.type == "cpu":
            with group("activation_variances on a (simulated) GPU: no tensor made on the CPU"):
                model = biased_mlp([64, 48, 10], nn.ReLU, 6)
                x = torch.randn(100, 64, generator=seeded(17))
                label = case("activation_variances", model, x) + " on the GPU"
                got = variances.on_simulated_gpu(label, model, x)
                if got is not None:  # None: the simulation made the answer raise, inconclusive
                    assert_variances(label, got, linear_outputs(model, x), variance_mistakes(model, x))
