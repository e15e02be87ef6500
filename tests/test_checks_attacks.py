"""Visible checks of the attacks' contract (dlcourse.checks.attacks)."""

import pytest
import torch
from torch import nn

from dlcourse import checks


def correct_attack(model, x, y, eps):
    was_training = model.training
    model.eval()
    x_adv = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(model(x_adv), y), x_adv)
    model.train(was_training)
    return (x + eps * grad.sign()).clamp(0, 1).detach()


def attack_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 3))


def test_check_attack_contract_accepts_a_correct_attack():
    x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1])
    result = checks.check_attack_contract("attack", correct_attack, attack_model(), x, y, eps=0.1)
    assert result.shape == x.shape


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda m, x, y, eps: correct_attack(m, x, y, eps).requires_grad_(True), "detach"),
        (lambda m, x, y, eps: x.add_(0.0), "new tensor"),
        (lambda m, x, y, eps: (x + 2 * eps).clamp(0, 1), "eps-ball"),
        (lambda m, x, y, eps: x + eps, "outside \\[0, 1\\]"),
        (lambda m, x, y, eps: (m(x), x.clone())[1], "training mode during the attack"),
        (lambda m, x, y, eps: (m.eval(), correct_attack(m, x, y, eps))[1], "restore"),
        (
            lambda m, x, y, eps: x.float().clone() if x.dtype != torch.float32 else x.double().clamp(0, 1),
            "but the result is torch.float64",
        ),
        (
            lambda m, x, y, eps: x.clone().requires_grad_(True).detach() if x.requires_grad_(True) is not None else x,
            "requires_grad",
        ),
    ],
)
def test_check_attack_contract_rejects_broken_attacks(wrong, message):
    x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1])
    with pytest.raises(AssertionError, match=message):
        checks.check_attack_contract("attack", wrong, attack_model(), x, y, eps=0.1)
