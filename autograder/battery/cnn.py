"""Hidden tests of lab 4: convolution arithmetic, global average pooling, Inception, Residual and ResNet-18.

The contracts, as the lab's text states them:

- ``conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1)``: the Python int
  ``nn.Conv2d`` gives along one spatial dimension, ``floor((size + 2p - d(k-1) - 1) / s) + 1``;
  ``padding`` an int, ``"valid"`` or ``"same"`` (only with stride 1, as PyTorch); ValueError when
  the output would be empty. Oracle: the shape of ``F.conv2d`` (and ``F.max_pool2d``) outputs.
- ``receptive_field(layers)``: the receptive field of one output unit of a stack of
  ``(kernel_size, stride)`` or ``(kernel_size, stride, dilation)`` layers, first layer first,
  ``1 + sum_l d_l (k_l - 1) prod_{i<l} s_i`` (1 for no layer). Oracle: the span of the nonzero
  gradient of one output unit of a real stack of convolutions with respect to its input.
- ``global_avg_pool(x)``: (N, C, H, W) -> (N, C), the mean over H and W, x's dtype and device,
  x unchanged, gradients through; PyTorch's adaptive average pooling is not used.
- ``Inception(in_channels, c1, c2, c3, c4)``, ``Residual(in_channels, out_channels, stride=1)``
  (torchvision's BasicBlock) and ``resnet18(num_classes=10, in_channels=3)`` (torchvision's
  resnet18): the state_dict of the references below, key for key and shape for shape; with the
  reference's weights loaded, the same outputs, input and parameter gradients and running
  statistics in train and eval mode. The references are written here from ``nn`` layers.
"""

from __future__ import annotations

import math
import numbers
import random
import re
import warnings
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from autograder.battery.compare import assert_close, check_form, counted, fail, group, require
from autograder.battery.devices import module_on_simulated_gpu, run_on_simulated_gpu
from autograder.battery.forbidden import forbidding
from autograder.battery.inputs import layouts, normal, seeded
from autograder.battery.snapshot import Snapshot
from autograder.battery.student import Student, call, call_each, case, describe

FLOAT64, FLOAT32 = torch.float64, torch.float32

# ------------------------------------------------------------------ references


class ReferenceInception(nn.Module):
    """GoogLeNet's Inception block (d2l's layout): four branches concatenated on the channels."""

    def __init__(self, in_channels: int, c1: int, c2: Sequence[int], c3: Sequence[int], c4: int):
        super().__init__()
        self.b1_1 = nn.Conv2d(in_channels, c1, kernel_size=1)
        self.b2_1 = nn.Conv2d(in_channels, c2[0], kernel_size=1)
        self.b2_2 = nn.Conv2d(c2[0], c2[1], kernel_size=3, padding=1)
        self.b3_1 = nn.Conv2d(in_channels, c3[0], kernel_size=1)
        self.b3_2 = nn.Conv2d(c3[0], c3[1], kernel_size=5, padding=2)
        self.b4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.b4_2 = nn.Conv2d(in_channels, c4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(inception_branches(self, x), dim=1)


def inception_branches(
    block: nn.Module, x: torch.Tensor, inner_relu: bool = True, outer_relu: bool = True, pool=None
) -> list[torch.Tensor]:
    """The four branches of ``block`` (a ReferenceInception), and the known ways to get them wrong."""

    def inner(t: torch.Tensor) -> torch.Tensor:
        return F.relu(t) if inner_relu else t

    def outer(t: torch.Tensor) -> torch.Tensor:
        return F.relu(t) if outer_relu else t

    pooled = block.b4_1(x) if pool is None else pool(x)
    return [
        outer(block.b1_1(x)),
        outer(block.b2_2(inner(block.b2_1(x)))),
        outer(block.b3_2(inner(block.b3_1(x)))),
        outer(block.b4_2(pooled)),
    ]


class ReferenceBasicBlock(nn.Module):
    """torchvision's BasicBlock (expansion 1), with its attribute names."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ReferenceResNet18(nn.Module):
    """torchvision's resnet18 (BasicBlock, [2, 2, 2, 2]) with a free number of input channels."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = nn.Sequential(ReferenceBasicBlock(64, 64), ReferenceBasicBlock(64, 64))
        self.layer2 = nn.Sequential(ReferenceBasicBlock(64, 128, 2), ReferenceBasicBlock(128, 128))
        self.layer3 = nn.Sequential(ReferenceBasicBlock(128, 256, 2), ReferenceBasicBlock(256, 256))
        self.layer4 = nn.Sequential(ReferenceBasicBlock(256, 512, 2), ReferenceBasicBlock(512, 512))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def reference_global_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """The correct global_avg_pool, lent to the student's resnet18 so that a mistake there costs once."""
    return x.mean(dim=(2, 3))


# ------------------------------------------------------------------ helpers


def is_python_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral | np.integer) and not isinstance(value, bool | np.bool_)


def integer_form(label: str, value: Any, python_int: bool) -> None:
    """``value`` is an int (a Python int when ``python_int``), with a hint for the usual other types."""
    ok = is_python_int(value) if python_int else is_integer(value)
    if ok:
        counted()
        return
    if isinstance(value, torch.Tensor):
        hint = "convert it with int(...) (or .item())"
    elif isinstance(value, float | np.floating):
        hint = "use integer division // (or int(math.floor(...))): / gives a float"
    elif value is None:
        hint = "did the function forget to `return` its result?"
    else:
        hint = "return a plain Python int"
    fail(label, f"expected an int, got {type(value).__name__} {value!r}: {hint}")


def weighted(outputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return (outputs * weights.to(outputs.dtype)).sum()


def tolerances(dtype: torch.dtype, deep: bool = False, device: torch.device | str = "cpu") -> dict[str, float]:
    """float64: far below any mistake; float32: what every summation order meets, and on a GPU what TF32
    convolutions (cuDNN's default for float32) meet."""
    if dtype == FLOAT64:
        return {"atol": 1e-9, "rtol": 1e-7} if deep else {"atol": 1e-10, "rtol": 1e-8}
    if torch.device(device).type == "cuda":
        return {"atol": 2e-2, "rtol": 2e-2} if deep else {"atol": 5e-3, "rtol": 5e-3}
    return {"atol": 2e-4, "rtol": 1e-3} if deep else {"atol": 2e-5, "rtol": 1e-4}


def module_modes(module: nn.Module) -> list[bool]:
    return [sub.training for sub in module.modules()]


def set_mode(label: str, module: nn.Module, training: bool) -> None:
    call(f"{label}.train({training})", module.train, training)


# ------------------------------------------------------------------ conv_output_size

CONV_CONTRACT = (
    "conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1) returns the int "
    "floor((size + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1, as nn.Conv2d computes it; "
    'padding may be "valid" (0) or "same" (output size = size, stride 1 only), and an empty output raises ValueError'
)


def conv_oracle(size: int, kernel: int, stride: int, padding: int | str, dilation: int, pool: bool = False):
    """The output size PyTorch gives along one dimension, or None where it refuses the configuration."""
    x = torch.zeros(1, 1, size, 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "same" with an even kernel pads asymmetrically, and says so
            if pool:
                out = F.max_pool2d(x, (kernel, 1), stride=(stride, 1), padding=(padding, 0), dilation=(dilation, 1))
            else:
                pad = padding if isinstance(padding, str) else (padding, 0)
                weight = torch.zeros(1, 1, kernel, 1)
                out = F.conv2d(x, weight, stride=(stride, 1), padding=pad, dilation=(dilation, 1))
    except (RuntimeError, ValueError):
        return None
    return int(out.shape[2])


def conv_mistakes(size: int, kernel: int, stride: int, padding: int | str, dilation: int) -> dict[str, Any]:
    """What known mistakes return for one configuration (None: the mistake makes no sense here)."""
    if padding == "same":
        p = None
    else:
        p = 0 if padding == "valid" else padding
    found: dict[str, Any] = {}
    if p is None:
        half = dilation * (kernel - 1) // 2
        return {
            'padding="same" keeps the size (with stride 1): return size itself': (
                (size - dilation * (kernel - 1) - 1) // stride + 1
            ),
            'with an even kernel PyTorch pads "same" unevenly (one more position on one side), so the output is '
            "exactly size; padding dilation * (kernel_size - 1) // 2 on both sides loses one": (
                (size + 2 * half - dilation * (kernel - 1) - 1) // stride + 1
            ),
        }
    span = dilation * (kernel - 1) + 1
    found["the padding is added on both sides: size + 2 * padding, not size + padding"] = (
        size + p - span
    ) // stride + 1
    found["round down (floor, integer division //), not up (ceil)"] = -(-(size + 2 * p - span) // stride) + 1
    found["the dilation spreads the kernel over dilation * (kernel_size - 1) + 1 positions; it was ignored"] = (
        size + 2 * p - kernel
    ) // stride + 1
    found["add 1 after the division: floor((size + 2p - d(k-1) - 1) / s) + 1"] = (size + 2 * p - span) // stride
    found["the formula divides by the stride before adding 1; it was applied without the stride"] = (
        size + 2 * p - span + 1
    )
    return found


def conv_cases() -> list[tuple[tuple, dict, str]]:
    """(args, kwargs, how PyTorch computes the oracle): structured edge cases and seeded random ones."""
    cases: list[tuple[tuple, dict, str]] = []
    structured = [
        (32, 3, 1, 1, 1),
        (32, 3, 2, 1, 1),
        (28, 5, 1, 0, 1),
        (224, 7, 2, 3, 1),
        (56, 3, 2, 1, 1),
        (5, 3, 2, 0, 1),
        (6, 3, 2, 0, 1),
        (7, 2, 2, 0, 1),
        (1, 1, 1, 0, 1),
        (1, 3, 1, 1, 1),
        (1, 3, 2, 1, 1),
        (10, 3, 1, 0, 2),
        (10, 3, 3, 2, 3),
        (11, 4, 3, 1, 2),
        (3, 3, 1, 0, 1),
        (2, 3, 1, 0, 1),
        (1, 2, 1, 0, 1),
        (4, 3, 1, 0, 2),
        (40, 7, 4, 0, 3),
        (9, 5, 5, 2, 1),
    ]
    for size, k, s, p, d in structured:
        cases.append(((size, k), {"stride": s, "padding": p, "dilation": d}, "conv"))
    cases.append(((32, 3), {}, "conv"))  # defaults
    cases.append(((13, 3, 2, 1, 1), {}, "conv"))  # positional
    cases.append(((12, 5), {"padding": 2}, "conv"))
    cases.append(((12, 5), {"stride": 3}, "conv"))
    cases.append(((12, 3), {"dilation": 4}, "conv"))
    for padding in ("valid", "same"):
        for size, k, s, d in [(10, 3, 1, 1), (7, 4, 1, 1), (9, 3, 1, 3), (1, 5, 1, 1), (5, 5, 1, 2), (12, 3, 2, 1)]:
            cases.append(((size, k), {"stride": s, "padding": padding, "dilation": d}, "conv"))
        cases.append(((8, 3), {"padding": padding}, "conv"))
    rng = random.Random(4)
    for _ in range(260):
        size, k, s, d = rng.randint(1, 40), rng.randint(1, 7), rng.randint(1, 4), rng.choice((1, 1, 2, 3))
        padding = rng.choice((0, 0, 1, 1, 2, 3, "valid", "same"))
        cases.append(((size, k), {"stride": s, "padding": padding, "dilation": d}, "conv"))
    for _ in range(60):
        size, k, s, d = rng.randint(1, 40), rng.randint(1, 7), rng.randint(1, 4), rng.choice((1, 2))
        cases.append(((size, k), {"stride": s, "padding": rng.randint(0, k // 2), "dilation": d}, "pool"))
    return cases


def conv_expected(args: tuple, kwargs: dict, oracle: str) -> int | None:
    names = ("size", "kernel_size", "stride", "padding", "dilation")
    given = dict(zip(names, args, strict=False)) | kwargs
    full = {"stride": 1, "padding": 0, "dilation": 1} | given
    return conv_oracle(
        full["size"], full["kernel_size"], full["stride"], full["padding"], full["dilation"], pool=oracle == "pool"
    )


def full_arguments(args: tuple, kwargs: dict) -> tuple[int, int, int, int | str, int]:
    names = ("size", "kernel_size", "stride", "padding", "dilation")
    full = {"stride": 1, "padding": 0, "dilation": 1} | dict(zip(names, args, strict=False)) | kwargs
    return full["size"], full["kernel_size"], full["stride"], full["padding"], full["dilation"]


def check_conv_output_size(namespace: MutableMapping[str, Any]) -> None:
    """conv_output_size against the output shapes of F.conv2d and F.max_pool2d over hundreds of configurations."""
    student = Student(namespace)
    conv_output_size = student.function("conv_output_size")
    cases = conv_cases()
    expected = [conv_expected(args, kwargs, oracle) for args, kwargs, oracle in cases]
    outcomes = call_each(conv_output_size, [(args, kwargs) for args, kwargs, _ in cases])
    title = (
        "conv_output_size against nn.Conv2d and nn.MaxPool2d output shapes: sizes 1 to 40, kernels 1 to 7, strides, "
        'paddings (ints, "valid", "same"), dilations, arguments by position and keyword, a Python int'
    )
    with group(title):
        for index, ((args, kwargs, _), wanted, (result, error)) in enumerate(
            zip(cases, expected, outcomes, strict=True)
        ):
            label = case("conv_output_size", *args, **kwargs)
            if wanted is None:
                continue
            if error is not None:
                fail(label, f"raised {type(error).__name__}: {error}. The contract: {CONV_CONTRACT}")
            integer_form(label, result, python_int=True)
            if result != wanted:
                fail(
                    label, f"returned {result}, expected {wanted}: " + conv_diagnosis(cases, outcomes, expected, index)
                )
            counted()

    with group('conv_output_size raises ValueError for an empty output and for padding="same" with a stride'):
        for (args, kwargs, _), wanted, (result, error) in zip(cases, expected, outcomes, strict=True):
            if wanted is not None:
                continue
            label = case("conv_output_size", *args, **kwargs)
            size, kernel, stride, padding, dilation = full_arguments(args, kwargs)
            if padding == "same":
                why = 'padding="same" is only defined for stride 1 (PyTorch refuses it for strided convolutions)'
            else:
                why = "the output would be empty: the padded input is shorter than dilation * (kernel_size - 1) + 1"
            if error is None:
                fail(label, f"must raise ValueError ({why}), returned {result!r}")
            require(
                isinstance(error, ValueError),
                label,
                f"must raise ValueError ({why}), raised {type(error).__name__}: {error}",
            )


def conv_diagnosis(cases, outcomes, expected, index: int) -> str:
    """The known mistake that fits the failing case and most other cases, else the contract."""
    args, kwargs, _ = cases[index]
    failing = conv_mistakes(*full_arguments(args, kwargs))
    fitting = [name for name, value in failing.items() if value == outcomes[index][0]]
    if not fitting:
        return f"the contract: {CONV_CONTRACT}"

    def score(name: str) -> int:
        hits = 0
        for (a, k, _), (result, _error), wanted in zip(cases, outcomes, expected, strict=True):
            if wanted is not None and result != wanted:
                hits += conv_mistakes(*full_arguments(a, k)).get(name) == result
        return hits

    return max(fitting, key=score)


# ------------------------------------------------------------------ receptive_field

RF_CONTRACT = (
    "receptive_field(layers) returns the int 1 + sum_l d_l * (k_l - 1) * (product of the strides of the layers "
    "before l), for layers (kernel_size, stride) or (kernel_size, stride, dilation), first layer first"
)


def layer_parts(layer: Sequence[int]) -> tuple[int, int, int]:
    return (layer[0], layer[1], layer[2] if len(layer) > 2 else 1)


def measured_receptive_field(layers: Sequence[Sequence[int]]) -> int:
    """The span of input positions with a nonzero gradient of output unit 0 of a real stack of convolutions."""
    parts = [layer_parts(layer) for layer in layers]
    need = 1 + sum(d * (k - 1) * math.prod(s for _, s, _ in parts[:i]) for i, (k, _, d) in enumerate(parts))
    length = need + 2 * math.prod(s for _, s, _ in parts) + 2
    x = torch.ones(1, 1, length, dtype=FLOAT64, requires_grad=True)
    out = x
    for k, s, d in parts:  # valid convolutions with positive weights: no cancellation, no padding
        out = F.conv1d(out, torch.ones(1, 1, k, dtype=FLOAT64), stride=s, dilation=d)
    (grad,) = torch.autograd.grad(out[0, 0, 0], x)
    positions = grad[0, 0].nonzero().flatten()
    return int(positions.max() - positions.min() + 1)


def rf_formula(parts, stride_of=lambda i, parts: math.prod(s for _, s, _ in parts[:i]), span=None) -> int:
    span = span or (lambda k, d: d * (k - 1))
    return 1 + sum(span(k, d) * stride_of(i, parts) for i, (k, _, d) in enumerate(parts))


def rf_mistakes(layers: Sequence[Sequence[int]]) -> dict[str, int]:
    parts = [layer_parts(layer) for layer in layers]
    return {
        "each layer's extra reach is multiplied by the product of the strides of the layers BEFORE it (the "
        "jump between its inputs); the strides were left out": rf_formula(parts, stride_of=lambda i, p: 1),
        "multiply by the strides of the layers before l only, not by layer l's own stride": rf_formula(
            parts, stride_of=lambda i, p: math.prod(s for _, s, _ in p[: i + 1])
        ),
        "a dilated kernel spans dilation * (kernel_size - 1) + 1 positions; the dilation was ignored": rf_formula(
            parts, span=lambda k, d: k - 1
        ),
        "a dilated kernel spans dilation * (kernel_size - 1) + 1 positions, not dilation * kernel_size": rf_formula(
            parts, span=lambda k, d: d * k - 1
        ),
        "start from 1 (one output unit sees one position with no layer): r = 1 + sum ...": rf_formula(parts) - 1,
        "the layers come first layer first: the strides that multiply layer l are those of the layers before it "
        "(the list was read backwards)": rf_formula(parts[::-1]),
    }


def rf_cases() -> list[list[tuple[int, ...]]]:
    stacks: list[list[tuple[int, ...]]] = [
        [],
        [(3, 1)],
        [(1, 1)],
        [(3, 1), (3, 1)],
        [(3, 1), (3, 1), (3, 1)],
        [(5, 2)],
        [(2, 2), (2, 2), (2, 2)],
        [(7, 2), (3, 2), (3, 1), (3, 1)],  # the stem of a ResNet, then a block
        [(3, 2), (3, 1)],
        [(3, 1), (3, 2)],
        [(3, 1, 2)],
        [(3, 1, 1), (3, 1, 2), (3, 1, 4)],  # a WaveNet-style dilated stack
        [(3, 2, 2), (2, 3, 3)],
        [(1, 4), (3, 1)],
    ]
    rng = random.Random(41)
    for _ in range(40):
        depth = rng.randint(1, 5)
        with_dilation = rng.random() < 0.6
        stack = []
        for _ in range(depth):
            k, s = rng.randint(1, 7), rng.randint(1, 3)
            stack.append((k, s, rng.randint(1, 3)) if with_dilation else (k, s))
        stacks.append(stack)
    return stacks


def check_receptive_field(namespace: MutableMapping[str, Any]) -> None:
    """receptive_field against the gradient of one output unit of real convolution stacks, dilations included."""
    student = Student(namespace)
    receptive_field = student.function("receptive_field")
    stacks = rf_cases()
    outcomes = call_each(receptive_field, [((list(stack),), {}) for stack in stacks])
    title = (
        "receptive_field against the gradient of one output unit of a real stack of convolutions: no layer, one "
        "layer, strides before and after, dilations, random stacks of up to 5 layers; an int"
    )
    with group(title):
        for stack, (result, error) in zip(stacks, outcomes, strict=True):
            label = f"receptive_field({stack})"
            if error is not None:
                fail(label, f"raised {type(error).__name__}: {error}. The contract: {RF_CONTRACT}")
            integer_form(label, result, python_int=True)
            wanted = measured_receptive_field(stack)
            if int(result) == wanted:
                counted()
                continue
            fitting = [name for name, value in rf_mistakes(stack).items() if value == int(result)]

            def score(name: str) -> int:
                return sum(
                    rf_mistakes(other).get(name) == outcome[0] != measured_receptive_field(other)
                    for other, outcome in zip(stacks, outcomes, strict=True)
                    if outcome[1] is None and is_integer(outcome[0])
                )

            hint = max(fitting, key=score) if fitting else f"the contract: {RF_CONTRACT}"
            fail(label, f"returned {result}, but {wanted} input positions can influence one output unit: {hint}")
        tupled = ((3, 2), (3, 1, 2))
        label = f"receptive_field({tupled}) (a tuple of layers)"
        result = call(label, receptive_field, tupled, contract=RF_CONTRACT)
        integer_form(label, result, python_int=True)
        require(int(result) == measured_receptive_field(tupled), label, f"returned {result}, expected 7")


# ------------------------------------------------------------------ global_avg_pool

GAP_FORBIDDEN: dict[Callable, str] = {
    F.adaptive_avg_pool2d: "torch.nn.functional.adaptive_avg_pool2d",
    F.adaptive_avg_pool1d: "torch.nn.functional.adaptive_avg_pool1d",
    F.adaptive_avg_pool3d: "torch.nn.functional.adaptive_avg_pool3d",
    nn.AdaptiveAvgPool1d.forward: "nn.AdaptiveAvgPool1d",
    nn.AdaptiveAvgPool2d.forward: "nn.AdaptiveAvgPool2d",
    nn.AdaptiveAvgPool3d.forward: "nn.AdaptiveAvgPool3d",
    torch._C._nn.adaptive_avg_pool2d: "torch._C._nn.adaptive_avg_pool2d",
    torch._C._nn.adaptive_avg_pool3d: "torch._C._nn.adaptive_avg_pool3d",
    torch.adaptive_avg_pool1d: "torch.adaptive_avg_pool1d",
}
GAP_TASK = "global average pooling: the mean over H and W, from tensor operations"
GAP_CONTRACT = "global_avg_pool(x) maps an (N, C, H, W) tensor to the (N, C) tensor of the means over H and W"


def gap_mistakes(x64: torch.Tensor) -> dict[str, torch.Tensor]:
    n, c, h, w = x64.shape
    found = {
        "divide the sum over H and W by H * W (take the mean), not only sum": x64.sum(dim=(2, 3)),
        "this is global MAX pooling; take the mean over H and W": x64.amax(dim=(2, 3)),
        "divide by H * W, the number of positions of one channel (not by H, W or C)": x64.sum(dim=(2, 3)) / max(h, w),
        "the mean runs over every channel's H * W positions of its own example; this mixed in the other examples "
        "of the batch": x64.mean(dim=(0, 2, 3)).expand(n, c),
    }
    if c == w:
        found["average over H and W (dims 2 and 3), not over the channels (dim 1)"] = x64.mean(dim=(1, 2))
    if c == h:
        found["average over H and W (dims 2 and 3), not over the channels (dim 1)"] = x64.mean(dim=(1, 3))
    return found


def shape_hint(actual: Any, x: torch.Tensor) -> str:
    n, c, h, w = x.shape
    if not isinstance(actual, torch.Tensor):
        return ""
    shape = tuple(actual.shape)
    if shape == (c,) or shape == ():
        return ": keep the batch axis: average over dims 2 and 3 only (no .mean() over everything, no squeeze())"
    if shape == (n, c, 1, 1):
        return ": flatten the (N, C, 1, 1) result to (N, C)"
    if shape in ((n, h), (n, w)):
        return ": average over H and W (dims 2 and 3), not over the channels (dim 1)"
    if shape in ((n, c, h), (n, c, w)):
        return ": average over both H and W (dims 2 and 3)"
    return f": {GAP_CONTRACT}"


def compare_pool(global_avg_pool: Callable, x: torch.Tensor, note: str = "") -> None:
    """One call: form, values against float64, input unchanged, gradient when x requires grad, nothing forbidden."""
    label = case("global_avg_pool", x) + (f" ({note})" if note else "")
    snapshot = Snapshot(x=x)
    with forbidding(label, GAP_FORBIDDEN, GAP_TASK):
        result = call(label, global_avg_pool, x, contract=GAP_CONTRACT)
    x64 = x.detach().to(FLOAT64, copy=True).requires_grad_(x.requires_grad)
    expected = x64.mean(dim=(2, 3))
    n, c = x.shape[:2]
    require(isinstance(result, torch.Tensor), label, f"expected a tensor, got {describe(result)}")
    require(
        tuple(result.shape) == (n, c), label, f"shape {tuple(result.shape)}, expected {(n, c)}" + shape_hint(result, x)
    )
    check_form(label, result, dtype=x.dtype, device=x.device)
    tol = tolerances(x.dtype)
    assert_close(
        label, result.detach(), expected.detach(), mistakes=gap_mistakes(x64.detach()), exact_form=False, **tol
    )
    if x.requires_grad:
        require(
            result.requires_grad,
            label,
            "the result does not require grad: keep the autograd graph (no .detach(), .data, .item() or no_grad())",
        )
        weights = normal((n, c), seed=7).to(x.device)
        (grad,) = call(f"{label}: gradient", torch.autograd.grad, weighted(result, weights), x)
        (grad64,) = torch.autograd.grad(weighted(expected, weights), x64)
        assert_close(f"{label}: gradient with respect to x", grad.detach(), grad64.to(x.dtype), exact_form=False, **tol)
    snapshot.assert_unchanged(label)


def check_global_avg_pool(namespace: MutableMapping[str, Any]) -> None:
    """global_avg_pool against the float64 mean over H and W, every layout, gradients, no adaptive pooling."""
    student = Student(namespace)
    global_avg_pool = student.function("global_avg_pool")
    device = student.device
    shapes = [(4, 3, 5, 5), (1, 8, 7, 7), (2, 3, 1, 1), (3, 5, 4, 6), (1, 1, 3, 2), (2, 4, 7, 4), (5, 2, 1, 9)]
    title = (
        "global_avg_pool against the mean over H and W in float64: batch 1, odd and unequal H and W, 1x1 maps, "
        "float32 and float64, x's dtype and device, x unchanged, no adaptive average pooling"
    )
    with group(title):
        for seed, shape in enumerate(shapes):
            for dtype in (FLOAT64, FLOAT32):
                x = normal(shape, seed=seed, mean=0.5, dtype=dtype, device=device)
                compare_pool(global_avg_pool, x)
    with group("global_avg_pool: memory layouts of x (strided view, transposed storage, channels_last), gradients"):
        for seed, shape in enumerate([(3, 4, 5, 6), (1, 3, 3, 3)]):
            base = normal(shape, seed=20 + seed, dtype=FLOAT64, device=device)
            for name, x in layouts(base):
                compare_pool(global_avg_pool, x, note=name)
            for dtype in (FLOAT64, FLOAT32):
                x = base.to(dtype).clone().requires_grad_(True)
                compare_pool(global_avg_pool, x, note="x requires grad")
    if device.type == "cpu":
        with group("global_avg_pool on a simulated GPU: nothing made on the CPU"):
            for shape in [(2, 3, 4, 5), (1, 2, 3, 3)]:
                x = normal(shape, seed=30, dtype=FLOAT32)
                label = case("global_avg_pool", x) + " with x on a GPU"
                _, violations = run_on_simulated_gpu(global_avg_pool, x)
                require(not violations, label, violations[0] if violations else "")


# ------------------------------------------------------------------ modules: shared


def build(label: str, factory: Callable, *args: Any, contract: str, **kwargs: Any) -> nn.Module:
    module = call(label, factory, *args, contract=contract, **kwargs)
    require(isinstance(module, nn.Module), label, f"expected an nn.Module, got {type(module).__name__}")
    return module


def key_diagnosis(missing: list[str], extra: list[str], hints: Callable[[list[str], list[str]], str | None]) -> str:
    specific = hints(missing, extra)
    listed = f"missing {missing[:6]}" if missing else ""
    if extra:
        listed += ("; " if listed else "") + f"unexpected {extra[:6]}"
    return (specific + f" ({listed})") if specific else f"the state_dict keys differ from the contract's: {listed}"


def check_state_dict(
    label: str, module: nn.Module, reference: nn.Module, hints: Callable[[list[str], list[str]], str | None]
) -> None:
    """Exactly the reference's state_dict keys, with its shapes; parameters trainable."""
    state = module.state_dict()
    wanted = reference.state_dict()
    missing = [key for key in wanted if key not in state]
    extra = [key for key in state if key not in wanted]
    require(not missing and not extra, label, key_diagnosis(missing, extra, hints))
    for key, value in wanted.items():
        require(
            tuple(state[key].shape) == tuple(value.shape),
            label,
            f"{key} has shape {tuple(state[key].shape)}, expected {tuple(value.shape)}",
        )
    parameters = dict(module.named_parameters())
    for key, _ in reference.named_parameters():
        require(key in parameters, label, f"{key} is in the state_dict but is not a parameter (use nn layers)")


def random_pool(seed: int, size: int = 4099) -> torch.Tensor:
    """N(0, 1) values to fill parameters from: drawing 11 million values for a ResNet would take a second."""
    return torch.randn(size, generator=seeded(seed), dtype=FLOAT64)


def fill(tensor: torch.Tensor, pool: torch.Tensor, offset: int, scale: float, shift: float = 0.0) -> None:
    """``tensor`` = shift + scale * pool values from ``offset`` on, the pool repeated as often as needed (one pass)."""
    values = (shift + scale * pool.roll(-(offset % pool.numel()))).to(tensor.dtype)
    flat, size = tensor.view(-1), pool.numel()
    whole = flat.numel() // size
    flat[: whole * size].view(whole, size).copy_(values.expand(whole, size))
    flat[whole * size :].copy_(values[: flat.numel() - whole * size])


def randomised(reference: nn.Module, seed: int) -> nn.Module:
    """Random weights, batch-norm affine parameters away from 1 and 0, running statistics away from 0 and 1."""
    pool = random_pool(seed)
    with torch.no_grad():
        for index, module in enumerate(reference.modules()):
            offset = 97 * index
            if isinstance(module, nn.BatchNorm2d):
                fill(module.weight, pool, offset, 0.3, 1.0)
                fill(module.bias, pool, offset + 1, 0.3)
                fill(module.running_mean, pool, offset + 2, 0.3)
                fill(module.running_var, pool.abs(), offset + 3, 0.5, 0.5)
                module.num_batches_tracked.fill_(3)
            elif isinstance(module, nn.Conv2d | nn.Linear):
                fill(module.weight, pool, offset, math.sqrt(2.0 / module.weight[0].numel()))
                if module.bias is not None:
                    fill(module.bias, pool, offset + 1, 0.3)
    return reference


def reference_with_weights(reference_class: type[nn.Module], *args: Any, seed: int, dtype=FLOAT64) -> nn.Module:
    """A reference built without PyTorch's initialisation (on the meta device), then filled by :func:`randomised`."""
    with torch.device("meta"):
        reference = reference_class(*args)
    return randomised(reference.to_empty(device="cpu").to(dtype), seed)


def loaded(
    label: str, module: nn.Module, reference: nn.Module, dtype: torch.dtype, device
) -> tuple[nn.Module, nn.Module]:
    """The student's module and the reference on ``device`` in ``dtype``, holding the same weights."""
    reference = reference.to(device=device, dtype=dtype)
    module = call(f"{label}.to({str(dtype).removeprefix('torch.')})", module.to, device=device, dtype=dtype)
    call(f"{label}.load_state_dict(the reference's state_dict)", module.load_state_dict, reference.state_dict())
    return module, reference


def compare_module(
    label: str,
    module: nn.Module,
    reference: nn.Module,
    x: torch.Tensor,
    training: bool,
    *,
    contract: str,
    mistakes: Callable[[nn.Module, torch.Tensor, bool], dict[str, torch.Tensor]] | None = None,
    deep: bool = False,
    gradients: bool = True,
    shape_message: str = "",
) -> None:
    """One forward (and backward) of the student's module and of the reference: output, gradients, buffers, mode."""
    label = f"{label} in {'train' if training else 'eval'} mode on x: {describe(x)}"
    set_mode(label, module, training)
    reference.train(training)
    modes = module_modes(module)
    # in train mode the running statistics move; a ResNet's 11 million parameters are not copied for a snapshot
    snapshot = Snapshot(x=x) if training or deep else Snapshot(x=x, module=module)
    x_ref = x.detach().clone().requires_grad_(x.requires_grad)
    output = call(label, module, x, contract=contract)
    expected = reference(x_ref)
    require(isinstance(output, torch.Tensor), label, f"forward must return a tensor, got {describe(output)}")
    if tuple(output.shape) != tuple(expected.shape):
        fail(label, f"output shape {tuple(output.shape)}, expected {tuple(expected.shape)}" + shape_message)
    check_form(label, output, dtype=x.dtype, device=x.device)
    tol = tolerances(x.dtype, deep, x.device)
    known = {}
    if mistakes is not None and not torch.allclose(output.detach().double(), expected.detach().double(), **tol):
        with torch.no_grad():
            known = mistakes(reference, x_ref.detach(), training)
    assert_close(f"{label}: output", output.detach(), expected.detach(), mistakes=known, exact_form=False, **tol)
    require(
        module_modes(module) == modes,
        label,
        "forward changed the mode of the module (or of a submodule); leave train()/eval() to the caller",
    )
    if gradients:
        weights = normal(tuple(expected.shape), seed=11).to(x.device)
        names = [name for name, _ in reference.named_parameters()]
        parameters = dict(module.named_parameters())
        leaves = ([x] if x.requires_grad else []) + [parameters[name] for name in names]
        ref_leaves = ([x_ref] if x.requires_grad else []) + [dict(reference.named_parameters())[n] for n in names]
        grads = call(f"{label}: gradients", torch.autograd.grad, weighted(output, weights), leaves, allow_unused=True)
        ref_grads = torch.autograd.grad(weighted(expected, weights), ref_leaves, allow_unused=True)
        for name, grad, ref_grad in zip((["x"] if x.requires_grad else []) + names, grads, ref_grads, strict=True):
            ref_grad = torch.zeros_like(ref_leaves[0]) if ref_grad is None else ref_grad
            require(grad is not None, label, f"no gradient reaches {name}: keep the autograd graph")
            assert_close(
                f"{label}: gradient with respect to {name}", grad.detach(), ref_grad.detach(), exact_form=False, **tol
            )
    # buffers only: a ResNet's parameters would cross from the notebook's kernel for nothing
    state, wanted = dict(module.named_buffers()), dict(reference.named_buffers())
    for key, value in wanted.items():  # moved in train mode as the reference's, unchanged in eval mode
        if "running" in key or key.endswith("num_batches_tracked"):
            require(key in state, label, f"the buffer {key} is gone after the forward pass")
            assert_close(f"{label}: {key} afterwards", state[key], value, exact_form=False, **tol)
    snapshot.assert_unchanged(label)


def require_simulated_gpu(label: str, factory: Callable, args: tuple, x: torch.Tensor) -> None:
    violations, outputs, tensors = module_on_simulated_gpu(factory, args, {}, x, [True, False])
    require(
        not violations,
        label,
        (violations[0] if violations else "") + " (module.to(device) moves parameters and buffers only)",
    )
    for on_gpu in outputs:
        require(on_gpu is not False, label, "the output was made on the CPU while x was on the GPU")
    for key, on_gpu in tensors.items():
        require(on_gpu, label, f"{key} was replaced by a tensor made on the CPU")


def module_input(shape, seed: int, dtype, device, layout: str = "contiguous", requires_grad: bool = True):
    """A leaf input of ``shape``, contiguous or channels_last."""
    x = normal(shape, seed=seed, dtype=dtype, device=device)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    return x.requires_grad_(requires_grad)


# ------------------------------------------------------------------ Inception

INCEPTION_CONTRACT = (
    "Inception(in_channels, c1, c2, c3, c4): b1_1 1x1 conv -> c1; b2_1 1x1 -> c2[0], b2_2 3x3 padding 1 -> c2[1]; "
    "b3_1 1x1 -> c3[0], b3_2 5x5 padding 2 -> c3[1]; b4_1 MaxPool2d(3, stride=1, padding=1), b4_2 1x1 -> c4; "
    "a ReLU after every convolution; the branches concatenated on dim 1 in this order"
)
INCEPTION_SHAPE = (
    ": every branch keeps H and W (3x3 with padding 1, 5x5 with padding 2, max-pool 3 with stride=1 and "
    "padding=1) and the four are concatenated on dim 1 (channels): torch.cat([b1, b2, b3, b4], dim=1)"
)


def inception_hints(missing: list[str], extra: list[str]) -> str | None:
    if any(key.startswith("b4_1.") for key in extra):
        return "b4_1 is the max-pool (no parameters); the 1x1 convolution of the pooling branch is b4_2"
    if any(key.endswith(".bias") for key in missing):
        return "every convolution of Inception has a bias (bias=True, the default)"
    return f"the layers are named b1_1, b2_1, b2_2, b3_1, b3_2, b4_1 (max-pool) and b4_2. {INCEPTION_CONTRACT}"


def inception_mistakes(reference: nn.Module, x: torch.Tensor, training: bool) -> dict[str, torch.Tensor]:
    branches = inception_branches(reference, x)
    return {
        "the branches are concatenated in the order b1, b2, b3, b4": torch.cat(branches[::-1], dim=1),
        "a ReLU follows every convolution, the 1x1 reductions b2_1 and b3_1 too": torch.cat(
            inception_branches(reference, x, inner_relu=False), dim=1
        ),
        "a ReLU follows the last convolution of every branch": torch.cat(
            inception_branches(reference, x, outer_relu=False), dim=1
        ),
        "the pooling branch uses a MAX-pool 3x3, stride 1, padding 1": torch.cat(
            inception_branches(
                reference, x, pool=lambda t: F.avg_pool2d(t, 3, stride=1, padding=1, count_include_pad=False)
            ),
            dim=1,
        ),
        "the pooling branch uses a MAX-pool 3x3, stride 1, padding 1 (this is an average pool)": torch.cat(
            inception_branches(reference, x, pool=lambda t: F.avg_pool2d(t, 3, stride=1, padding=1)), dim=1
        ),
        "the pooling branch pools first (b4_1), then applies the 1x1 convolution b4_2 to the pooled map": torch.cat(
            inception_branches(reference, x, pool=lambda t: t), dim=1
        ),
    }


INCEPTION_CONFIGS = [  # (in_channels, c1, c2, c3, c4), input shape
    ((3, 4, (2, 5), (1, 3), 2), (2, 3, 6, 6)),
    ((5, 1, (1, 1), (2, 2), 3), (1, 5, 5, 7)),
    ((16, 8, (4, 8), (2, 4), 4), (3, 16, 4, 3)),
    ((2, 3, (3, 2), (3, 2), 3), (2, 2, 1, 1)),
]


def check_inception(namespace: MutableMapping[str, Any]) -> None:
    """Inception against the reference block with the same weights: layout, outputs, gradients, shapes."""
    student = Student(namespace)
    inception = student.module_class("Inception")
    device = student.device
    with group("Inception: layers named b1_1 ... b4_2, their shapes, biases, nothing else in the state_dict"):
        for config, _ in INCEPTION_CONFIGS:
            label = f"Inception{config}"
            module = build(label, inception, *config, contract=INCEPTION_CONTRACT)
            check_state_dict(label, module, ReferenceInception(*config), inception_hints)
    title = (
        "Inception against the reference with its weights in float64: outputs, input and parameter gradients, "
        "batch 1, odd and 1x1 maps, memory layouts, float32, train and eval mode"
    )
    with group(title):
        for seed, (config, shape) in enumerate(INCEPTION_CONFIGS):
            label = f"Inception{config}"
            module = build(label, inception, *config, contract=INCEPTION_CONTRACT)
            reference = reference_with_weights(ReferenceInception, *config, seed=seed)
            for dtype, layout in [(FLOAT64, "contiguous"), (FLOAT64, "channels_last"), (FLOAT32, "contiguous")]:
                module, reference = loaded(label, module, reference, dtype, device)
                for training in (True, False):
                    x = module_input(shape, 50 + seed, dtype, device, layout)
                    compare_module(
                        label,
                        module,
                        reference,
                        x,
                        training,
                        contract=INCEPTION_CONTRACT,
                        mistakes=inception_mistakes,
                        shape_message=INCEPTION_SHAPE,
                    )
    if device.type == "cpu":
        with group("Inception on a simulated GPU: nothing made on the CPU"):
            config, shape = INCEPTION_CONFIGS[0]
            x = normal(shape, seed=60, dtype=FLOAT32)
            require_simulated_gpu(f"Inception{config}.to('cuda') on x on the GPU", inception, config, x)


# ------------------------------------------------------------------ Residual

RESIDUAL_CONTRACT = (
    "Residual(in_channels, out_channels, stride=1) is torchvision's BasicBlock: conv1 3x3 (stride, padding 1, "
    "no bias), bn1, ReLU, conv2 3x3 (padding 1, no bias), bn2; the shortcut is x itself, or downsample = "
    "nn.Sequential(1x1 conv with the stride and no bias, BatchNorm2d) when stride != 1 or the channels change; "
    "ReLU after the sum"
)


def residual_hints(needs_projection: bool) -> Callable[[list[str], list[str]], str | None]:
    def hints(missing: list[str], extra: list[str]) -> str | None:
        if any(key in ("conv1.bias", "conv2.bias", "downsample.0.bias") for key in extra):
            return (
                "the convolutions of Residual have no bias (bias=False): the batch norm after each one removes "
                "any constant shift, and bn's own bias plays its part"
            )
        if needs_projection and any(key.startswith("downsample.0.") for key in missing):
            return (
                "with stride != 1 or in_channels != out_channels, x no longer matches the block's output: the "
                "shortcut needs a projection, downsample = nn.Sequential(nn.Conv2d(in, out, 1, stride=stride, "
                "bias=False), nn.BatchNorm2d(out))"
            )
        if needs_projection and any(key.startswith("downsample.1.") for key in missing):
            return (
                "the projection shortcut is a 1x1 convolution followed by batch norm: downsample = "
                "nn.Sequential(nn.Conv2d(in, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out))"
            )
        if not needs_projection and any(key.startswith("downsample.") for key in extra):
            return (
                "with stride 1 and in_channels == out_channels the shortcut is the identity: set "
                "self.downsample = None (a projection there is a different block, with other parameters)"
            )
        return f"the names are torchvision's: conv1, bn1, conv2, bn2, downsample.0, downsample.1. {RESIDUAL_CONTRACT}"

    return hints


def bn(t: torch.Tensor, layer: nn.BatchNorm2d, training: bool) -> torch.Tensor:
    """The layer's batch norm, without updating its running statistics."""
    if training:
        return F.batch_norm(t, None, None, layer.weight, layer.bias, True, 0.0, layer.eps)
    return F.batch_norm(t, layer.running_mean, layer.running_var, layer.weight, layer.bias, False, 0.0, layer.eps)


def residual_variant(
    block: ReferenceBasicBlock,
    x: torch.Tensor,
    training: bool,
    relu_before_sum: bool = False,
    final_relu: bool = True,
    projection_bn: bool = True,
    stride_on_conv2: bool = False,
    shortcut: bool = True,
) -> torch.Tensor:
    first, second = (1, block.stride) if stride_on_conv2 else (block.stride, 1)
    out = F.relu(bn(F.conv2d(x, block.conv1.weight, stride=first, padding=1), block.bn1, training))
    out = bn(F.conv2d(out, block.conv2.weight, stride=second, padding=1), block.bn2, training)
    if relu_before_sum:
        out = F.relu(out)
    if block.downsample is None:
        identity = x
    else:
        identity = F.conv2d(x, block.downsample[0].weight, stride=block.stride)
        identity = bn(identity, block.downsample[1], training) if projection_bn else identity
    out = out + identity if shortcut else out
    return F.relu(out) if final_relu else out


def residual_mistakes(reference: nn.Module, x: torch.Tensor, training: bool) -> dict[str, torch.Tensor]:
    found = {
        "the ReLU comes after the sum: relu(bn2(conv2(...)) + shortcut), not relu(bn2(...)) + shortcut": (
            residual_variant(reference, x, training, relu_before_sum=True, final_relu=False)
        ),
        "one ReLU after the sum, none on bn2's output before it": residual_variant(
            reference, x, training, relu_before_sum=True
        ),
        "a ReLU follows the sum of the block and the shortcut": residual_variant(
            reference, x, training, final_relu=False
        ),
        "add the shortcut (x, or downsample(x)) to bn2's output before the last ReLU": residual_variant(
            reference, x, training, shortcut=False
        ),
    }
    if reference.downsample is not None:
        found["the projection shortcut is batch-normalised too: downsample(x) = bn(conv1x1(x))"] = residual_variant(
            reference, x, training, projection_bn=False
        )
    if reference.stride != 1:
        found["the stride belongs to conv1 (and the 1x1 projection), not to conv2"] = residual_variant(
            reference, x, training, stride_on_conv2=True
        )
    return found


RESIDUAL_CONFIGS = [  # (in_channels, out_channels, stride), input shape, stride passed by keyword
    ((3, 3, 1), (2, 3, 6, 6), False),
    ((3, 5, 1), (2, 3, 5, 7), False),
    ((4, 4, 2), (3, 4, 5, 7), True),
    ((2, 6, 2), (1, 2, 6, 5), False),
    ((4, 4, 1), (1, 4, 3, 3), False),
    ((3, 6, 3), (2, 3, 7, 7), True),
]


def residual_args(config: tuple[int, int, int], keyword: bool) -> tuple[tuple, dict, str]:
    in_channels, out_channels, stride = config
    if stride == 1 and not keyword:
        return (in_channels, out_channels), {}, f"Residual({in_channels}, {out_channels})"
    if keyword:
        return (
            (in_channels, out_channels),
            {"stride": stride},
            f"Residual({in_channels}, {out_channels}, stride={stride})",
        )
    return config, {}, f"Residual{config}"


def check_residual(namespace: MutableMapping[str, Any]) -> None:
    """Residual against torchvision's BasicBlock (written here) with the same weights, in train and eval mode."""
    student = Student(namespace)
    residual = student.module_class("Residual")
    device = student.device
    title = (
        "Residual: torchvision's BasicBlock state_dict (conv1, bn1, conv2, bn2, downsample.0/.1 exactly when the "
        "stride or the channels change), shapes, no convolution bias"
    )
    with group(title):
        for config, _, keyword in RESIDUAL_CONFIGS:
            args, kwargs, label = residual_args(config, keyword)
            module = build(label, residual, *args, contract=RESIDUAL_CONTRACT, **kwargs)
            needs = config[2] != 1 or config[0] != config[1]
            check_state_dict(label, module, ReferenceBasicBlock(*config), residual_hints(needs))
    title = (
        "Residual against the reference with its weights: outputs, input and parameter gradients, running "
        "statistics, train then eval mode, batch 1, odd H and W, channels_last, float64 and float32"
    )
    with group(title):
        for seed, (config, shape, keyword) in enumerate(RESIDUAL_CONFIGS):
            args, kwargs, label = residual_args(config, keyword)
            module = build(label, residual, *args, contract=RESIDUAL_CONTRACT, **kwargs)
            reference = reference_with_weights(ReferenceBasicBlock, *config, seed=70 + seed)
            runs = [(FLOAT64, "contiguous")] + ([(FLOAT32, "channels_last")] if seed % 2 else [])
            for dtype, layout in runs:
                module, reference = loaded(label, module, reference, dtype, device)
                for step, training in enumerate((True, True, False)):
                    x = module_input(shape, 80 + 10 * seed + step, dtype, device, layout)
                    compare_module(
                        label, module, reference, x, training, contract=RESIDUAL_CONTRACT, mistakes=residual_mistakes
                    )
    if device.type == "cpu":
        with group("Residual on a simulated GPU: nothing made on the CPU"):
            for config, shape, _ in (RESIDUAL_CONFIGS[0], RESIDUAL_CONFIGS[3]):
                x = normal(shape, seed=90, dtype=FLOAT32)
                require_simulated_gpu(f"Residual{config}.to('cuda') on x on the GPU", residual, config, x)


# ------------------------------------------------------------------ resnet18

RESNET_CONTRACT = (
    "resnet18(num_classes=10, in_channels=3) returns torchvision's resnet18: conv1 7x7 stride 2 padding 3 (no bias), "
    "bn1, relu, maxpool 3x3 stride 2 padding 1, layer1 to layer4 of two BasicBlocks each (64, 128, 256, 512 "
    "channels, stride 2 in the first block of layer2 to layer4), global average pooling, fc"
)
RESNET_PARAMETERS = {(1000, 3): 11_689_512, (10, 1): 11_175_370, (10, 3): 11_181_642}


def resnet_hints(missing: list[str], extra: list[str]) -> str | None:
    if any(key.endswith(("conv1.bias", "conv2.bias", "downsample.0.bias")) for key in extra):
        return "the convolutions of ResNet-18 have no bias (bias=False); only fc has one"
    if any("downsample" in key for key in missing):
        return (
            "the first block of layer2, layer3 and layer4 halves H and W and doubles the channels: it needs the "
            "projection shortcut downsample = nn.Sequential(1x1 conv stride 2, BatchNorm2d)"
        )
    if any("downsample" in key for key in extra):
        return "only the first block of layer2, layer3 and layer4 has a projection shortcut (downsample)"
    if any(re.match(r"layer\d\.([2-9]|\d\d)\.", key) for key in extra):
        return "each of layer1 ... layer4 has exactly two blocks (keys layerN.0.* and layerN.1.*)"
    return "use torchvision's names: conv1, bn1, layer1.0.conv1, ..., layer4.1.bn2, fc"


def resnet_mistakes(reference: nn.Module, x: torch.Tensor, training: bool) -> dict[str, torch.Tensor]:
    """Outputs of known mistakes, in eval mode only (a second train-mode forward would move the statistics)."""
    if training:
        return {}

    def variant(stem_pool: Callable, head_pool: Callable) -> torch.Tensor:
        out = stem_pool(reference.relu(reference.bn1(reference.conv1(x))))
        out = reference.layer4(reference.layer3(reference.layer2(reference.layer1(out))))
        return reference.fc(head_pool(out))

    def maxpool(t: torch.Tensor) -> torch.Tensor:
        return reference.maxpool(t)

    def average(t: torch.Tensor) -> torch.Tensor:
        return t.mean(dim=(2, 3))

    return {
        "the stem ends with a max-pool 3x3, stride 2, padding 1 after conv1, bn1 and relu": variant(
            lambda t: t, average
        ),
        "the head AVERAGES each channel over H and W (global average pooling), then fc": variant(
            maxpool, lambda t: t.amax(dim=(2, 3))
        ),
    }


def parameter_count(module: nn.Module) -> int:
    return sum(parameter.numel() for _, parameter in module.named_parameters())


def check_resnet18(namespace: MutableMapping[str, Any]) -> None:
    """resnet18 against torchvision's (written here): parameter count, state_dict, outputs with the same weights."""
    student = Student(namespace)
    resnet18 = student.function("resnet18")
    device = student.device
    with student.lending(global_avg_pool=reference_global_avg_pool):
        with group("resnet18: 11,689,512 parameters for 1000 classes, torchvision's state_dict keys and shapes"):
            models = {}
            for classes, channels in ((1000, 3), (10, 1), (10, 3)):
                if (classes, channels) == (10, 3):
                    label = "resnet18()"
                    model = build(label, resnet18, contract=RESNET_CONTRACT)
                else:
                    label = f"resnet18(num_classes={classes}, in_channels={channels})"
                    model = build(label, resnet18, num_classes=classes, in_channels=channels, contract=RESNET_CONTRACT)
                count = parameter_count(model)
                wanted = RESNET_PARAMETERS[(classes, channels)]
                if count != wanted:
                    missing, extra = key_lists(model, classes, channels)
                    hint = resnet_hints(missing, extra) if missing or extra else RESNET_CONTRACT
                    if (classes, channels) == (10, 3) and parameter_count(meta_resnet18(1000, 3)) == count:
                        hint = "the defaults are num_classes=10 and in_channels=3"
                    fail(label, f"{count:,} parameters, expected {wanted:,} (torchvision's resnet18): {hint}")
                counted()
                check_state_dict(label, model, meta_resnet18(classes, channels), resnet_hints)
                models[(classes, channels)] = model
                del model
            del models[(1000, 3)]
        dtype = FLOAT32 if device.type == "cpu" else FLOAT64  # no TF32 convolutions on a GPU
        title = (
            f"resnet18 against the reference with its weights in {str(dtype).removeprefix('torch.')}: outputs in eval "
            "and train mode, running statistics, 2x3x32x32 and 1x1x40x40 inputs"
        )
        with group(title):
            for (classes, channels), shape, seed in [((10, 3), (2, 3, 32, 32), 0), ((10, 1), (1, 1, 40, 40), 1)]:
                label = "resnet18()" if channels == 3 else f"resnet18(num_classes={classes}, in_channels={channels})"
                reference = reference_with_weights(ReferenceResNet18, classes, channels, seed=100 + seed, dtype=dtype)
                model, reference = loaded(label, models.pop((classes, channels)), reference, dtype, device)
                for training in (False, True):
                    x = normal(shape, seed=110 + seed, dtype=dtype, device=device)
                    compare_module(
                        label,
                        model,
                        reference,
                        x,
                        training,
                        contract=RESNET_CONTRACT,
                        deep=True,
                        gradients=False,
                        mistakes=resnet_mistakes,
                        shape_message=f": the output is (N, num_classes). {RESNET_CONTRACT}",
                    )


def meta_resnet18(classes: int, channels: int) -> nn.Module:
    """The reference's layout without its values (no time spent initialising 11 million parameters)."""
    with torch.device("meta"):
        return ReferenceResNet18(classes, channels)


def key_lists(model: nn.Module, classes: int, channels: int) -> tuple[list[str], list[str]]:
    state, wanted = model.state_dict(), meta_resnet18(classes, channels).state_dict()
    return [key for key in wanted if key not in state], [key for key in state if key not in wanted]
