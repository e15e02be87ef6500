"""Visible checks of batch normalization (dlcourse.checks.batchnorm)."""

import pytest
import torch
from torch import nn

from dlcourse import checks


@pytest.mark.parametrize("shape", [(16, 4), (6, 3, 5, 5)])
@pytest.mark.parametrize("training", [True, False])
def test_check_batch_norm_accepts_torch(shape, training):
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64)
    vectors = [torch.rand(shape[1], dtype=torch.float64) + 0.5 for _ in range(4)]
    checks.check_batch_norm("torch", torch.nn.functional.batch_norm, x, *vectors, training=training)


def batch_norm_normalising_with(var_of):
    """A batch_norm without running statistics whose variance is ``var_of(x, dims)``."""

    def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
        dims = [0] + list(range(2, x.dim()))
        mean = x.mean(dim=dims, keepdim=True)
        return (x - mean) / torch.sqrt(var_of(x, dims) + eps)

    return batch_norm


def test_check_batch_norm_names_the_unbiased_variance_and_detached_statistics():
    x = torch.randn(8, 3, dtype=torch.float64)
    unbiased = batch_norm_normalising_with(lambda x, dims: x.var(dim=dims, keepdim=True))
    with pytest.raises(AssertionError, match="unbiased variance"):
        checks.check_batch_norm("unbiased", unbiased, x, training=True)
    detached = batch_norm_normalising_with(lambda x, dims: x.detach().var(dim=dims, keepdim=True, unbiased=False))
    with pytest.raises(AssertionError, match="gradient"):
        checks.check_batch_norm("detached variance", detached, x, training=True)


def test_check_batch_norm_module_accepts_torch_and_rejects_a_keras_momentum():
    torch.manual_seed(0)
    checks.check_batch_norm_module("torch 1d", nn.BatchNorm1d(3).double(), nn.BatchNorm1d(3).double(), (8, 3))
    checks.check_batch_norm_module(
        "torch 2d", nn.BatchNorm2d(3, momentum=None), nn.BatchNorm2d(3, momentum=None), (4, 3, 2, 2)
    )
    with pytest.raises(AssertionError, match="running_mean: momentum=0.99 is Keras' convention"):
        checks.check_batch_norm_module("keras", nn.BatchNorm1d(3, momentum=0.99), nn.BatchNorm1d(3), (8, 3))
    with pytest.raises(AssertionError, match="state_dict layout"):
        checks.check_batch_norm_module(
            "untracked", nn.BatchNorm1d(3, track_running_stats=False), nn.BatchNorm1d(3), (8, 3)
        )
