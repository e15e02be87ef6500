"""Hidden tests of lab04_cnn (autograder/battery/cnn.py): correct answers in several styles pass, known mistakes fail
with a message that names them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autograder.battery import cnn

# ------------------------------------------------------------------ a correct solution


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    if padding == "same":
        if stride != 1:
            raise ValueError('padding="same" needs stride 1')
        return size
    if padding == "valid":
        padding = 0
    out = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
    if out <= 0:
        raise ValueError("the output would be empty")
    return out


def receptive_field(layers):
    r, jump = 1, 1
    for layer in layers:
        k, s = layer[0], layer[1]
        d = layer[2] if len(layer) > 2 else 1
        r += d * (k - 1) * jump
        jump *= s
    return r


def global_avg_pool(x):
    return x.mean(dim=(2, 3))


class Inception(nn.Module):
    def __init__(self, in_channels, c1, c2, c3, c4):
        super().__init__()
        self.b1_1 = nn.Conv2d(in_channels, c1, 1)
        self.b2_1 = nn.Conv2d(in_channels, c2[0], 1)
        self.b2_2 = nn.Conv2d(c2[0], c2[1], 3, padding=1)
        self.b3_1 = nn.Conv2d(in_channels, c3[0], 1)
        self.b3_2 = nn.Conv2d(c3[0], c3[1], 5, padding=2)
        self.b4_1 = nn.MaxPool2d(3, stride=1, padding=1)
        self.b4_2 = nn.Conv2d(in_channels, c4, 1)

    def forward(self, x):
        b1 = F.relu(self.b1_1(x))
        b2 = F.relu(self.b2_2(F.relu(self.b2_1(x))))
        b3 = F.relu(self.b3_2(F.relu(self.b3_1(x))))
        b4 = F.relu(self.b4_2(self.b4_1(x)))
        return torch.cat((b1, b2, b3, b4), dim=1)


class Residual(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    def __init__(self, num_classes=10, in_channels=3, block=Residual, stem_bias=False, maxpool=True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=stem_bias)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if maxpool else nn.Identity()
        self.layer1 = nn.Sequential(block(64, 64), block(64, 64))
        self.layer2 = nn.Sequential(block(64, 128, 2), block(128, 128))
        self.layer3 = nn.Sequential(block(128, 256, 2), block(256, 256))
        self.layer4 = nn.Sequential(block(256, 512, 2), block(512, 512))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18(num_classes=10, in_channels=3):
    return ResNet(num_classes, in_channels)


def namespace(**overrides):
    names = {
        "conv_output_size": conv_output_size,
        "receptive_field": receptive_field,
        "global_avg_pool": global_avg_pool,
        "Inception": Inception,
        "Residual": Residual,
        "resnet18": resnet18,
    }
    return names | overrides


def fails(check, message: str, **overrides) -> None:
    with pytest.raises(AssertionError, match=message):
        check(namespace(**overrides))


# ------------------------------------------------------------------ conv_output_size


def conv_output_size_floor(size, kernel_size, stride=1, padding=0, dilation=1):
    if isinstance(padding, str):
        if padding == "same" and stride != 1:
            raise ValueError("strided same")
        pad_total = dilation * (kernel_size - 1) if padding == "same" else 0
        out = math.floor((size + pad_total - dilation * (kernel_size - 1) - 1) / stride) + 1
    else:
        out = math.floor((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1
    if out < 1:
        raise ValueError("empty")
    return int(out)


def conv_output_size_by_pytorch(size, kernel_size, stride=1, padding=0, dilation=1):
    try:
        conv = nn.Conv2d(1, 1, (kernel_size, 1), stride=(stride, 1), padding=padding, dilation=(dilation, 1))
        return conv(torch.zeros(1, 1, size, 1)).shape[2]
    except RuntimeError as error:
        raise ValueError(str(error)) from None


def conv_wrong(kind):
    def conv(size, kernel_size, stride=1, padding=0, dilation=1):
        if padding == "same":
            if stride != 1 and kind != "same with stride":
                raise ValueError("strided same")
            if kind != "same as padding":
                return size
            padding = dilation * (kernel_size - 1) // 2
        padding = 0 if padding == "valid" else padding
        span = (kernel_size - 1) * (1 if kind == "dilation" else dilation) + 1
        twice = 1 if kind == "padding once" else 2
        if kind == "ceil":
            out = math.ceil((size + twice * padding - span) / stride) + 1
        elif kind == "float":
            out = (size + twice * padding - span) / stride + 1
            out = float(math.floor(out))
        elif kind == "tensor":
            out = torch.tensor((size + twice * padding - span) // stride + 1)
        else:
            out = (size + twice * padding - span) // stride + 1
        if out <= 0 and kind != "no error":
            if kind == "runtime error":
                raise RuntimeError("empty")
            raise ValueError("empty")
        return out

    return conv


@pytest.mark.parametrize("function", [conv_output_size, conv_output_size_floor, conv_output_size_by_pytorch])
def test_conv_output_size_passes_correct_answers(function):
    cnn.check_conv_output_size(namespace(conv_output_size=function))


@pytest.mark.parametrize(
    "kind, message",
    [
        ("padding once", "both sides"),
        ("ceil", "round down"),
        ("dilation", "the dilation spreads the kernel.*ignored"),
        ("float", "got float.*integer division"),
        ("tensor", "got Tensor"),
        ("no error", "must raise ValueError.*empty"),
        ("same with stride", 'must raise ValueError.*"same" is only defined for stride 1'),
        ("runtime error", "must raise ValueError.*raised RuntimeError"),
        ("same as padding", 'pads "same" unevenly'),
    ],
)
def test_conv_output_size_catches_mistakes(kind, message):
    fails(cnn.check_conv_output_size, message, conv_output_size=conv_wrong(kind))


# ------------------------------------------------------------------ receptive_field


def receptive_field_backwards(layers):
    r = 1
    for layer in reversed(list(layers)):
        k, s, d = (*layer, 1)[:3]
        r = s * r + d * (k - 1) + 1 - s  # the inputs of r units of this layer's output
    return r


def receptive_field_numpy(layers):
    if not len(layers):
        return 1
    k = np.array([layer[0] for layer in layers])
    s = np.array([layer[1] for layer in layers])
    d = np.array([layer[2] if len(layer) == 3 else 1 for layer in layers])
    jumps = np.concatenate([[1], np.cumprod(s)[:-1]])
    return int(1 + np.sum(d * (k - 1) * jumps))


def rf_wrong(kind):
    def rf(layers):
        r, jump = 1, 1
        for layer in layers:
            k, s = layer[0], layer[1]
            d = layer[2] if len(layer) > 2 and kind != "dilation" else 1
            if kind == "own stride":
                jump *= s
            r += d * (k - 1) * (1 if kind == "no strides" else jump)
            if kind != "own stride":
                jump *= s
        return r - 1 if kind == "no one" else r

    return rf


@pytest.mark.parametrize("function", [receptive_field, receptive_field_backwards, receptive_field_numpy])
def test_receptive_field_passes_correct_answers(function):
    cnn.check_receptive_field(namespace(receptive_field=function))


@pytest.mark.parametrize(
    "kind, message",
    [
        ("no strides", "the strides were left out"),
        ("own stride", "not by layer l's own stride"),
        ("dilation", "the dilation was ignored"),
        ("no one", "start from 1"),
    ],
)
def test_receptive_field_catches_mistakes(kind, message):
    fails(cnn.check_receptive_field, message, receptive_field=rf_wrong(kind))


def test_receptive_field_wants_an_int():
    fails(cnn.check_receptive_field, "expected an int", receptive_field=lambda layers: float(receptive_field(layers)))


# ------------------------------------------------------------------ global_avg_pool


@pytest.mark.parametrize(
    "function",
    [
        global_avg_pool,
        lambda x: F.avg_pool2d(x, kernel_size=x.shape[2:]).flatten(1),
        lambda x: x.sum(dim=(2, 3)) / (x.shape[2] * x.shape[3]),
        lambda x: x.flatten(2).mean(-1),
        lambda x: torch.mean(x, dim=[-1, -2]),
        lambda x: x.reshape(x.shape[0], x.shape[1], -1).mean(dim=2),
        lambda x: x.view(x.shape[0], x.shape[1], -1).mean(-1),  # every layout graded keeps H and W mergeable
    ],
)
def test_global_avg_pool_passes_correct_answers(function):
    cnn.check_global_avg_pool(namespace(global_avg_pool=function))


def global_avg_pool_loop(x):  # zeros made on the CPU: fails on a GPU
    out = torch.zeros(x.shape[0], x.shape[1], dtype=x.dtype)
    return out + x.mean(dim=(2, 3))


def global_avg_pool_in_place(x):
    return x.mul_(1).mean(dim=(2, 3))


@pytest.mark.parametrize(
    "function, message",
    [
        (lambda x: F.adaptive_avg_pool2d(x, 1).flatten(1), "called torch.nn.functional.adaptive_avg_pool2d"),
        (lambda x: nn.AdaptiveAvgPool2d((1, 1))(x).squeeze(-1).squeeze(-1), "called nn.AdaptiveAvgPool2d"),
        (lambda x: x.mean(dim=(0, 2, 3)), "keep the batch axis"),
        (lambda x: x.mean(dim=(2, 3)).squeeze(), "keep the batch axis"),
        (lambda x: x.mean(dim=(2, 3), keepdim=True), r"flatten the \(N, C, 1, 1\)"),
        (lambda x: x.sum(dim=(2, 3)), "divide the sum over H and W by H \\* W"),
        (lambda x: x.amax(dim=(2, 3)), "MAX pooling"),
        (lambda x: x.mean(dim=(2, 3)) - x.mean(dim=(0, 2, 3)) + x.mean(dim=(0, 2, 3)).mean(), "differs"),
        (lambda x: x.float().mean(dim=(2, 3)), "dtype torch.float32, expected torch.float64"),
        (lambda x: x.detach().mean(dim=(2, 3)), "does not require grad"),
        (global_avg_pool_in_place, "in place"),
        (global_avg_pool_loop, "made on the CPU"),
    ],
)
def test_global_avg_pool_catches_mistakes(function, message):
    fails(cnn.check_global_avg_pool, message, global_avg_pool=function)


# ------------------------------------------------------------------ Inception


class InceptionModules(Inception):
    """ReLU modules, torch.concat and a functional max-pool in forward: the same computation."""

    def __init__(self, *args):
        super().__init__(*args)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        r = self.relu
        pooled = F.max_pool2d(x, 3, stride=1, padding=1)
        return torch.concat(
            [r(self.b1_1(x)), r(self.b2_2(r(self.b2_1(x)))), r(self.b3_2(r(self.b3_1(x)))), r(self.b4_2(pooled))], 1
        )


def inception_with(pool=None, order=(0, 1, 2, 3), inner=True, dim=1, bias=True):
    class WrongInception(Inception):
        def __init__(self, *args):
            super().__init__(*args)
            if pool is not None:
                self.b4_1 = pool
            if not bias:
                for name in ("b1_1", "b2_1", "b2_2", "b3_1", "b3_2", "b4_2"):
                    conv = getattr(self, name)
                    setattr(self, name, nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                                                  padding=conv.padding, bias=False))  # fmt: skip

        def forward(self, x):
            act = F.relu if inner else (lambda t: t)
            branches = [
                F.relu(self.b1_1(x)),
                F.relu(self.b2_2(act(self.b2_1(x)))),
                F.relu(self.b3_2(act(self.b3_1(x)))),
                F.relu(self.b4_2(self.b4_1(x))),
            ]
            return torch.cat([branches[i] for i in order], dim=dim)

    return WrongInception


@pytest.mark.parametrize("cls", [Inception, InceptionModules])
def test_inception_passes_correct_answers(cls):
    cnn.check_inception(namespace(Inception=cls))


@pytest.mark.parametrize(
    "cls, message",
    [
        (inception_with(pool=nn.MaxPool2d(3)), "raised RuntimeError.*MaxPool2d\\(3, stride=1, padding=1\\)"),
        (inception_with(pool=nn.MaxPool2d(3, stride=1)), "raised RuntimeError"),
        (inception_with(pool=nn.AvgPool2d(3, stride=1, padding=1)), "MAX-pool"),
        (inception_with(order=(3, 2, 1, 0)), "order b1, b2, b3, b4"),
        (inception_with(inner=False), "the 1x1 reductions b2_1 and b3_1 too"),
        (inception_with(dim=2), "raised RuntimeError|concatenated on dim 1"),
        (inception_with(bias=False), "has a bias"),
    ],
)
def test_inception_catches_mistakes(cls, message):
    fails(cnn.check_inception, message, Inception=cls)


# ------------------------------------------------------------------ Residual


class ResidualFunctional(nn.Module):
    """F.relu, out + shortcut, and nn.Identity-free code: the same block in another style."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        needs = stride != 1 or in_channels != out_channels
        self.downsample = (
            nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))
            if needs
            else None
        )

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = self.downsample(x) if self.downsample is not None else x
        return F.relu(out + shortcut)


def residual_with(relu_before_sum=False, projection_bn=True, projection="when needed", stride_on=1, bias=False):
    class WrongResidual(nn.Module):
        def __init__(self, in_channels, out_channels, stride=1):
            super().__init__()
            s1, s2 = (stride, 1) if stride_on == 1 else (1, stride)
            self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=s1, padding=1, bias=bias)
            self.bn1 = nn.BatchNorm2d(out_channels)
            self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=s2, padding=1, bias=bias)
            self.bn2 = nn.BatchNorm2d(out_channels)
            needs = {"when needed": stride != 1 or in_channels != out_channels, "always": True, "never": False}
            self.downsample = None
            if needs[projection]:
                layers = [nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)]
                self.downsample = nn.Sequential(*layers, *([nn.BatchNorm2d(out_channels)] if projection_bn else []))

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            shortcut = x if self.downsample is None else self.downsample(x)
            if relu_before_sum:
                return F.relu(out) + shortcut
            return F.relu(out + shortcut)

    return WrongResidual


@pytest.mark.parametrize("cls", [Residual, ResidualFunctional])
def test_residual_passes_correct_answers(cls):
    cnn.check_residual(namespace(Residual=cls))


@pytest.mark.parametrize(
    "cls, message",
    [
        (residual_with(relu_before_sum=True), "the ReLU comes after the sum"),
        (residual_with(projection_bn=False), "the projection shortcut is a 1x1 convolution followed by batch norm"),
        (residual_with(projection="always"), "the shortcut is the identity"),
        (residual_with(projection="never"), "the shortcut needs a projection"),
        (residual_with(stride_on=2), "the stride belongs to conv1"),
        (residual_with(bias=True), "no bias"),
    ],
)
def test_residual_catches_mistakes(cls, message):
    fails(cnn.check_residual, message, Residual=cls)


def test_residual_catches_a_projection_without_batch_norm_in_forward():
    """The right parameters, but the shortcut's batch norm skipped in forward."""

    class SkipsBatchNorm(Residual):
        def forward(self, x):
            identity = x if self.downsample is None else self.downsample[0](x)
            out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            return F.relu(out + identity)

    fails(cnn.check_residual, "the projection shortcut is batch-normalised too", Residual=SkipsBatchNorm)


def test_residual_catches_a_forward_that_changes_the_mode():
    class SetsEval(Residual):
        def forward(self, x):
            out = super().forward(x)
            self.bn1.eval()
            return out

    fails(cnn.check_residual, "mode", Residual=SetsEval)


# ------------------------------------------------------------------ resnet18


def resnet18_with_own_pooling(num_classes=10, in_channels=3):
    """The block written functionally and global_avg_pool (the notebook's) in forward."""

    class Net(ResNet):
        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(global_avg_pool(x))

    return Net(num_classes, in_channels, block=ResidualFunctional)


@pytest.mark.parametrize("function", [resnet18, resnet18_with_own_pooling])
def test_resnet18_passes_correct_answers(function):
    cnn.check_resnet18(namespace(resnet18=function))


@pytest.mark.parametrize(
    "function, message",
    [
        (lambda num_classes=10, in_channels=3: ResNet(num_classes, in_channels, stem_bias=True), "have no bias"),
        (
            lambda num_classes=10, in_channels=3: ResNet(num_classes, in_channels, maxpool=False),
            "max-pool 3x3, stride 2",
        ),
        (lambda num_classes=1000, in_channels=3: ResNet(num_classes, in_channels), "defaults are num_classes=10"),
        (lambda num_classes=10, in_channels=3: ResNet(num_classes, 3), "parameters, expected"),
        (
            lambda num_classes=10, in_channels=3: ResNet(
                num_classes, in_channels, block=residual_with(projection="never")
            ),
            "needs the projection shortcut",
        ),
    ],
)
def test_resnet18_catches_mistakes(function, message):
    fails(cnn.check_resnet18, message, resnet18=function)


def test_resnet_hints_tell_a_batch_norm_bias_from_a_convolution_bias():
    from autograder.battery.cnn import resnet_hints

    assert "no bias" in resnet_hints([], ["layer2.0.conv1.bias"])
    assert "no bias" not in resnet_hints([], ["layer1.0.downsample.0.weight", "layer1.0.downsample.1.bias"])
    assert "two blocks" in resnet_hints([], ["layer3.2.conv1.weight", "layer3.2.bn1.bias"])


def test_visible_layout_hint_names_a_bias_mistake():
    from dlcourse.checks.cnn import layout_hint

    assert "should have a bias" in layout_hint(["b1_1.bias", "b2_2.bias"], [])
    assert "bias=False" in layout_hint([], ["conv1.bias"])
    assert "downsample" in layout_hint(["downsample.0.weight"], [])
    assert "name the submodules" in layout_hint(["b1.weight"], ["p1.weight"])
