"""Visible checks of convolution arithmetic, Inception and residual blocks and ResNet-18 (lab 4).

The checks hold no implementation of the lab's answers: they compare them with fixed expected values for a
few fixed cases. :func:`check_conv_output_size` and :func:`check_receptive_field` know the right results of
their cases (measured once with ``nn.Conv2d`` and with autograd through ``nn.Conv1d``); the block checks load
parameters that depend only on the expected ``state_dict`` layout, run the block on a fixed input and compare
one weighted sum per output channel (ResNet-18: the logits) with the values recorded for that case. Every
check prints one line per quantity, with the expected value or the tolerance next to the result.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dlcourse.checks.core import check_close, check_true, is_close

Layout = dict[str, tuple[int, ...]]
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
RESNET18_WIDTHS = (64, 128, 256, 512)
VALUE_TOL = 1e-9  # float64 throughout: summation order changes the values by far less


def check_equal(name: str, got, expected, source: str = "") -> None:
    """Assert ``got == expected`` (same type too) and print ``name: got X, expected Y  OK``."""
    ok = type(got) is type(expected) and got == expected
    origin = f" ({source})" if source else ""
    print(f"{name}: got {got!r}, expected {expected!r}{origin}  {'OK' if ok else 'FAILED'}")
    if not ok:
        hint = f" of type {type(expected).__name__}" if got == expected else ""
        raise AssertionError(f"{name}: expected {expected!r}{hint}, got {got!r} of type {type(got).__name__}")


def check_raises(name: str, error: type[Exception], function: Callable, *args, **kwargs) -> None:
    """Assert that ``function(*args, **kwargs)`` raises ``error``."""
    try:
        result = function(*args, **kwargs)
    except error:
        check_true(f"{name}: raises {error.__name__}", True, "")
        return
    check_true(f"{name}: raises {error.__name__}", False, f"expected {error.__name__}, got the result {result!r}")


# ---------------------------------------------------------------- convolution arithmetic

CONV_CASES = [
    # (size, kernel_size, stride, padding, dilation), the output width of nn.Conv2d for a size x size input
    ((32, 3, 1, 1, 1), 32),
    ((32, 3, 2, 1, 1), 16),
    ((7, 3, 2, 0, 1), 3),
    ((5, 2, 3, 0, 1), 2),
    ((15, 3, 1, 0, 3), 9),
    ((28, 5, 1, "valid", 1), 24),
    ((10, 3, 1, "same", 1), 10),
    ((9, 4, 1, "same", 2), 9),
]
EMPTY_OR_INVALID = [
    (10, 3, 2, "same", 1),  # PyTorch supports "same" only with stride 1
    (3, 5, 1, 0, 1),  # the kernel is larger than the padded input
    (4, 3, 1, 0, 2),  # the dilated kernel spans 5 > 4 pixels
]


def call_with(function: Callable, size, kernel_size, stride, padding, dilation):
    """Call ``function`` as a student would: keywords only where they differ from the defaults."""
    options = {"stride": stride, "padding": padding, "dilation": dilation}
    defaults = {"stride": 1, "padding": 0, "dilation": 1}
    return function(size, kernel_size, **{key: value for key, value in options.items() if value != defaults[key]})


def describe_conv(size, kernel_size, stride, padding, dilation) -> str:
    return f"conv_output_size({size}, {kernel_size}, stride={stride}, padding={padding!r}, dilation={dilation})"


def check_conv_output_size(conv_output_size: Callable[..., int]) -> None:
    """Compare ``conv_output_size`` with the output width of ``nn.Conv2d`` on a few configurations.

    Also checks that the result is a Python int, and that ``ValueError`` is raised for
    ``padding="same"`` with a stride other than 1 and for an output that would be empty.
    """
    for case, expected in CONV_CASES:
        got = call_with(conv_output_size, *case)
        check_equal(describe_conv(*case), got, expected, "nn.Conv2d's output width")
    for case in EMPTY_OR_INVALID:
        check_raises(describe_conv(*case), ValueError, call_with, conv_output_size, *case)


RECEPTIVE_FIELD_CASES = [
    # layers (kernel_size, stride[, dilation]), the width of the input region behind one output unit
    ([], 1),
    ([(3, 1)], 3),
    ([(3, 1), (3, 1)], 5),
    ([(2, 2), (2, 2), (2, 2)], 8),
    ([(7, 2), (3, 2), (3, 1), (3, 1)], 27),
    ([(3, 1, 2), (3, 1, 4)], 13),
    ([(5, 2), (3, 1, 2), (1, 1)], 13),
]


def check_receptive_field(receptive_field: Callable[[Sequence[tuple[int, ...]]], int]) -> None:
    """Compare ``receptive_field`` with the receptive field of a few stacks, measured with autograd.

    (The gradient of one output unit of a stack of ``nn.Conv1d`` with all-ones weights is positive exactly at
    the inputs it depends on.)
    """
    for layers, expected in RECEPTIVE_FIELD_CASES:
        got = receptive_field(list(layers))
        check_equal(f"receptive_field({layers})", got, expected, "measured with autograd")


# ---------------------------------------------------------------- global average pooling


@contextlib.contextmanager
def adaptive_pooling_recorded() -> Iterator[list[str]]:
    """Record calls of ``F.adaptive_avg_pool2d`` (``nn.AdaptiveAvgPool2d`` calls it too) while the block runs."""
    calls: list[str] = []
    original = F.adaptive_avg_pool2d

    def recording(*args, **kwargs):
        calls.append("F.adaptive_avg_pool2d")
        return original(*args, **kwargs)

    F.adaptive_avg_pool2d = recording
    try:
        yield calls
    finally:
        F.adaptive_avg_pool2d = original


def check_global_avg_pool(global_avg_pool: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Compare ``global_avg_pool`` with the mean over H and W (in float64) on a few shapes.

    Checks the output's shape, dtype and device, its values (tolerance 1e-6 in float32, 1e-12 in
    float64), the gradient with respect to x (1 / (H W) everywhere), and that adaptive pooling
    is not used.
    """
    gen = torch.Generator().manual_seed(0)
    for shape, dtype in (((4, 3, 5, 7), torch.float32), ((1, 2, 1, 1), torch.float32), ((2, 6, 4, 4), torch.float64)):
        x = torch.randn(shape, generator=gen, dtype=dtype).requires_grad_(True)
        name = f"global_avg_pool on {tuple(shape)}, {dtype}"
        with adaptive_pooling_recorded() as calls:
            output = global_avg_pool(x)
        check_true(f"{name}: no adaptive pooling", not calls, "compute the mean yourself, without adaptive pooling")
        check_true(
            f"{name}: shape {shape[:2]}, dtype and device",
            isinstance(output, torch.Tensor)
            and output.shape == shape[:2]
            and output.dtype == dtype
            and output.device == x.device,
            f"expected a {dtype} tensor of shape {shape[:2]} on {x.device}, got "
            + (f"{output.dtype} {tuple(output.shape)}" if isinstance(output, torch.Tensor) else repr(output)),
        )
        tol = 1e-12 if dtype == torch.float64 else 1e-6
        check_close(f"{name}: values", output, x.detach().double().mean(dim=(2, 3)).to(dtype), tol, tol)
        check_true(
            f"{name}: gradient reaches x",
            output.requires_grad,
            "the output does not depend on x through autograd: no .detach(), .data, .item() or torch.no_grad()",
        )
        output.sum().backward()
        check_close(f"{name}: gradient", x.grad, torch.full_like(x, 1 / (shape[2] * shape[3])), tol, tol)


# ---------------------------------------------------------------- layouts of blocks and networks


def batch_norm_layout(prefix: str, channels: int) -> Layout:
    """state_dict entries of ``nn.BatchNorm2d(channels)`` under ``prefix``."""
    layout = {f"{prefix}.{key}": (channels,) for key in ("weight", "bias", "running_mean", "running_var")}
    return layout | {f"{prefix}.num_batches_tracked": ()}


def inception_layout(in_channels: int, c1: int, c2: Sequence[int], c3: Sequence[int], c4: int) -> Layout:
    """state_dict entries of the lab's Inception block: six convolutions with biases, a pool without."""
    convs = {
        "b1_1": (c1, in_channels, 1, 1),
        "b2_1": (c2[0], in_channels, 1, 1),
        "b2_2": (c2[1], c2[0], 3, 3),
        "b3_1": (c3[0], in_channels, 1, 1),
        "b3_2": (c3[1], c3[0], 5, 5),
        "b4_2": (c4, in_channels, 1, 1),
    }
    layout: Layout = {}
    for name, shape in convs.items():
        layout |= {f"{name}.weight": shape, f"{name}.bias": shape[:1]}
    return layout


def needs_projection(in_channels: int, out_channels: int, stride: int) -> bool:
    """A residual block's shortcut must change the shape when the stride or the width changes."""
    return stride != 1 or in_channels != out_channels


def residual_layout(in_channels: int, out_channels: int, stride: int = 1) -> Layout:
    """state_dict entries of torchvision's BasicBlock (the lab's Residual)."""
    layout = {"conv1.weight": (out_channels, in_channels, 3, 3)} | batch_norm_layout("bn1", out_channels)
    layout |= {"conv2.weight": (out_channels, out_channels, 3, 3)} | batch_norm_layout("bn2", out_channels)
    if needs_projection(in_channels, out_channels, stride):
        layout |= {"downsample.0.weight": (out_channels, in_channels, 1, 1)}
        layout |= batch_norm_layout("downsample.1", out_channels)
    return layout


def resnet18_layout(num_classes: int = 10, in_channels: int = 3) -> Layout:
    """state_dict entries of torchvision's resnet18: stem, four stages of two blocks, classifier."""
    layout = {"conv1.weight": (64, in_channels, 7, 7)} | batch_norm_layout("bn1", 64)
    channels = 64
    for stage, width in enumerate(RESNET18_WIDTHS, start=1):
        for index in range(2):
            stride = 2 if stage > 1 and index == 0 else 1
            block = residual_layout(channels, width, stride)
            layout |= {f"layer{stage}.{index}.{key}": shape for key, shape in block.items()}
            channels = width
    return layout | {"fc.weight": (num_classes, 512), "fc.bias": (num_classes,)}


def parameter_count(layout: Layout) -> int:
    """Number of learnable values in a layout: every entry except the batch-norm buffers."""
    return sum(math.prod(shape) for key, shape in layout.items() if not key.endswith(BUFFERS))


def layout_hint(missing: list[str], unexpected: list[str]) -> str:
    """What a mismatch of state_dict keys most likely means."""
    if missing and all(key.endswith(".bias") for key in missing):
        return "a layer that should have a bias has none (bias=False where the task keeps the default)"
    if unexpected and all(key.endswith(".bias") for key in unexpected):
        return "a layer that should have no bias has one (pass bias=False where the task says so)"
    if any("downsample." in key for key in missing + unexpected):
        return "check when a block needs the projection shortcut (downsample) and when it does not"
    return "name the submodules as the task says"


def check_state_dict_layout(name: str, module: nn.Module, expected: Mapping[str, tuple[int, ...]]) -> None:
    """Assert that ``module.state_dict()`` has exactly the ``expected`` keys with the expected shapes."""
    got = {key: tuple(value.shape) for key, value in module.state_dict().items()}
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    check_true(
        f"{name}: state_dict has the {len(expected)} expected keys",
        not missing and not unexpected,
        f"missing keys {missing[:6]}{' ...' if len(missing) > 6 else ''}, unexpected keys "
        f"{unexpected[:6]}{' ...' if len(unexpected) > 6 else ''}; {layout_hint(missing, unexpected)}",
    )
    wrong = {key: (got[key], shape) for key, shape in expected.items() if got[key] != tuple(shape)}
    check_true(
        f"{name}: state_dict shapes",
        not wrong,
        "wrong shapes (got, expected): " + ", ".join(f"{key} {pair}" for key, pair in list(wrong.items())[:6]),
    )


def check_block_shapes(
    name: str, block: nn.Module, input_shape: tuple[int, ...], expected_shape: tuple[int, ...]
) -> torch.Tensor:
    """Run ``block`` on a random float32 input; check the output's shape and that every parameter gets a gradient.

    Returns the output.
    """
    x = torch.randn(input_shape, generator=torch.Generator().manual_seed(0))
    output = block(x)
    check_equal(f"{name}: output shape for input {tuple(input_shape)}", tuple(output.shape), tuple(expected_shape))
    output.sum().backward()
    idle = [key for key, parameter in block.named_parameters() if parameter.grad is None]
    check_true(f"{name}: every parameter gets a gradient", not idle, f"no gradient reached {idle}")
    block.zero_grad(set_to_none=True)
    return output


# ---------------------------------------------------------------- fixed parameters and inputs for the blocks

POOL_SIZE = 4099  # a prime: the repeated pool never lines up with a tensor's rows
STATE_SEED = 31  # chosen so that every ReLU of the Inception cases passes at least a tenth of its inputs


@functools.cache
def value_pool(seed: int) -> torch.Tensor:
    """4099 numbers in [-1, 1) from ``random.Random(seed)``, whose sequence Python keeps the same in every version."""
    generator = random.Random(seed)
    return torch.tensor([2 * generator.random() - 1 for _ in range(POOL_SIZE)], dtype=torch.float64)


def pool_values(shape: Sequence[int], seed: int, offset: int = 0) -> torch.Tensor:
    """A float64 tensor of ``shape`` holding the pool's values from ``offset`` on, the pool repeated as needed."""
    index = (offset + torch.arange(math.prod(shape))) % POOL_SIZE
    return value_pool(seed)[index].view(tuple(shape))


def fixed_state(layout: Mapping[str, tuple[int, ...]], seed: int = STATE_SEED) -> dict[str, torch.Tensor]:
    """A float64 state_dict for ``layout`` whose values depend on the layout alone, not on the module's own init.

    Weights of convolutions and linear layers have variance 2 / fan-in (uniform); batch-norm scales and
    running variances lie in [0.5, 1.5), biases, shifts and running means in [-0.5, 0.5); no batch is tracked.
    """
    state, offset = {}, 0
    for key, shape in layout.items():
        values = pool_values(shape, seed, offset)
        offset += math.prod(shape)
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros(shape, dtype=torch.long)
        elif key.endswith("running_var") or (key.endswith("weight") and len(shape) == 1):
            state[key] = 1 + values / 2
        elif len(shape) > 1:
            state[key] = values * math.sqrt(6 / math.prod(shape[1:]))
        else:
            state[key] = values / 2
    return state


def with_fixed_state(module: nn.Module, layout: Layout) -> nn.Module:
    """``module`` in float64 holding :func:`fixed_state` of ``layout`` (its layout was checked before)."""
    module.double()
    module.load_state_dict(fixed_state(layout))
    return module


def channel_sums(output: torch.Tensor) -> torch.Tensor:
    """Per channel, the sum over batch, height and width of ``output`` times fixed weights in [-1, 1).

    One number per channel that any change of a value in the channel changes.
    """
    return (output * pool_values(output.shape, seed=2)).sum(dim=(0, 2, 3))


def check_values(
    name: str, got: torch.Tensor, expected: Sequence[float], parts: Mapping[str, range] | None = None
) -> None:
    """Compare ``got`` with the recorded ``expected`` values (float64, tolerance 1e-9); on a failure, name
    the ``parts`` (ranges of entries, e.g. a block's branches) that differ."""
    wanted = torch.tensor(expected, dtype=torch.float64)
    if parts and got.shape == wanted.shape and not is_close(got.detach(), wanted, VALUE_TOL, VALUE_TOL):
        wrong = [
            part for part, entries in parts.items() if not is_close(got[entries], wanted[entries], VALUE_TOL, VALUE_TOL)
        ]
        print(f"{name}: FAILED")
        raise AssertionError(f"{name}: the output differs from the expected one in {', '.join(wrong)}")
    check_close(name, got, wanted, VALUE_TOL, VALUE_TOL)


def fixed_input(shape: tuple[int, ...]) -> torch.Tensor:
    """A float64 input of ``shape`` with values in [-1, 1) that are the same on every machine."""
    return pool_values(shape, seed=1)


# ---------------------------------------------------------------- the blocks against recorded values

INCEPTION_BRANCHES = ("branch 1 (1x1)", "branch 2 (1x1, 3x3)", "branch 3 (1x1, 5x5)", "branch 4 (3x3 max-pool, 1x1)")
INCEPTION_CASES = [
    # (in_channels, c1, c2, c3, c4), then for each branch, channel_sums of its output channels for a fixed
    # (2, in_channels, 6, 5) input, the block holding fixed_state of its layout
    (
        (4, 2, (3, 5), (2, 3), 2),
        (
            (3.79952714941, 2.05835994284),
            (0.378376312415, -7.63553089661, 0.493659567256, -2.50128944079, -2.25876232381),
            (0.16482593735, 2.86726595766, -0.0698815559683),
            (3.10499114593, -0.996341151981),
        ),
    ),
    (
        (3, 1, (2, 3), (1, 2), 2),
        (
            (-1.93230289563,),
            (4.19954738185, 4.92061065011, -10.0419255134),
            (-1.52221370321, -0.347639497949),
            (1.01703893385, -6.0605885986),
        ),
    ),
]


def check_inception_block(inception_class: Callable[..., nn.Module]) -> None:
    """Check an Inception class: state_dict layout, output shape and gradients, and values.

    The values are compared per output channel (:func:`channel_sums`) with those recorded for fixed
    parameters and a fixed input, in float64 within 1e-9; a mismatch names the branches that differ.
    """
    for (in_channels, c1, c2, c3, c4), branches in INCEPTION_CASES:
        name = f"Inception({in_channels}, {c1}, {c2}, {c3}, {c4})"
        block = inception_class(in_channels, c1, c2, c3, c4)
        layout = inception_layout(in_channels, c1, c2, c3, c4)
        check_state_dict_layout(name, block, layout)
        check_block_shapes(name, block, (2, in_channels, 7, 7), (2, c1 + c2[1] + c3[1] + c4, 7, 7))
        with torch.no_grad():
            output = with_fixed_state(block, layout)(fixed_input((2, in_channels, 6, 5)))
        starts = [0, *itertools.accumulate(len(sums) for sums in branches)]
        parts = {part: range(starts[k], starts[k + 1]) for k, part in enumerate(INCEPTION_BRANCHES)}
        expected = [value for sums in branches for value in sums]
        check_values(f"{name}: output values", channel_sums(output), expected, parts)


RESIDUAL_CASES = [
    # (in_channels, out_channels, stride), then for a fixed (3, in_channels, 5, 5) input, the block holding
    # fixed_state of its layout: channel_sums of the output in training mode, bn1.running_mean after that
    # batch, channel_sums of the output in evaluation mode (the fixed running statistics)
    (
        (4, 4, 1),
        (-6.59474944862, 6.83411880186, -0.0144359445529, 1.02836001273),
        (-0.124081512762, -0.0951692398137, 0.276363116045, -0.115910659492),
        (-1.6084961565, 6.39509393506, -0.322675177363, 1.65140949947),
    ),
    (
        (2, 4, 1),
        (-4.96747030878, 5.5937938551, -1.22687204429, 0.170596406946),
        (-0.147852795524, 0.186115363285, 0.321815068839, -0.0288276162613),
        (-3.07411848284, 1.03471548333, -0.0269783117044, 0.918683113809),
    ),
    (
        (2, 4, 2),
        (2.74982187766, 2.37567224597, -1.07059651907, 2.85710494854),
        (-0.144396957599, 0.18065619127, 0.310935170561, -0.0164400437972),
        (1.5049261622, 0.101799087353, -0.171428887637, 1.42437090149),
    ),
    (
        (4, 4, 2),
        (9.70561142291, -1.11887967993, 0.382056640821, 1.99177117255),
        (-0.128006585237, -0.112838413001, 0.278331747456, -0.110378567804),
        (7.79884715558, -0.8202864675, -0.313338684197, 0.78921007885),
    ),
]


def check_residual_block(residual_class: Callable[..., nn.Module]) -> None:
    """Check a Residual class: layout, the shortcut, output shape and gradients, values in both modes.

    The values are compared with those recorded for fixed parameters and a fixed input, in float64 within
    1e-9: per output channel (:func:`channel_sums`) in training mode (batch statistics) and bn1's running mean
    after that batch, then in evaluation mode (the fixed running statistics).
    """
    for (in_channels, out_channels, stride), training, running_mean, evaluation in RESIDUAL_CASES:
        name = f"Residual({in_channels}, {out_channels}, stride={stride})"
        block = residual_class(in_channels, out_channels, stride=stride)
        layout = residual_layout(in_channels, out_channels, stride)
        check_state_dict_layout(name, block, layout)
        projection = needs_projection(in_channels, out_channels, stride)
        check_true(
            f"{name}: downsample is {'a projection' if projection else 'None'}",
            (getattr(block, "downsample", "missing") is None) != projection,
            "set self.downsample = nn.Sequential(1x1 conv, BatchNorm2d) when the stride or the width changes, "
            "else self.downsample = None",
        )
        size, out_size = 6, -(-6 // stride)  # ceil(size / stride)
        check_block_shapes(name, block, (2, in_channels, size, size), (2, out_channels, out_size, out_size))
        x = fixed_input((3, in_channels, 5, 5))
        with torch.no_grad():
            output = with_fixed_state(block, layout).train()(x)
            check_values(f"{name}: output in training mode", channel_sums(output), training)
            check_values(f"{name}: bn1.running_mean after the batch", block.bn1.running_mean, running_mean)
            output = with_fixed_state(block, layout).eval()(x)
            check_values(f"{name}: output in evaluation mode", channel_sums(output), evaluation)


# resnet18(num_classes=5, in_channels=1) in evaluation mode holding fixed_state of its layout: the logits for a
# fixed (2, 1, 40, 40) input
RESNET18_LOGITS = (
    (386.777474798, 202.238272847, -397.08556182, -598.452241905, -91.4829664573),
    (394.160098219, 215.761791782, -394.489697832, -605.310359567, -108.533895108),
)


def check_resnet18_layout(resnet18: Callable[..., nn.Module]) -> None:
    """Check ``resnet18``: torchvision's state_dict keys and shapes, parameter count, output shapes and values.

    The expected layout is built block by block from torchvision's architecture; the logits for a fixed
    (2, 1, 40, 40) input, in evaluation mode with fixed parameters and statistics, are compared in float64
    with the recorded ones within 1e-9.
    """
    model = resnet18(num_classes=1000, in_channels=3)
    expected = resnet18_layout(1000, 3)
    check_state_dict_layout("resnet18(num_classes=1000)", model, expected)
    got = sum(parameter.numel() for parameter in model.parameters())
    check_equal("resnet18(num_classes=1000): number of parameters", got, parameter_count(expected), "from the layout")
    name = "resnet18(num_classes=5, in_channels=1)"
    model = resnet18(num_classes=5, in_channels=1)
    layout = resnet18_layout(5, 1)
    check_state_dict_layout(name, model, layout)
    check_block_shapes(name, model, (2, 1, 40, 40), (2, 5))
    with torch.no_grad():
        logits = with_fixed_state(model, layout).eval()(fixed_input((2, 1, 40, 40)))
    check_values(f"{name}: logits", logits, RESNET18_LOGITS)
