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
from autograder.battery.inputs import images, layouts, non_contiguous
from autograder.battery.models import batchnorm_dropout_cnn, mode_sensitive_cnn
from autograder.battery.snapshot import Snapshot
from autograder.battery.student import Student, call, case, describe
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


def per_example_l1(grad: torch.Tensor) -> torch.Tensor:
    """grad divided by the L1 norm of each example over all its coordinates (zero stays zero)."""
    return grad / grad.abs().sum(dim=tuple(range(1, grad.dim())), keepdim=True).clamp_min(1e-12)


def reference_pgd(
    model, x, labels, eps, alpha, steps, start, targeted=False, transform=None, decay=None, normalise=per_example_l1
) -> torch.Tensor:
    """``steps`` signed steps from ``start``, each projected onto the eps-ball and [0, 1] at once.

    With a ``decay`` it is MIM: the step follows the sign of g = decay * g + normalise(grad), g0 = 0.
    """
    lower, upper = (x - eps).clamp(min=0), (x + eps).clamp(max=1)
    x_adv, velocity = start.detach().clone(), torch.zeros_like(x)
    for _ in range(steps):
        grad = input_gradient(model, x_adv, labels, transform)
        if decay is not None:
            velocity = decay * velocity + normalise(grad)
            grad = velocity
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
    snapshot.assert_unchanged(label, input_grads=not x.requires_grad)  # a backward pass through x may fill .grad
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
            assert_close(
                label,
                result,
                expected,
                atol=1e-12,
                mistakes={
                    "the gradient was taken in train mode; call model.eval() before the forward pass": in_train_mode,
                    "cross_entropy takes logits: the model returns logits, do not apply softmax first": double_softmax,
                },
            )
        model = batchnorm_dropout_cnn(1, 6, 10, device=device, seed=32)
        x = images((24, 1, 6, 6), seed=33, device=device, dtype=torch.float32)
        y = torch.arange(24, device=device) % 10
        label = case("fgsm", model, x, y, eps=0.1)
        result = attack_with_contract(label, fgsm, model, x, y, 0.1)
        expected = reference_pgd(in_eval_mode(model), x, y, 0.1, 0.1, 1, x)
        # float32 gradients summed in another order may flip the sign of a few near-zero entries
        mismatch = ((result - expected).abs() > 1e-5).double().mean().item()
        require(mismatch < 0.01, label, f"{100 * mismatch:.1f}% of the pixels differ from the eval-mode reference")


def iterative_mistakes(variant: Callable[..., torch.Tensor], steps: int, eps: float, targeted: bool) -> dict:
    """Diagnoses shared by PGD and MIM: ``variant(**change)`` is the reference with one argument changed."""
    return {
        f"you took {steps - 1} steps instead of steps={steps}": variant(steps=max(steps - 1, 0)),
        f"you took {steps + 1} steps instead of steps={steps}": variant(steps=steps + 1),
        "each step must have size alpha, not eps": variant(alpha=eps),
        "the iterate leaves the eps-ball around the original x: project onto [x - eps, x + eps] after every step": (
            variant(eps=float("inf"))
        ),
        "the step goes the wrong way: untargeted attacks add alpha * sign(...), targeted ones subtract it": variant(
            targeted=not targeted
        ),
    }


def reference_with(model, x, y, **arguments) -> Callable[..., torch.Tensor]:
    """``variant(**change)``: the reference attack from x with ``arguments``, one or more of them changed."""

    def variant(**change):
        return reference_pgd(model, x, y, start=x, **{**arguments, **change})

    return variant


def check_random_start(name: str, attack: Callable, device: torch.device, **kwargs) -> None:
    """With random_start=True the attack starts at x + U(-eps, eps), clamped to [0, 1], and steps on from there.

    One negligible step (alpha = 1e-12) from grey images (all 0.5, far from 0 and 1) reveals the start:
    delta / eps is 4096 draws from U(-1, 1), with mean 0 +- 0.009 (standard error), a share 0.5 +- 0.008
    within (-0.5, 0.5) and about 0.5 % beyond 0.99 in size. The bounds sit about five standard errors out.
    """
    model = mode_sensitive_cnn(1, 8, 10, device=device, seed=40).eval()
    grey = torch.full((64, 1, 8, 8), 0.5, dtype=torch.float64, device=device)
    labels = torch.arange(64, device=device) % 10
    label = case(name, model, grey, labels, eps=0.1, alpha=1e-12, steps=1, random_start=True, **kwargs)
    delta = (call(label, attack, model, grey, labels, 0.1, 1e-12, 1, random_start=True, **kwargs) - grey) / 0.1
    require(delta.abs().max().item() > 0.5, label, "with random_start=True the attack must start at a random point")
    require(
        abs(delta.mean().item()) < 0.05,
        label,
        f"the random start has mean {delta.mean().item():.3f} * eps; draw u uniformly from [-eps, eps], not [0, eps]",
    )
    inner, at_edge = (delta.abs() < 0.5).double().mean().item(), (delta.abs() > 0.99).double().mean().item()
    require(
        abs(inner - 0.5) < 0.04 and at_edge < 0.03,
        label,
        f"{100 * inner:.0f}% of the start lies within eps/2 of x and {100 * at_edge:.0f}% at the edge of the ball; a "
        "uniform draw gives 50% and about 1%: use torch.rand_like or uniform_(-eps, eps), not Gaussian or sign noise",
    )
    # the same seed gives the same start; the steps must continue from it
    x = images((16, 1, 8, 8), seed=41, device=device)
    y = torch.arange(16, device=device) % 10
    torch.manual_seed(42)
    start = call(label, attack, model, x, y, 0.1, 1e-12, 1, random_start=True, **kwargs)
    torch.manual_seed(42)
    label = case(name, model, x, y, eps=0.1, alpha=0.03, steps=4, random_start=True, **kwargs)
    result = call(label, attack, model, x, y, 0.1, 0.03, 4, random_start=True, **kwargs)
    reference = {"decay": kwargs.get("decay", 1.0)} if name == "mim" else {}
    assert_close(
        label,
        result,
        reference_pgd(model, x, y, 0.1, 0.03, 4, start, **reference),
        atol=1e-9,
        mistakes={
            "the random start is drawn but the steps begin at x; step from the random start": reference_pgd(
                model, x, y, 0.1, 0.03, 4, x, **reference
            )
        },
    )
    clamped = call(label, attack, model, torch.ones_like(x), y, 0.3, 1e-12, 1, random_start=True, **kwargs)
    require(bool((clamped <= 1).all()), label, "clamp the random start into [0, 1]")


def check_iterative_attack(name: str, attack: Callable, device: torch.device, decay: float | None) -> None:
    """PGD (``decay`` None) or MIM against the float64 reference, over shapes, budgets and options."""
    extra = {} if decay is None else {"decay": decay}
    with group(f"{name} against a float64 reference: shapes, batch 1, budgets, steps 0 and 1, alpha > eps, targets"):
        cnn = mode_sensitive_cnn(1, 6, 10, device=device, seed=21).eval()
        if decay is not None:
            with torch.no_grad():
                cnn[0].weight.mul_(10)  # steep: the gradient turns within the ball, so momentum matters
        mlp = softmax_regression(20, 10, seed=22, device=device, dead_features=4)
        cases = [  # model, shape, eps, alpha, steps, targeted
            (cnn, (16, 1, 6, 6), 0.1, 0.02, 10, False),
            (cnn, (1, 1, 6, 6), 0.05, 0.04, 7, False),
            (cnn, (7, 1, 6, 6), 0.1, 0.03, 5, True),
            (cnn, (5, 1, 6, 6), 0.1, 0.25, 3, False),
            (cnn, (3, 1, 6, 6), 0.1, 0.1, 1, False),
            (mlp, (9, 20), 0.1, 0.03, 6, False),
            (mlp, (1, 20), 0.2, 0.05, 4, True),
        ]
        for seed, (model, shape, eps, alpha, steps, targeted) in enumerate(cases):
            scale = torch.linspace(0.05, 1, shape[0], dtype=torch.float64, device=device).view(
                -1, *[1] * (len(shape) - 1)
            )
            x = images(shape, seed=50 + seed, device=device) * (scale if decay is not None else 1)
            y = (torch.arange(shape[0], device=device) * 3 + seed) % 10
            label = case(
                name, model, x, y, eps=eps, alpha=alpha, steps=steps, random_start=False, targeted=targeted, **extra
            )
            result = attack_with_contract(
                label,
                attack,
                model,
                x,
                y,
                eps,
                alpha=alpha,
                steps=steps,
                random_start=False,
                targeted=targeted,
                **extra,
            )

            variant = reference_with(model, x, y, eps=eps, alpha=alpha, steps=steps, targeted=targeted, decay=decay)
            mistakes = iterative_mistakes(variant, steps, eps, targeted)
            if decay is None:
                mistakes["the gradient must be taken at the current iterate, not at the original x"] = (
                    x + (-1 if targeted else 1) * alpha * steps * input_gradient(model, x, y).sign()
                ).clamp(torch.clamp(x - eps, min=0), torch.clamp(x + eps, max=1))
            else:
                mistakes |= {
                    "the gradient is divided by the L1 norm of the whole batch; take the norm of each example "
                    "separately": variant(normalise=lambda g: g / g.abs().sum()),
                    "the gradient is divided by its L2 norm; MIM normalises with the L1 norm": variant(
                        normalise=lambda g: g / g.flatten(1).norm(dim=1).view(-1, *[1] * (g.dim() - 1))
                    ),
                    "the gradient is added to the velocity without dividing by its L1 norm": variant(
                        normalise=lambda g: g
                    ),
                    "there is no momentum: g = decay * g + normalised gradient keeps the past directions": variant(
                        decay=0.0
                    ),
                }
            assert_close(label, result, variant(), atol=1e-9, mistakes=mistakes)

        x = images((3, 1, 6, 6), seed=59, device=device)
        y = torch.arange(3, device=device)
        label = case(name, cnn, x, y, eps=0.1, alpha=0.1, steps=0, random_start=False, **extra)
        result = call(label, attack, cnn, x, y, 0.1, alpha=0.1, steps=0, random_start=False, **extra)
        assert_close(label + " (no step: the start, x itself)", result, x, atol=0)

    with group(f"{name}: any layout of x, x requiring grad, defaults and positional arguments, float32"):
        model = mode_sensitive_cnn(1, 6, 10, device=device, seed=23).train()
        base = images((6, 1, 6, 6), seed=60, device=device)
        y = torch.arange(6, device=device) % 10
        expected = reference_pgd(in_eval_mode(model), base, y, 0.1, 0.03, 3, base, decay=decay)
        variants = [*list(layouts(base))[1:], ("requiring grad", base.clone().requires_grad_())]
        for note, x in variants:
            label = case(name, model, x, y, eps=0.1, alpha=0.03, steps=3, random_start=False, **extra) + f" ({note} x)"
            result = attack_with_contract(
                label, attack, model, x, y, 0.1, alpha=0.03, steps=3, random_start=False, **extra
            )
            assert_close(
                label,
                result,
                expected,
                atol=1e-9,
                mistakes={
                    "the gradient was taken in train mode; call model.eval() before the forward passes": reference_pgd(
                        copy.deepcopy(model).train(), base, y, 0.1, 0.03, 3, base, decay=decay
                    ),
                },
            )
        positional = (0.1, 0.03, 3, False, False) if decay is None else (0.1, 0.03, 3, decay, False, False)
        label = case(name, model, base, y, *positional) + " (all arguments by position)"
        assert_close(label, call(label, attack, model, base, y, *positional), expected, atol=1e-9)
        if decay is not None:
            label = case(name, model, base, y, 0.1, 0.03, 3) + " (decay, random_start and targeted left at defaults)"
            default = reference_pgd(in_eval_mode(model), base, y, 0.1, 0.03, 3, base, decay=1.0)
            assert_close(
                label,
                attack_with_contract(label, attack, model, base, y, 0.1, alpha=0.03, steps=3),
                default,
                atol=1e-9,
                mistakes={"mim's defaults are decay=1.0, random_start=False": expected},
            )
        net = batchnorm_dropout_cnn(1, 6, 10, device=device, seed=24)
        x32 = images((12, 1, 6, 6), seed=61, device=device, dtype=torch.float32)
        y32 = torch.arange(12, device=device) % 10
        for training in (True, False):
            label = case(name, net.train(training), x32, y32, eps=0.1, alpha=0.03, steps=4, **extra)
            attack_with_contract(label, attack, net, x32, y32, 0.1, alpha=0.03, steps=4, **extra)

    with group(f"{name}: the random start (uniform in the eps-ball, clamped, reproducible, the steps go on from it)"):
        check_random_start(name, attack, device, **extra)


def check_pgd(namespace: MutableMapping[str, Any]) -> None:
    """pgd(model, x, y, eps, alpha, steps, random_start=True, targeted=False): signed steps, projected."""
    student = Student(namespace)
    check_iterative_attack("pgd", student.function("pgd"), student.device, decay=None)


def check_mim(namespace: MutableMapping[str, Any]) -> None:
    """mim(..., decay=1.0, random_start=False, targeted=False): PGD along the sign of a decayed sum of
    per-example L1-normalised gradients."""
    student = Student(namespace)
    mim = student.function("mim")
    device = student.device
    check_iterative_attack("mim", mim, device, decay=0.5)
    with group("mim: decay 1 by default and 0, examples whose gradient is exactly zero stay put without NaN"):
        model = mode_sensitive_cnn(1, 6, 10, device=device, seed=25).eval()
        with torch.no_grad():
            model[0].weight.mul_(10)
        x = images((8, 1, 6, 6), seed=62, device=device)
        y = torch.arange(8, device=device) % 10
        for decay in (1.0, 0.0, 1):
            label = case("mim", model, x, y, eps=0.1, alpha=0.02, steps=5, decay=decay)
            result = attack_with_contract(label, mim, model, x, y, 0.1, alpha=0.02, steps=5, decay=decay)
            assert_close(label, result, reference_pgd(model, x, y, 0.1, 0.02, 5, x, decay=decay), atol=1e-9)
        saturated = softmax_regression(16, 3, seed=26, device=device)
        with torch.no_grad():
            saturated[1].weight.mul_(1e4)
        x_sat = images((8, 16), seed=63, device=device)
        with torch.no_grad():
            confident = saturated(x_sat).argmax(dim=1)
        stuck = input_gradient(saturated, x_sat, confident).abs().sum(dim=1) == 0
        require(bool(stuck.any()), "mim test set-up", "internal: no saturated example")
        label = case("mim", saturated, x_sat, confident, eps=0.1, alpha=0.05, steps=3) + " (saturated softmax)"
        result = attack_with_contract(label, mim, saturated, x_sat, confident, 0.1, alpha=0.05, steps=3)
        require(bool(torch.isfinite(result).all()), label, "an all-zero gradient produced NaN: guard the division")
        assert_close(label + ", examples with a zero gradient", result[stuck], x_sat[stuck], atol=0)


class BlackBox:
    """f(t) = sum(sin(3t) t^2) + (sum t)^2 / 2 computed in numpy, so autograd cannot see through it.

    Counts the queries and checks that each has x's shape, dtype and device.
    """

    def __init__(self, x: torch.Tensor):
        self.shape, self.dtype, self.device, self.queries = tuple(x.shape), x.dtype, x.device, 0

    def __call__(self, t: torch.Tensor) -> float:
        import numpy as np

        require(
            isinstance(t, torch.Tensor) and tuple(t.shape) == self.shape,
            "finite_difference_gradient",
            f"f was called with {describe(t)}, but x has shape {self.shape}; call f with tensors of x's shape",
        )
        require(
            t.dtype == self.dtype and t.device.type == self.device.type,
            "finite_difference_gradient",
            f"f was called with {describe(t)}; x is {self.dtype} on {self.device}: perturb a copy of x itself",
        )
        self.queries += 1
        a = t.detach().cpu().double().numpy()
        return float(np.sum(np.sin(3 * a) * a**2) + 0.5 * np.sum(a) ** 2)


def difference_quotients(f: Callable, x: torch.Tensor, h: float) -> dict[str, torch.Tensor]:
    """The central, forward and backward estimates, with the arithmetic a loop would use."""
    base = f(x)
    central, forward, backward = (torch.zeros(x.numel(), dtype=torch.float64) for _ in range(3))
    for i in range(x.numel()):
        plus, minus = x.clone().reshape(-1), x.clone().reshape(-1)
        plus[i] += h
        minus[i] -= h
        f_plus, f_minus = f(plus.view_as(x)), f(minus.view_as(x))
        central[i], forward[i], backward[i] = (f_plus - f_minus) / (2 * h), (f_plus - base) / h, (base - f_minus) / h
    return {
        name: value.view(x.shape)
        for name, value in [("central", central), ("forward", forward), ("backward", backward)]
    }


FD_CONTRACT = (
    "call f (a black box returning a float) with tensors of x's shape, dtype and device; x may have any shape and "
    "layout (use reshape or flatten, not view, on x and on tensors made like it)"
)


def check_finite_difference_gradient(namespace: MutableMapping[str, Any]) -> None:
    """finite_difference_gradient(f, x, h=1e-3): one coordinate at a time, a tensor of x's shape, dtype, device."""
    student = Student(namespace)
    estimate_gradient = student.function("finite_difference_gradient")
    device = student.device
    with group("finite differences against the central, forward and backward quotients: shapes, h, layouts"):
        cases = [
            ((3, 4), 1e-3, torch.float64),
            ((2, 3, 4), 0.05, torch.float64),
            ((5,), 0.2, torch.float64),
            ((1,), 0.1, torch.float64),
            ((2, 1, 3), 1, torch.float64),
            ((3, 2), 0.01, torch.float32),
        ]
        for seed, (shape, h, dtype) in enumerate(cases):
            x = (images(shape, seed=70 + seed, dtype=dtype) * 2 - 1).to(device)
            for layout, given in layouts(x):
                f = BlackBox(given)
                label = case("finite_difference_gradient", "f", given, h=h) + f" ({layout} x)"
                snapshot = Snapshot(x=given)
                estimate = call(
                    label, estimate_gradient, f, given, h=h, contract="call f, a black box returning a float"
                )
                snapshot.assert_unchanged(label, versions=False)
                check_form_like(label, estimate, given)
                references = difference_quotients(BlackBox(given), given.detach(), h)
                tol = 1e-7 if dtype == torch.float64 else 2e-2
                errors = {k: (estimate.detach().cpu().double() - v).abs().max().item() for k, v in references.items()}
                best = min(errors, key=errors.get)
                require(
                    errors[best] <= tol,
                    label,
                    (
                        f"the estimate matches none of the central, forward or backward differences with h = {h} "
                        f"(closest: {best}, off by {errors[best]:.3g}); perturb one coordinate by h at a time, divide "
                        "by 2h for the central difference and by h for one-sided ones, and use the h you are given"
                    ),
                )
                require(
                    f.queries <= 2 * given.numel() + 1,
                    label,
                    f"{f.queries} queries for {given.numel()} coordinates; two per coordinate are enough",
                )
        x = images((2, 3), seed=80, device=device) * 2 - 1
        label = case("finite_difference_gradient", "f", x) + " (default h = 1e-3)"
        estimate = call(label, estimate_gradient, BlackBox(x), x)
        references = difference_quotients(BlackBox(x), x, 1e-3)
        require(
            min((estimate.cpu().double() - v).abs().max().item() for v in references.values()) < 1e-7,
            label,
            "with h left out, use the default h = 1e-3",
        )
    with group("finite differences agree with autograd on a smooth torch function, and run on a simulated GPU"):
        x = images((4, 5), seed=81, device=device)
        smooth = lambda t: torch.logsumexp(3 * t.flatten(), dim=0)  # noqa: E731
        x_var = x.clone().requires_grad_(True)
        (true_grad,) = torch.autograd.grad(smooth(x_var), x_var)
        label = case("finite_difference_gradient", "logsumexp", x, h=1e-4)
        assert_close(label, call(label, estimate_gradient, smooth, x, h=1e-4), true_grad, atol=1e-3)
        if device.type == "cpu":
            _, violations = run_on_simulated_gpu(estimate_gradient, smooth, x.clone(), h=1e-4)
            require(not violations, label + ", x on a GPU", violations[0] if violations else "")


def check_form_like(label: str, result: Any, x: torch.Tensor) -> None:
    """``result`` is a tensor of x's shape, dtype and device."""
    from autograder.battery.compare import check_form

    check_form(label, result, shape=tuple(x.shape), dtype=x.dtype, device=x.device)


def fixed_adversarial(x: torch.Tensor, eps: float) -> torch.Tensor:
    """A deterministic stand-in for PGD's result: every pixel moved by -eps, 0 or +eps, clamped."""
    pattern = (torch.arange(x.numel(), device=x.device) % 3 - 1).view_as(x).to(x.dtype)
    return (x.detach() + eps * pattern).clamp(0, 1)


class RecordingPgd:
    """A correct-by-contract ``pgd`` lent to the training step: records its arguments, returns a fixed result."""

    def __init__(self):
        self.calls: list[dict] = []

    def __call__(self, model, x, y, eps, alpha, steps, random_start=True, targeted=False):
        self.calls.append(
            {
                "labels": y.detach().clone(),
                "budget": (eps, alpha, steps),
                "random_start": random_start,
                "targeted": targeted,
            }
        )
        return fixed_adversarial(x, eps)


def expected_step(model, make_optimizer, x, y, x_adv, *, terms=("clean", "adv"), scale=1.0, leftover=None, mode=True):
    """Parameters after one optimizer step on scale * sum of the chosen CE terms, and the loss."""
    model = copy.deepcopy(model).train(mode)
    optimizer = make_optimizer(model.parameters())
    if leftover is None:
        optimizer.zero_grad()
    else:
        for p in model.parameters():
            p.grad = torch.full_like(p, leftover)
    losses = {"clean": F.cross_entropy(model(x), y), "adv": F.cross_entropy(model(x_adv), y)}
    loss = scale * sum(losses[term] for term in terms)
    loss.backward()
    optimizer.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()]), loss.item()


def step_mistakes(model, make_optimizer, x, y, x_adv) -> dict[str, torch.Tensor]:
    """The parameters realistic mistakes in the training step produce, by diagnosis."""

    def after(**change):
        return expected_step(model, make_optimizer, x, y, x_adv, **change)[0]

    return {
        "the update used only the clean loss; add CE(model(x_adv), y)": after(terms=("clean",)),
        "the update used only the adversarial loss; minimise CE(model(x), y) + CE(model(x_adv), y)": after(
            terms=("adv",)
        ),
        "gradients left in .grad were added to the update; call optimizer.zero_grad() before loss.backward()": after(
            leftover=0.3
        ),
        "the loss is the mean over the concatenated clean and adversarial batch, half the required sum of the two "
        "batch means": after(scale=0.5),
        "the training loss was computed in eval mode; call model.train() before the forward passes": after(mode=False),
    }


def training_model(dtype, device, seed: int = 53) -> nn.Sequential:
    """A model whose predictions differ in train and eval mode for some of the test inputs."""
    from autograder.battery.models import TrainEvalGap

    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.Tanh(), TrainEvalGap(3.0), nn.Linear(8, 3))
    with torch.no_grad():  # steep hidden units and a bias that outweighs them in eval mode only
        model[1].weight.mul_(3)
        model[4].bias.copy_(torch.tensor([0.3, -0.3, 0.0]))
    return model.to(device=device, dtype=dtype)


def check_adversarial_training_step(namespace: MutableMapping[str, Any]) -> None:
    """adversarial_training_step(model, optimizer, x, y, eps, alpha, steps, use_predicted_labels=True) -> float.

    Graded with a recording pgd lent in place of the student's, so a pgd mistake costs points once:
    PGD examples (random start, untargeted, the given budget) against the eval-mode predictions (or y),
    then one optimizer step in train mode on CE(model(x), y) + CE(model(x_adv), y); returns the loss.
    """
    student = Student(namespace)
    step = student.function("adversarial_training_step")
    device = student.device
    optimizers = {
        "SGD": lambda params: torch.optim.SGD(params, lr=0.5),
        "Adam": lambda params: torch.optim.Adam(params, lr=0.1),
    }
    with group("adversarial training step: the update, the loss, the labels attacked, modes, optimizers, dtypes"):
        for batch, dtype, optimizer_name, use_predicted in [
            (24, torch.float64, "SGD", True),
            (24, torch.float64, "SGD", False),
            (7, torch.float64, "Adam", True),
            (1, torch.float64, "SGD", True),
            (10, torch.float32, "SGD", True),
        ]:
            model = training_model(dtype, device).train(batch % 2 == 0)  # in a training loop: train mode
            x = images((batch, 1, 3, 4), seed=90 + batch, device=device, dtype=dtype)
            with torch.no_grad():
                eval_predictions = in_eval_mode(model)(x).argmax(dim=1)
                train_predictions = copy.deepcopy(model).train()(x).argmax(dim=1)
            if batch == 24:
                require(bool((eval_predictions != train_predictions).any()), "set-up", "internal: modes agree")
            y = torch.where(torch.arange(batch, device=device) % 3 == 0, (eval_predictions + 1) % 3, eval_predictions)
            make_optimizer = optimizers[optimizer_name]
            optimizer = make_optimizer(model.parameters())
            for p in model.parameters():
                p.grad = torch.full_like(p, 0.3)  # left over from an earlier backward pass
            start = copy.deepcopy(model)
            snapshot = Snapshot(x=x, y=y)
            lent = RecordingPgd()
            label = case(
                "adversarial_training_step",
                model,
                optimizer_name,
                x,
                y,
                eps=0.1,
                alpha=0.25,
                steps=2,
                use_predicted_labels=use_predicted,
            )
            with student.lending(pgd=lent):
                loss = call(
                    label,
                    step,
                    model,
                    optimizer,
                    x,
                    y,
                    eps=0.1,
                    alpha=0.25,
                    steps=2,
                    use_predicted_labels=use_predicted,
                )
            snapshot.assert_unchanged(label)
            require(
                len(lent.calls) == 1,
                label,
                f"pgd was called {len(lent.calls)} times; craft the adversarial batch with one call of pgd(...)",
            )
            pgd_call = lent.calls[0]
            require(
                pgd_call["random_start"] is True, label, "craft the training examples with pgd(..., random_start=True)"
            )
            require(not pgd_call["targeted"], label, "the training attack is untargeted (targeted=False)")
            require(pgd_call["budget"] == (0.1, 0.25, 2), label, "pass eps, alpha and steps on to pgd unchanged")
            wanted = eval_predictions if use_predicted else y
            if not torch.equal(pgd_call["labels"], wanted):
                if use_predicted and torch.equal(pgd_call["labels"], train_predictions):
                    require(
                        False,
                        label,
                        "the predicted labels must come from the model in eval mode (model.eval() and "
                        "torch.no_grad() before model(x).argmax(1))",
                    )
                require(
                    False,
                    label,
                    "the adversarial examples were crafted against the wrong labels; attack "
                    + ("the model's predicted labels" if use_predicted else "the true labels y"),
                )
            x_adv = fixed_adversarial(x, 0.1)
            after = torch.cat([p.detach().flatten() for p in model.parameters()])
            expected, expected_loss = expected_step(start, make_optimizer, x, y, x_adv)
            assert_close(
                label + ": parameters after the step",
                after,
                expected,
                atol=1e-9 if dtype == torch.float64 else 1e-5,
                mistakes=step_mistakes(start, make_optimizer, x, y, x_adv),
            )
            require(type(loss) is float, label, f"return loss.item(), a Python float; got {type(loss).__name__}")
            assert_close(label + ": returned loss", loss, expected_loss, atol=1e-9 if dtype == torch.float64 else 1e-5)
            require(all(m.training for m in model.modules()), label, "leave the model in train mode after the step")
    if device.type == "cpu":
        with group("adversarial training step on a simulated GPU"):
            model = training_model(torch.float64, device)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
            x = images((6, 1, 3, 4), seed=99, device=device)
            y = torch.arange(6, device=device) % 3
            with student.lending(pgd=RecordingPgd()):
                _, violations = run_on_simulated_gpu(step, model, optimizer, x, y, 0.1, 0.25, 2)
            require(
                not violations, "adversarial_training_step with inputs on a GPU", violations[0] if violations else ""
            )
