"""Visible statistical checks of initialisers (dlcourse.checks.init)."""

import pytest
import torch
from torch import nn

from dlcourse import checks
from dlcourse.checks import init


@pytest.mark.parametrize("seed", range(5))
def test_check_init_passes_torch_initialisers_for_any_seed(seed):
    shape, gain = (64, 32, 3, 3), nn.init.calculate_gain("relu")
    std = gain / init.fans_of(shape)[0] ** 0.5
    checks.check_init("kaiming_normal_", nn.init.kaiming_normal_, shape, std, "normal", seed=seed, nonlinearity="relu")
    checks.check_init(
        "kaiming_uniform_", nn.init.kaiming_uniform_, shape, std, "uniform", seed=seed, nonlinearity="relu"
    )
    std = (2 / sum(init.fans_of((300, 500)))) ** 0.5
    checks.check_init("xavier_normal_", nn.init.xavier_normal_, (300, 500), std, "normal", seed=seed)
    checks.check_init("xavier_uniform_", nn.init.xavier_uniform_, (300, 500), std, "uniform", seed=seed)


def test_check_init_names_the_mistake():
    shape = (64, 32, 3, 3)
    mistakes = init.kaiming_mistakes(shape, 2**0.5, "fan_in", "normal")
    std = (2 / (32 * 9)) ** 0.5

    def fan_out_used(tensor):
        return nn.init.kaiming_normal_(tensor, mode="fan_out", nonlinearity="relu")

    with pytest.raises(AssertionError, match="asks for fan_in, but the other fan"):
        checks.check_init("fan_out", fan_out_used, shape, std, "normal", mistakes)

    def uniform_with_the_right_std(tensor):
        return nn.init.kaiming_uniform_(tensor, nonlinearity="relu")

    with pytest.raises(AssertionError, match="normal distribution"):
        checks.check_init("uniform", uniform_with_the_right_std, shape, std, "normal", mistakes)

    def new_tensor(tensor):
        return torch.randn(tensor.shape) * std

    with pytest.raises(AssertionError, match="in place"):
        checks.check_init("copy", new_tensor, shape, std, "normal", mistakes)


def test_mistake_tables_leave_out_mistakes_that_change_nothing():
    # with gain 1 a missing gain is no mistake; on a linear weight the receptive field is 1
    assert not any("gain is missing" in d for d in init.xavier_mistakes((30, 20), 1.0, "normal"))
    assert not any("receptive field" in d for d in init.kaiming_mistakes((30, 20), 2.0, "fan_in", "normal"))
    assert any("receptive field" in d for d in init.kaiming_mistakes((30, 20, 3), 2.0, "fan_in", "uniform"))
