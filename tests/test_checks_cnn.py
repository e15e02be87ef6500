"""Visible checks of lab 4 (dlcourse.checks.cnn): their recorded values are PyTorch's, correct answers pass and
mistakes fail, without the package holding an implementation of the lab's answers."""

import contextlib
import io

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autograder.battery.cnn import (
    ReferenceBasicBlock,
    ReferenceInception,
    ReferenceResNet18,
    conv_oracle,
    measured_receptive_field,
)
from dlcourse.checks import cnn
from tests.test_battery_cnn import (
    Inception,
    InceptionModules,
    Residual,
    ResidualFunctional,
    conv_output_size,
    inception_with,
    receptive_field,
    residual_with,
    resnet18,
)


def test_the_recorded_output_sizes_are_those_of_nn_conv2d():
    for case, expected in cnn.CONV_CASES:
        assert conv_oracle(*case) == expected, case


def test_the_recorded_receptive_fields_are_measured_with_autograd():
    for layers, expected in cnn.RECEPTIVE_FIELD_CASES:
        assert measured_receptive_field(layers) == expected, layers


def recorded(values) -> torch.Tensor:
    return torch.tensor([value for part in values for value in part], dtype=torch.float64)


@torch.no_grad()
def test_the_recorded_block_values_are_the_references():
    """Recomputed with the hidden tests' reference blocks (torchvision's architecture), to 1e-10."""
    for args, branches in cnn.INCEPTION_CASES:
        block = cnn.with_fixed_state(ReferenceInception(*args), cnn.inception_layout(*args))
        sums = cnn.channel_sums(block(cnn.fixed_input((2, args[0], 6, 5))))
        torch.testing.assert_close(sums, recorded(branches), atol=1e-10, rtol=1e-10)
    for args, training, running_mean, evaluation in cnn.RESIDUAL_CASES:
        layout = cnn.residual_layout(*args)
        x = cnn.fixed_input((3, args[0], 5, 5))
        block = cnn.with_fixed_state(ReferenceBasicBlock(*args), layout).train()
        torch.testing.assert_close(cnn.channel_sums(block(x)), recorded([training]), atol=1e-10, rtol=1e-10)
        torch.testing.assert_close(block.bn1.running_mean, recorded([running_mean]), atol=1e-10, rtol=1e-10)
        block = cnn.with_fixed_state(block, layout).eval()
        torch.testing.assert_close(cnn.channel_sums(block(x)), recorded([evaluation]), atol=1e-10, rtol=1e-10)
    model = cnn.with_fixed_state(ReferenceResNet18(5, 1), cnn.resnet18_layout(5, 1)).eval()
    logits = model(cnn.fixed_input((2, 1, 40, 40)))
    torch.testing.assert_close(logits.flatten(), recorded(cnn.RESNET18_LOGITS), atol=1e-9, rtol=1e-10)


def test_the_fixed_values_do_not_depend_on_torch_s_random_generator():
    torch.manual_seed(123)
    first = cnn.fixed_state(cnn.residual_layout(2, 4, 2))
    torch.manual_seed(456)
    second = cnn.fixed_state(cnn.residual_layout(2, 4, 2))
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert cnn.pool_values((3,), seed=1).tolist() == cnn.pool_values((3,), seed=1).tolist()


def quietly(check, *args):
    with contextlib.redirect_stdout(io.StringIO()):
        check(*args)


@pytest.mark.parametrize(
    "check, answer",
    [
        (cnn.check_conv_output_size, conv_output_size),
        (cnn.check_receptive_field, receptive_field),
        (cnn.check_inception_block, Inception),
        (cnn.check_inception_block, InceptionModules),
        (cnn.check_residual_block, Residual),
        (cnn.check_residual_block, ResidualFunctional),
        (cnn.check_resnet18_layout, resnet18),
    ],
)
def test_correct_answers_pass(check, answer):
    quietly(check, answer)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (inception_with(pool=nn.AvgPool2d(3, stride=1, padding=1)), "differs from the expected one in branch 4 \\("),
        (inception_with(inner=False), "in branch 2 \\(1x1, 3x3\\), branch 3 \\(1x1, 5x5\\)$"),
        (inception_with(order=(0, 2, 1, 3)), "branch 2 .*branch 3"),
    ],
)
def test_inception_mistakes_name_the_branch(wrong, message):
    with pytest.raises(AssertionError, match=message):
        quietly(cnn.check_inception_block, wrong)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (residual_with(relu_before_sum=True), "output in training mode: result differs"),
        (residual_with(stride_on=2), "output in training mode: result differs"),
        (residual_with(projection="always"), "the projection shortcut \\(downsample\\) and when it does not"),
    ],
)
def test_residual_mistakes_fail(wrong, message):
    with pytest.raises(AssertionError, match=message):
        quietly(cnn.check_residual_block, wrong)


def test_a_residual_that_ignores_its_batch_norm_in_evaluation_mode_fails():
    class AlwaysBatchStatistics(Residual):
        def forward(self, x):
            def bn(layer, t):
                return F.batch_norm(t, None, None, layer.weight, layer.bias, training=True, eps=layer.eps)

            out = F.relu(bn(self.bn1, self.conv1(x)))
            out = bn(self.bn2, self.conv2(out))
            shortcut = x if self.downsample is None else bn(self.downsample[1], self.downsample[0](x))
            return F.relu(out + shortcut)

    with pytest.raises(AssertionError, match="running_mean after the batch|evaluation mode: result differs"):
        quietly(cnn.check_residual_block, AlwaysBatchStatistics)


def test_resnet18_values_catch_a_missing_max_pool():
    def without_max_pool(num_classes=10, in_channels=3):
        model = resnet18(num_classes, in_channels)
        model.maxpool = nn.Identity()
        return model

    with pytest.raises(AssertionError, match="logits: result differs"):
        quietly(cnn.check_resnet18_layout, without_max_pool)
