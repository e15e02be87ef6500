"""Hidden tests of lab 6: attacks, finite differences and the adversarial training step.

The contract of every attack ``attack(model, x, y, eps, ...)``: a new detached tensor of x's shape,
dtype and device, inside the eps-ball around x and inside [0, 1], computed with the model in eval
mode; x, y, the model's parameters, buffers, ``requires_grad`` flags and train/eval mode left as they
were. Oracles: the closed-form input gradient of softmax regression, ``W^T (softmax(z) - onehot(y))``,
which needs no autograd, and a float64 autograd reference of PGD/MIM on smooth models (tanh), whose
gradients never vanish by accident, so results can be compared exactly.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, MutableMapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from autograder.battery.compare import assert_close, group, require
from autograder.battery.devices import run_on_simulated_gpu
from autograder.battery.inputs import images, non_contiguous
from autograder.battery.models import batchnorm_dropout_cnn, mode_sensitive_cnn
from autograder.battery.snapshot import Snapshot
from autograder.battery.student import Student, call, case
from dlcourse.checks.attacks import check_attack_contract


def softmax_regression(n_features: int, n_classes: int, seed: int, device, dead_features: int = 0) -> nn.Sequential:
    """Flatten -> Linear, float64; the last ``dead_features`` inputs have zero weight (zero gradient)."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(n_features, n_classes)).double().to(device)
    if dead_features:
        with torch.no_grad():
            model[1].weight[:, -dead_features:] = 0
    return model


def closed_form_fgsm(model: nn.Sequential, x: torch.Tensor, labels: torch.Tensor, eps: float, targeted: bool):
    """FGSM on softmax regression from grad_x CE = W^T (softmax(W x + b) - onehot(y)), per example."""
    linear = model[1]
    with torch.no_grad():
        probabilities = torch.softmax(linear(x.flatten(1)), dim=1)
        grad = (probabilities - F.one_hot(labels, linear.out_features).to(x.dtype)) @ linear.weight
    step = -eps if targeted else eps
    return (x + step * grad.sign().view_as(x)).clamp(0, 1)


def input_gradient(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, transform=None) -> torch.Tensor:
    """grad_x of the summed cross entropy (the sign is the same for the mean), on a copy of x."""
    x_var = x.detach().clone().requires_grad_(True)
    logits = model(x_var)
    if transform is not None:
        logits = transform(logits)
    (grad,) = torch.autograd.grad(F.cross_entropy(logits, labels, reduction="sum"), x_var)
    return grad


def reference_pgd(model, x, labels, eps, alpha, steps, start, targeted=False, transform=None) -> torch.Tensor:
    """``steps`` signed steps from ``start``, each projected onto the eps-ball and [0, 1] at once."""
    lower, upper = (x - eps).clamp(min=0), (x + eps).clamp(max=1)
    x_adv = start.detach().clone()
    for _ in range(steps):
        grad = input_gradient(model, x_adv, labels, transform)
        x_adv = x_adv + (-alpha if targeted else alpha) * grad.sign()
        x_adv = torch.maximum(torch.minimum(x_adv, upper), lower)
    return x_adv.detach()


def in_eval_mode(model: nn.Module) -> nn.Module:
    """A copy of the model in eval mode, for oracles (the student's model is never touched)."""
    return copy.deepcopy(model).eval()


def attack_with_contract(label: str, attack: Callable, model: nn.Module, x, y, eps, **kwargs) -> torch.Tensor:
    """Run ``attack`` under its whole contract and return its result (from a model in eval mode).

    The visible contract check (new detached tensor of x's form in the eps-ball and [0, 1], eval mode
    while attacking, x and the model unchanged; once from each mode) plus: x and y not modified in
    place even temporarily (version counters), and nothing made on the CPU for inputs on a GPU.
    """
    import contextlib
    import io

    snapshot = Snapshot(x=x, y=y)
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            result = check_attack_contract(label, attack, model, x, y, eps, **kwargs)
        except AssertionError:
            raise
        except Exception as error:  # noqa: BLE001 - the answer's own error, named with its case
            raise AssertionError(f"{label} raised {type(error).__name__}: {error}") from None
    snapshot.assert_unchanged(label)
    if x.device.type == "cpu":
        _, violations = run_on_simulated_gpu(attack, copy.deepcopy(model), x.detach().clone(), y.clone(), eps, **kwargs)
        require(not violations, f"{label}, inputs on a GPU", violations[0] if violations else "")
    return result


def check_fgsm(namespace: MutableMapping[str, Any]) -> None:
    """fgsm(model, x, y, eps, targeted=False) = clip(x +- eps * sign(grad_x CE(model(x), y)), 0, 1)."""
    student = Student(namespace)
    fgsm = student.function("fgsm")
    device = student.device

    with group("fgsm against the closed form of softmax regression: shapes, batch 1, odd sizes, targets, seeds"):
        for seed, (shape, classes) in enumerate([((1, 16), 3), ((7, 16), 5), ((5, 1, 4, 4), 4), ((3, 2, 3, 5), 7)]):
            n_features = int(torch.tensor(shape[1:]).prod())
            model = softmax_regression(n_features, classes, seed=seed, device=device, dead_features=2)
            x = images(shape, seed=10 + seed, device=device)
            with torch.no_grad():
                predictions = model(x).argmax(dim=1)
            y = (predictions + torch.arange(shape[0], device=device) % 2) % classes  # some labels disagree
            for targeted in (False, True):
                eps = 0.07 + 0.02 * seed
                label = case("fgsm", "softmax regression", x, y, eps=eps, targeted=targeted)
                result = attack_with_contract(label, fgsm, model, x, y, eps, targeted=targeted)
                mistakes = {
                    "an untargeted attack adds eps * sign(grad) (it climbs the loss); a targeted one subtracts it": (
                        closed_form_fgsm(model, x, y, eps, not targeted)
                    ),
                    "the gradient's sign must be taken: every pixel moves by exactly eps (or stays where the "
                    "gradient is zero)": (x + (-eps if targeted else eps) * input_gradient(model, x, y) / len(x)).clamp(
                        0, 1
                    ),
                }
                if not targeted:
                    mistakes["the attack used the model's predictions instead of the labels y it was given"] = (
                        closed_form_fgsm(model, x, predictions, eps, False)
                    )
                assert_close(label, result, closed_form_fgsm(model, x, y, eps, targeted), atol=1e-12, mistakes=mistakes)

    with group("fgsm: any layout of x, x requiring grad, eps = 0, integer eps, default and positional targeted"):
        model = softmax_regression(16, 5, seed=5, device=device, dead_features=3)
        base = images((6, 16), seed=20, device=device)
        y = torch.arange(6, device=device) % 5
        expected = closed_form_fgsm(model, base, y, 0.1, False)
        variants = {
            "non-contiguous x": non_contiguous(base),
            "x that requires grad": base.clone().requires_grad_(True),
            "x transposed from (16, 6)": base.t().contiguous().t(),
        }
        for name, x in variants.items():
            label = case("fgsm", "softmax regression", x, y, eps=0.1) + f" ({name})"
            assert_close(label, attack_with_contract(label, fgsm, model, x, y, 0.1), expected, atol=1e-12)
        label = case("fgsm", "softmax regression", base, y, 0.1, True) + " (targeted given by position)"
        result = call(label, fgsm, model, base, y, 0.1, True)
        assert_close(label, result, closed_form_fgsm(model, base, y, 0.1, True), atol=1e-12)
        for eps in (0.0, 0):
            label = case("fgsm", "softmax regression", base, y, eps=eps)
            assert_close(label, attack_with_contract(label, fgsm, model, base, y, eps), base, atol=0)
        label = case("fgsm", "softmax regression", base, y, eps=1)
        assert_close(
            label,
            attack_with_contract(label, fgsm, model, base, y, 1),
            closed_form_fgsm(model, base, y, 1, False),
            atol=0,
        )

    with group("fgsm in eval mode, on models that differ in train and eval mode (float64 and float32)"):
        for training in (True, False):
            model = mode_sensitive_cnn(1, 5, 4, device=device, seed=30).train(training)
            x = images((9, 1, 5, 5), seed=31, device=device)
            y = torch.arange(9, device=device) % 4
            label = case("fgsm", model, x, y, eps=0.05)
            result = attack_with_contract(label, fgsm, model, x, y, 0.05)
            expected = reference_pgd(in_eval_mode(model), x, y, 0.05, 0.05, 1, x)
            in_train_mode = reference_pgd(copy.deepcopy(model).train(), x, y, 0.05, 0.05, 1, x)
            double_softmax = reference_pgd(in_eval_mode(model), x, y, 0.05, 0.05, 1, x, transform=F.softmax)
            assert_close(label, result, expected, atol=1e-12, mistakes={
                "the gradient was taken in train mode; call model.eval() before the forward pass": in_train_mode,
                "cross_entropy takes logits: the model returns logits, do not apply softmax first": double_softmax,
            })  # fmt: skip
        model = batchnorm_dropout_cnn(1, 6, 10, device=device, seed=32)
        x = images((24, 1, 6, 6), seed=33, device=device, dtype=torch.float32)
        y = torch.arange(24, device=device) % 10
        label = case("fgsm", model, x, y, eps=0.1)
        result = attack_with_contract(label, fgsm, model, x, y, 0.1)
        expected = reference_pgd(in_eval_mode(model), x, y, 0.1, 0.1, 1, x)
        # float32 gradients summed in another order may flip the sign of a few near-zero entries
        mismatch = ((result - expected).abs() > 1e-5).double().mean().item()
        require(mismatch < 0.01, label, f"{100 * mismatch:.1f}% of the pixels differ from the eval-mode reference")
