"""Visible checks of convolution arithmetic, Inception and residual blocks and ResNet-18 (lab 4).

Each check compares a lab answer with something PyTorch computes independently of it:
:func:`check_conv_output_size` with the shape ``nn.Conv2d`` produces, :func:`check_receptive_field`
with the input region that autograd finds behind one output unit, and the block checks with the
same computation written out in ``torch.nn.functional`` from the block's own parameters. Every
check prints one line per quantity, with the expected value or the tolerance next to the result.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dlcourse.checks.core import check_close, check_true

Layout = dict[str, tuple[int, ...]]
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
RESNET18_WIDTHS = (64, 128, 256, 512)


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


def conv2d_output_size(size: int, kernel_size: int, stride: int, padding: int | str, dilation: int) -> int:
    """The width of ``nn.Conv2d``'s output for a ``size`` x ``size`` input, measured by running it."""
    conv = nn.Conv2d(1, 1, kernel_size, stride=stride, padding=padding, dilation=dilation, bias=False)
    with torch.no_grad():
        return conv(torch.zeros(1, 1, size, size)).shape[-1]


CONV_CASES = [
    # (size, kernel_size, stride, padding, dilation)
    (32, 3, 1, 1, 1),
    (32, 3, 2, 1, 1),
    (7, 3, 2, 0, 1),
    (5, 2, 3, 0, 1),
    (15, 3, 1, 0, 3),
    (28, 5, 1, "valid", 1),
    (10, 3, 1, "same", 1),
    (9, 4, 1, "same", 2),
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
    for case in CONV_CASES:
        got = call_with(conv_output_size, *case)
        check_equal(describe_conv(*case), got, conv2d_output_size(*case), "nn.Conv2d")
    for case in EMPTY_OR_INVALID:
        check_raises(describe_conv(*case), ValueError, call_with, conv_output_size, *case)


def measured_receptive_field(layers: Sequence[tuple[int, ...]]) -> int:
    """Width of the input region behind the first output unit of a 1-D stack of ``layers``, found by autograd.

    Every layer is a convolution with all-ones weights, so the gradient of one output unit is
    positive exactly at the inputs it depends on (there are no cancellations); the receptive field
    is the distance from the first to the last of them, plus one. The input is doubled until the
    stack produces at least one output.
    """
    convs = []
    for layer in layers:
        kernel_size, stride, dilation = layer[0], layer[1], layer[2] if len(layer) > 2 else 1
        conv = nn.Conv1d(1, 1, kernel_size, stride=stride, dilation=dilation, bias=False)
        nn.init.ones_(conv.weight)
        convs.append(conv)
    stack = nn.Sequential(*convs)
    length = 1
    while True:
        x = torch.ones(1, 1, length, dtype=torch.float64, requires_grad=True)
        try:
            output = stack.double()(x)
        except RuntimeError:  # the input is still too short for one output
            length *= 2
            continue
        break
    output[0, 0, 0].backward()
    inputs_seen = x.grad[0, 0].nonzero().flatten()
    return int(inputs_seen[-1] - inputs_seen[0]) + 1


RECEPTIVE_FIELD_CASES = [
    [],
    [(3, 1)],
    [(3, 1), (3, 1)],
    [(2, 2), (2, 2), (2, 2)],
    [(7, 2), (3, 2), (3, 1), (3, 1)],
    [(3, 1, 2), (3, 1, 4)],
    [(5, 2), (3, 1, 2), (1, 1)],
]


def check_receptive_field(receptive_field: Callable[[Sequence[tuple[int, ...]]], int]) -> None:
    """Compare ``receptive_field`` with the receptive field measured by autograd on a few stacks."""
    for layers in RECEPTIVE_FIELD_CASES:
        got = receptive_field(list(layers))
        check_equal(f"receptive_field({layers})", got, measured_receptive_field(layers), "measured with autograd")


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


# ---------------------------------------------------------------- the blocks, written out in torch.nn.functional


def batch_norm_with(bn: nn.BatchNorm2d, x: torch.Tensor, training: bool) -> torch.Tensor:
    """``bn``'s computation from its parameters and copies of its running statistics."""
    return F.batch_norm(x, bn.running_mean.clone(), bn.running_var.clone(), bn.weight, bn.bias, training, 0.1, bn.eps)


def inception_expected(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """GoogLeNet's four branches, concatenated on the channels, from ``block``'s parameters."""

    def conv(name: str, inputs: torch.Tensor, padding: int = 0) -> torch.Tensor:
        layer = getattr(block, name)
        return F.relu(F.conv2d(inputs, layer.weight, layer.bias, padding=padding))

    branch1 = conv("b1_1", x)
    branch2 = conv("b2_2", conv("b2_1", x), padding=1)
    branch3 = conv("b3_2", conv("b3_1", x), padding=2)
    branch4 = conv("b4_2", F.max_pool2d(x, kernel_size=3, stride=1, padding=1))
    return torch.cat((branch1, branch2, branch3, branch4), dim=1)


def residual_expected(block: nn.Module, x: torch.Tensor, stride: int, training: bool) -> torch.Tensor:
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)) from ``block``'s parameters."""
    out = F.relu(batch_norm_with(block.bn1, F.conv2d(x, block.conv1.weight, stride=stride, padding=1), training))
    out = batch_norm_with(block.bn2, F.conv2d(out, block.conv2.weight, padding=1), training)
    if block.downsample is None:
        shortcut = x
    else:
        projection = F.conv2d(x, block.downsample[0].weight, stride=stride)
        shortcut = batch_norm_with(block.downsample[1], projection, training)
    return F.relu(out + shortcut)


def resnet18_expected(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """torchvision's resnet18 in evaluation mode, from ``model``'s parameters and buffers."""
    out = F.relu(batch_norm_with(model.bn1, F.conv2d(x, model.conv1.weight, stride=2, padding=3), False))
    out = F.max_pool2d(out, kernel_size=3, stride=2, padding=1)
    for stage in range(1, 5):
        for index, block in enumerate(getattr(model, f"layer{stage}")):
            out = residual_expected(block, out, 2 if stage > 1 and index == 0 else 1, training=False)
    return F.linear(out.mean(dim=(2, 3)), model.fc.weight, model.fc.bias)


def random_batch_norm_state(module: nn.Module, gen: torch.Generator) -> None:
    """Give every batch norm of ``module`` random weights and running statistics, so eval mode is not trivial."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.modules.batchnorm._BatchNorm):
                for tensor in (layer.weight, layer.bias, layer.running_mean):
                    tensor.copy_(torch.randn(tensor.shape, generator=gen))
                layer.running_var.copy_(torch.rand(layer.running_var.shape, generator=gen) + 0.5)


INCEPTION_CASES = [(4, 2, (3, 5), (2, 3), 2), (6, 8, (4, 8), (1, 4), 4)]


def check_inception_block(inception_class: Callable[..., nn.Module]) -> None:
    """Check an Inception class: state_dict layout, output shape and gradients, and values (float64, 1e-10)."""
    gen = torch.Generator().manual_seed(0)
    for in_channels, c1, c2, c3, c4 in INCEPTION_CASES:
        name = f"Inception({in_channels}, {c1}, {c2}, {c3}, {c4})"
        block = inception_class(in_channels, c1, c2, c3, c4)
        check_state_dict_layout(name, block, inception_layout(in_channels, c1, c2, c3, c4))
        check_block_shapes(name, block, (2, in_channels, 7, 7), (2, c1 + c2[1] + c3[1] + c4, 7, 7))
        block.double()
        x = torch.randn(2, in_channels, 6, 5, generator=gen, dtype=torch.float64)
        with torch.no_grad():
            check_close(f"{name}: output values", block(x), inception_expected(block, x), 1e-10, 1e-10)


RESIDUAL_CASES = [(8, 8, 1), (4, 8, 1), (4, 8, 2), (8, 8, 2)]


def check_residual_block(residual_class: Callable[..., nn.Module]) -> None:
    """Check a Residual class: layout, the shortcut, output shape and gradients, values in both modes.

    Values are compared in float64 within 1e-10, in training mode (batch statistics; the running
    statistics are then compared too) and in evaluation mode (random running statistics).
    """
    gen = torch.Generator().manual_seed(0)
    for in_channels, out_channels, stride in RESIDUAL_CASES:
        name = f"Residual({in_channels}, {out_channels}, stride={stride})"
        block = residual_class(in_channels, out_channels, stride=stride)
        check_state_dict_layout(name, block, residual_layout(in_channels, out_channels, stride))
        projection = needs_projection(in_channels, out_channels, stride)
        check_true(
            f"{name}: downsample is {'a projection' if projection else 'None'}",
            (getattr(block, "downsample", "missing") is None) != projection,
            "set self.downsample = nn.Sequential(1x1 conv, BatchNorm2d) when the stride or the width changes, "
            "else self.downsample = None",
        )
        size, out_size = 6, -(-6 // stride)  # ceil(size / stride)
        check_block_shapes(name, block, (2, in_channels, size, size), (2, out_channels, out_size, out_size))
        block.double().train()
        x = torch.randn(3, in_channels, 5, 5, generator=gen, dtype=torch.float64)
        with torch.no_grad():
            expected = residual_expected(block, x, stride, training=True)
            running_mean = bn1_running_mean_after(block, x, stride)
            check_close(f"{name}: output in training mode", block(x), expected, 1e-10, 1e-10)
            check_close(f"{name}: bn1.running_mean after the batch", block.bn1.running_mean, running_mean, 1e-10, 1e-10)
            random_batch_norm_state(block, gen)
            block.eval()
            expected = residual_expected(block, x, stride, training=False)
            check_close(f"{name}: output in evaluation mode", block(x), expected, 1e-10, 1e-10)


def bn1_running_mean_after(block: nn.Module, x: torch.Tensor, stride: int) -> torch.Tensor:
    """bn1's running mean after one training batch: 0.9 * before + 0.1 * the batch mean of conv1's output."""
    batch_mean = F.conv2d(x, block.conv1.weight, stride=stride, padding=1).mean(dim=(0, 2, 3))
    return 0.9 * block.bn1.running_mean + 0.1 * batch_mean


def check_resnet18_layout(resnet18: Callable[..., nn.Module]) -> None:
    """Check ``resnet18``: torchvision's state_dict keys and shapes, parameter count, output shapes and values.

    The expected layout is built block by block from torchvision's architecture; the values are
    compared in float64 and evaluation mode (random batch-norm statistics) within 1e-9.
    """
    model = resnet18(num_classes=1000, in_channels=3)
    expected = resnet18_layout(1000, 3)
    check_state_dict_layout("resnet18(num_classes=1000)", model, expected)
    got = sum(parameter.numel() for parameter in model.parameters())
    check_equal("resnet18(num_classes=1000): number of parameters", got, parameter_count(expected), "from the layout")
    model = resnet18(num_classes=5, in_channels=1)
    check_state_dict_layout("resnet18(num_classes=5, in_channels=1)", model, resnet18_layout(5, 1))
    check_block_shapes("resnet18(num_classes=5, in_channels=1)", model, (2, 1, 40, 40), (2, 5))
    gen = torch.Generator().manual_seed(0)
    random_batch_norm_state(model, gen)
    model.double().eval()
    x = torch.randn(2, 1, 40, 40, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        expected_output = resnet18_expected(model, x)
        check_close("resnet18(num_classes=5, in_channels=1): output values", model(x), expected_output, 1e-9, 1e-9)
