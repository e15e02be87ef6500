"""Visible checks of the attacks' contract (dlcourse.checks.attacks)."""

import pytest
import torch
import torch.nn.functional as F
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


# --- the adversarial training step (dlcourse.checks.check_training_step_contract)
# The step functions below find this pgd among their globals, as a student's step finds the lab's; the check
# lends its own in its place while the step runs, and the step that attacks inline runs this one.


def pgd(model, x, y, eps, alpha, steps, random_start=True, targeted=False):
    was_training = model.training
    model.eval()
    x = x.detach()
    x_adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1) if random_start else x.clone()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x_adv), y), x_adv)
        x_adv = x_adv.detach() + (-alpha if targeted else alpha) * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    model.train(was_training)
    return x_adv


def training_step(
    model,
    optimizer,
    x,
    y,
    eps,
    alpha,
    steps,
    use_predicted_labels=True,
    *,
    attack_labels="predicted",
    loss_terms="both",
    zero_grad=True,
    train_mode=True,
    optimizer_steps=1,
    returns="float",
):
    """A correct step by default; each keyword makes one realistic mistake."""
    model.eval()
    with torch.no_grad():
        predicted = model(x).argmax(dim=1)
    labels = {"predicted": predicted, "y": y, "none": None}[attack_labels]
    x_adv = x if attack_labels == "none" else pgd(model, x, labels, eps, alpha, steps, random_start=True)
    model.train(train_mode)
    if zero_grad:
        optimizer.zero_grad()
    clean, adversarial = F.cross_entropy(model(x), y), F.cross_entropy(model(x_adv), y)
    loss = {"both": clean + adversarial, "clean": clean, "adversarial": adversarial, "half": (clean + adversarial) / 2}
    loss = loss[loss_terms]
    loss.backward()
    for _ in range(optimizer_steps):
        optimizer.step()
    return {"float": loss.item(), "tensor": loss, "clean loss": clean.item()}[returns]


def concatenated_step(model, optimizer, x, y, eps, alpha, steps, use_predicted_labels=True):
    """Another correct style: the sum of the two batch means from one forward pass on the concatenated batch."""
    model.eval()
    with torch.inference_mode():
        target = model(x).max(dim=1).indices
    target = target.clone()  # an inference tensor cannot enter autograd
    x_adv = pgd(model, x, target, eps=eps, alpha=alpha, steps=steps)
    model.train()
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(torch.cat([x, x_adv])), torch.cat([y, y]), reduction="sum") / len(x)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


@pytest.mark.parametrize("step", [training_step, concatenated_step])
def test_check_training_step_contract_accepts_correct_steps(step, capsys):
    checks.check_training_step_contract(step)
    assert "OK" in capsys.readouterr().out


@pytest.mark.parametrize(
    "mistake, message",
    [
        ({"loss_terms": "clean"}, "clean loss alone"),
        ({"loss_terms": "adversarial"}, "adversarial loss alone"),
        ({"loss_terms": "half"}, "half the expected"),
        ({"attack_labels": "none"}, "saw the clean inputs"),
        ({"attack_labels": "y"}, "crafted against y"),
        ({"zero_grad": False}, "zero them first"),
        ({"train_mode": False}, "not left in train mode"),
        ({"optimizer_steps": 2}, "ran 2 times"),
        ({"optimizer_steps": 0}, "ran 0 times"),
        ({"returns": "tensor"}, "Python float"),
        ({"returns": "clean loss"}, "returned loss"),
    ],
)
def test_check_training_step_contract_rejects_broken_steps(mistake, message):
    def step(*args, **kwargs):
        return training_step(*args, **kwargs, **mistake)

    with pytest.raises(AssertionError, match=message):
        checks.check_training_step_contract(step)


def test_check_training_step_contract_rejects_an_attack_on_another_model():
    other = nn.Sequential(nn.Flatten(), nn.Linear(6, 2))

    def step(model, optimizer, x, y, eps, alpha, steps, use_predicted_labels=True):
        with torch.no_grad():
            labels = model.eval()(x).argmax(dim=1)
        x_adv = pgd(other, x, labels, eps, alpha, steps)
        model.train()
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y) + F.cross_entropy(model(x_adv), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    with pytest.raises(AssertionError, match="another model"):
        checks.check_training_step_contract(step)


def inline_step(model, optimizer, x, y, eps, alpha, steps, use_predicted_labels=True):
    """A correct step that writes its attack out instead of calling pgd."""
    model.eval()
    with torch.no_grad():
        labels = model(x).argmax(dim=1)
    x_adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x_adv), labels), x_adv)
        x_adv = torch.min(torch.max(x_adv + alpha * grad.sign(), x - eps), x + eps).clamp(0, 1)
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y) + F.cross_entropy(model(x_adv.detach()), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def test_check_training_step_contract_accepts_an_inline_attack():
    checks.check_training_step_contract(inline_step)


def test_check_training_step_contract_lends_its_own_pgd_and_gives_the_lab_s_back(monkeypatch):
    def broken_pgd(model, x, y, eps, alpha, steps, random_start=True, targeted=False):
        return x + 2 * eps  # a mistake of part 3, counted there only

    monkeypatch.setitem(globals(), "pgd", broken_pgd)
    checks.check_training_step_contract(training_step)
    assert globals()["pgd"] is broken_pgd


def test_check_training_step_contract_rejects_two_attacks():
    def step(model, optimizer, x, y, eps, alpha, steps, use_predicted_labels=True):
        pgd(model, x, y, eps, alpha, steps)
        return training_step(model, optimizer, x, y, eps, alpha, steps)

    with pytest.raises(AssertionError, match="called 2 times"):
        checks.check_training_step_contract(step)


def test_the_recorded_step_values_are_autograd_s():
    """TOWARDS_CLASS_1 is the sign of the input gradient, and the recorded losses and gradients are autograd's."""
    from dlcourse.checks import attacks

    model = attacks.two_class_linear_model().double()
    x = attacks.step_inputs().double()
    with torch.no_grad():
        predictions = model(x).argmax(dim=1)
    y = predictions.clone()
    y[[1, 3]] = 1 - y[[1, 3]]
    towards = torch.tensor(attacks.TOWARDS_CLASS_1, dtype=torch.float64)
    x_var = x.clone().requires_grad_(True)
    (input_gradient,) = torch.autograd.grad(F.cross_entropy(model(x_var), predictions), x_var)
    assert torch.equal(input_gradient.flatten(1).sign(), (1 - 2 * predictions[:, None]) * towards)

    def loss_and_gradient(inputs):
        loss = F.cross_entropy(model(inputs), y)
        return loss.item(), torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(model.parameters()))])

    def moved(labels):
        return (x.flatten(1) + 0.1 * towards * (1 - 2 * labels[:, None])).clamp(0, 1)

    for inputs, loss, gradient in [
        (x, attacks.CLEAN_LOSS, attacks.CLEAN_GRADIENT),
        (moved(predictions), attacks.ADVERSARIAL_LOSS, attacks.ADVERSARIAL_GRADIENT),
        (moved(y), None, attacks.AGAINST_Y_GRADIENT),
    ]:
        got_loss, got_gradient = loss_and_gradient(inputs)
        assert loss is None or abs(got_loss - loss) < 1e-12
        torch.testing.assert_close(got_gradient, torch.tensor(gradient, dtype=torch.float64), atol=1e-9, rtol=0)
