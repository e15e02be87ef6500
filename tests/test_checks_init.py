"""Visible statistical checks of initialisers (dlcourse.checks.init) and the lab-2 mistake tables."""

import pytest
import torch
from torch import nn

from autograder.battery.initialisation import fans_of, kaiming_mistakes, xavier_mistakes
from dlcourse import checks
from dlcourse.checks import init


@pytest.mark.parametrize("seed", range(5))
def test_check_init_passes_torch_initialisers_for_any_seed(seed):
    shape, gain = (64, 32, 3, 3), nn.init.calculate_gain("relu")
    std = gain / (32 * 9) ** 0.5
    checks.check_init("kaiming_normal_", nn.init.kaiming_normal_, shape, std, "normal", seed=seed, nonlinearity="relu")
    checks.check_init(
        "kaiming_uniform_", nn.init.kaiming_uniform_, shape, std, "uniform", seed=seed, nonlinearity="relu"
    )
    std = (2 / (300 + 500)) ** 0.5
    checks.check_init("xavier_normal_", nn.init.xavier_normal_, (300, 500), std, "normal", seed=seed)
    checks.check_init("xavier_uniform_", nn.init.xavier_uniform_, (300, 500), std, "uniform", seed=seed)
    checks.check_init("float64", nn.init.xavier_normal_, (300, 500), std, "normal", dtype=torch.float64, seed=seed)


def test_check_init_names_the_mistake():
    shape = (64, 32, 3, 3)
    mistakes = kaiming_mistakes(shape, 2**0.5, "fan_in", "normal")
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


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_check_init_refuses_a_data_swap(dtype):
    def data_swap(tensor):
        tensor.data = torch.randn(tensor.shape, dtype=dtype) * 0.1
        return tensor

    with pytest.raises(AssertionError, match="own memory"):
        checks.check_init("swap", data_swap, (300, 400), 0.1, "normal", dtype=dtype)


def test_torch_gain_and_fans_lends_and_restores():
    def mine(*args):
        raise AssertionError("the notebook's own helper must not be called while torch's is lent")

    namespace = {"calculate_gain": mine}
    with init.torch_gain_and_fans(namespace):
        assert namespace["calculate_gain"] is nn.init.calculate_gain
        assert namespace["fan_in_and_fan_out"](torch.empty(4, 3, 5)) == (15, 20)
    assert namespace == {"calculate_gain": mine}


def test_answers_are_not_importable_from_the_visible_checks():
    for name in ("fans_of", "kaiming_mistakes", "xavier_mistakes", "different_from"):
        assert not hasattr(init, name) and not hasattr(checks, name)


def test_mistake_tables_leave_out_mistakes_that_change_nothing():
    # with gain 1 a missing gain is no mistake; on a linear weight the receptive field is 1
    assert fans_of((8, 4, 3, 3)) == (36, 72)
    assert not any("gain is missing" in d for d in xavier_mistakes((30, 20), 1.0, "normal"))
    assert not any("receptive field" in d for d in kaiming_mistakes((30, 20), 2.0, "fan_in", "normal"))
    assert any("receptive field" in d for d in kaiming_mistakes((30, 20, 3), 2.0, "fan_in", "uniform"))


KAIMING_RELU_STD = (2 / 512) ** 0.5  # a (256, 512) weight: fan_in 512, fan_out 256


@pytest.mark.parametrize(
    ("distribution", "mistaken_init", "diagnosis"),
    [
        ("normal", lambda w: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"), "the other fan"),
        ("normal", lambda w: nn.init.kaiming_normal_(w, nonlinearity="tanh"), "gain of tanh"),
        ("normal", lambda w: nn.init.normal_(w, 0.0, 2 / 512), "variance"),
        ("uniform", lambda w: nn.init.uniform_(w, -KAIMING_RELU_STD, KAIMING_RELU_STD), "bound b equal to the std"),
        ("uniform", lambda w: nn.init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu"), "the other fan"),
    ],
)
def test_common_kaiming_mistakes_name_the_mistake(distribution, mistaken_init, diagnosis):
    mistakes = init.common_kaiming_mistakes(512, 256, "relu", "fan_in", distribution)
    pattern = diagnosis.replace("the std", "the standard deviation")
    with pytest.raises(AssertionError, match=pattern):
        checks.check_init("W", mistaken_init, (256, 512), KAIMING_RELU_STD, distribution, mistakes)


@pytest.mark.parametrize("seed", range(3))
def test_common_kaiming_mistakes_leave_a_correct_init_alone(seed):
    for mode, fan in (("fan_in", 512), ("fan_out", 256)):
        for nonlinearity in ("relu", "tanh"):
            std = nn.init.calculate_gain(nonlinearity) / fan**0.5
            for distribution, fill in (("normal", nn.init.kaiming_normal_), ("uniform", nn.init.kaiming_uniform_)):
                mistakes = init.common_kaiming_mistakes(512, 256, nonlinearity, mode, distribution)
                assert all(abs(value / std - 1) > 0.05 for value in mistakes.values())
                checks.check_init(
                    "W", fill, (256, 512), std, distribution, mistakes, seed=seed, mode=mode, nonlinearity=nonlinearity
                )


def test_common_kaiming_mistakes_of_tanh_use_relus_gain():
    mistakes = init.common_kaiming_mistakes(512, 256, "tanh", "fan_out", "normal")
    assert any("gain of relu" in diagnosis for diagnosis in mistakes)
    assert any("divides by the fan-out" in diagnosis for diagnosis in mistakes)
