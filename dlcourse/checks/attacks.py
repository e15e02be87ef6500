"""Visible checks of the attacks' contract (lab 6)."""

from __future__ import annotations

import random
from collections.abc import Callable

import torch
from torch import nn


class ModeRecorder(nn.Module):
    """Wraps a model and records, for each forward call, whether it ran in training mode."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.calls: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(self.training)
        return self.model(x)


def check_attack_contract(
    name: str,
    attack: Callable[..., torch.Tensor],
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    **kwargs,
) -> torch.Tensor:
    """Check what every L-infinity attack ``attack(model, x, y, eps, **kwargs)`` promises.

    The result is a new detached tensor of x's shape, dtype and device, inside the
    eps-ball around x and inside [0, 1]; ``x``, the model's parameters, buffers and
    train/eval mode are left as they were, and the model runs in eval mode while
    attacked. The attack runs once from each mode; prints one line, returns the last result.
    """

    def require(condition: bool, message: str) -> None:
        if not condition:
            print(f"{name}: FAILED")
            raise AssertionError(f"{name}: {message}")

    result = None
    for start_in_training_mode in (True, False):
        recorder = ModeRecorder(model).train(start_in_training_mode)
        x_before, x_requires_grad, x_grad = x.detach().clone(), x.requires_grad, x.grad
        state_before = {key: value.clone() for key, value in recorder.state_dict().items()}
        requires_grad_before = [p.requires_grad for p in recorder.parameters()]
        result = attack(recorder, x, y, eps, **kwargs)
        require(
            isinstance(result, torch.Tensor),
            f"expected a tensor, got {type(result).__name__}; did you forget to return the result?",
        )
        require(result.shape == x.shape, f"x has shape {tuple(x.shape)} but the result has shape {tuple(result.shape)}")
        require(
            result.dtype == x.dtype and result.device == x.device,
            f"x is {x.dtype} on {x.device} but the result is {result.dtype} on {result.device}",
        )
        require(result is not x, "return a new tensor, not x itself")
        require(not result.requires_grad, "the result still requires grad; return x_adv.detach()")
        require(
            torch.equal(x.detach(), x_before), "the attack changed the values of x in place; work on a copy (x.clone())"
        )
        require(
            x.requires_grad == x_requires_grad and (x_requires_grad or x.grad is x_grad),
            "the attack set requires_grad or .grad on the caller's x; "
            "use a copy: x.clone().detach().requires_grad_(True)",
        )
        distance = (result.detach() - x).abs().max().item() if x.numel() else 0.0
        require(
            distance <= eps * (1 + 1e-6) + 1e-6,
            f"result leaves the eps-ball around x: max |x_adv - x| = {distance:.4g} > eps = {eps}; no pixel may "
            "move by more than eps (step along the sign of the gradient, project onto [x - eps, x + eps])",
        )
        require(bool(((result >= 0) & (result <= 1)).all()), "result has pixels outside [0, 1]; clamp after every step")
        require(len(recorder.calls) > 0, "the attack never called the model")
        require(
            not any(recorder.calls),
            "the model ran in training mode during the attack; call model.eval() first "
            "(dropout and batch norm behave differently in training mode)",
        )
        mode = "train" if start_in_training_mode else "eval"
        require(
            all(module.training == start_in_training_mode for module in recorder.modules()),
            f"the model was in {mode} mode before the attack and must be left in it; "
            "remember model.training and restore it with model.train(was_training)",
        )
        require(
            all(torch.equal(value, recorder.state_dict()[key]) for key, value in state_before.items()),
            "the attack changed the model's parameters or buffers (e.g. batch-norm running statistics)",
        )
        require(
            requires_grad_before == [p.requires_grad for p in recorder.parameters()],
            "the attack changed requires_grad of the model's parameters; leave them as they were",
        )
    print(
        f"{name}: new detached tensor in the eps-ball and [0, 1], eval mode while attacking; "
        "x, model and its mode unchanged  OK"
    )
    return result


def two_class_linear_model(device: torch.device | str = "cpu") -> nn.Sequential:
    """Softmax regression on six pixels, f(x) = W x + b, with no zero in the difference w_1 - w_0 of its rows."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, -1.0, 0.5, -0.5, 2.0, 0.0], [-1.0, 1.0, 0.0, 0.5, -1.0, 1.5]]))
        model[1].bias.copy_(torch.tensor([0.2, -0.2]))
    return model.to(device)


def step_inputs(device: torch.device | str = "cpu") -> torch.Tensor:
    """The five (1, 2, 3) images of the training step's check: pixels in [0.1, 0.9) that are the same everywhere
    (Python's ``random.Random(6)``, whose sequence never changes)."""
    generator = random.Random(6)
    pixels = torch.tensor([0.1 + 0.8 * generator.random() for _ in range(30)])
    return pixels.view(5, 1, 2, 3).to(device)


# The input gradient of CE(W x + b, c) on two_class_linear_model is p_other (w_other - w_c): its sign is
# sign(w_1 - w_0) for label 0 and the opposite for label 1, wherever x lies. So PGD with alpha >= 2 eps ends at
# x + eps * (1 - 2 c) * TOWARDS_CLASS_1 (clamped) from any random start in the eps-ball.
TOWARDS_CLASS_1 = (-1.0, 1.0, -1.0, 1.0, -1.0, 1.0)
# On step_inputs with the labels of the check (the model's predictions [1, 1, 0, 0, 1] with entries 1 and 3
# flipped): the mean cross-entropy and its gradient with respect to (W, b), flattened, before any step, for the
# clean inputs, for those moved eps = 0.1 towards the other class of the prediction (the adversarial examples
# the step should train on) and of the label (examples crafted against y).
CLEAN_LOSS, CLEAN_GRADIENT = (
    1.0751524997189221,
    (
        *(0.09535241089, 0.04221458289, 0.1353868481, 0.03177256958, 0.1033448731, -0.003381756196),
        *(-0.09535241089, -0.04221458289, -0.1353868481, -0.03177256958, -0.1033448731, 0.003381756196),
        *(0.1258381815, -0.1258381815),
    ),
)
ADVERSARIAL_LOSS, ADVERSARIAL_GRADIENT = (
    1.0827309267393954,
    (
        *(0.1277126109, 0.1112464961, 0.1871809073, 0.04917490107, 0.1176588441, 0.03116671376),
        *(-0.1277126109, -0.1112464961, -0.1871809073, -0.04917490107, -0.1176588441, -0.03116671376),
        *(0.205111273, -0.205111273),
    ),
)
AGAINST_Y_GRADIENT = (
    *(0.1689087285, -0.002143094452, 0.2347981646, -0.056566419, 0.1727683369, -0.08363714733),
    *(-0.1689087285, 0.002143094452, -0.2347981646, 0.056566419, -0.1727683369, 0.08363714733),
    *(0.146807845, -0.146807845),
)


def check_training_step_contract(step: Callable[..., float], device: torch.device | str = "cpu") -> None:
    """Check ``step(model, optimizer, x, y, eps, alpha, steps)``, lab 6's adversarial training step, on a model
    where the attack's result is known without running it.

    On :func:`two_class_linear_model`, PGD with alpha >= 2 eps ends at a known corner of the eps-ball wherever
    its random start lies (see ``TOWARDS_CLASS_1``), so one SGD step on CE(f(x), y) + CE(f(x_adv), y), x_adv
    crafted against the eval-mode predictions, is known: the parameters minus lr times the sum of the recorded
    gradients. While the step runs, the ``pgd`` it calls returns that corner, so that a mistake in the lab's pgd
    is not counted here again. The model arrives in eval mode with stale gradients in ``.grad``; the check
    compares the parameters after the call and the returned loss with that step (and with the steps of common
    mistakes, to name them), counts the optimizer's steps and pgd's calls, and checks the mode the model is left
    in and that x and y are unchanged. Prints one line.
    """
    name = "adversarial_training_step"

    def require(condition: bool, message: str) -> None:
        if not condition:
            print(f"{name}: FAILED")
            raise AssertionError(f"{name}: {message}")

    lr, eps, alpha = 0.5, 0.1, 0.25
    model = two_class_linear_model(device).eval()
    x = step_inputs(device)
    with torch.no_grad():
        predictions = model(x).argmax(dim=1)
    y = predictions.clone()
    y[[1, 3]] = 1 - y[[1, 3]]  # two labels the model gets wrong
    x_before, y_before = x.clone(), y.clone()
    start = torch.cat([p.detach().to("cpu", torch.float64).flatten() for p in model[1].parameters()])
    clean, adversarial, against_y = (
        torch.tensor(gradient, dtype=torch.float64)
        for gradient in (CLEAN_GRADIENT, ADVERSARIAL_GRADIENT, AGAINST_Y_GRADIENT)
    )
    expected, expected_loss = start - lr * (clean + adversarial), CLEAN_LOSS + ADVERSARIAL_LOSS
    mistakes = [
        (
            "the update matches a step on the clean loss alone; add the loss on the adversarial examples",
            start - lr * clean,
        ),
        (
            "the update matches a step on the adversarial loss alone; the loss is the clean plus the adversarial term",
            start - lr * adversarial,
        ),
        (
            "the update matches a step whose second term saw the clean inputs: the adversarial examples must come "
            "from an attack on this model",
            start - lr * 2 * clean,
        ),
        (
            "the update matches examples crafted against y; with use_predicted_labels=True, attack the model's "
            "predictions",
            start - lr * (clean + against_y),
        ),
        (
            "the gradients left in .grad by an earlier backward pass were added to the update; zero them first",
            start - lr * (clean + adversarial + 0.3),
        ),
        (
            "the update is half the expected one: each term is a batch mean, and the loss is their sum",
            (start + expected) / 2,
        ),
    ]
    pgd_calls: list[dict] = []

    trained = model

    def corner_pgd(model, x, y, eps, alpha, steps, random_start=True, targeted=False) -> torch.Tensor:
        """Stands in for the lab's pgd on the trained model: returns where every correct PGD run ends there."""
        pgd_calls.append({"random_start": random_start, "targeted": targeted})
        if model is not trained:
            raise AssertionError(f"{name}: pgd was called on another model; attack the model being trained")
        away = (1 - 2 * y.to(x.dtype)).view(-1, 1) * torch.tensor(TOWARDS_CLASS_1, dtype=x.dtype, device=x.device)
        return (x.detach().flatten(1) + eps * away).clamp(0, 1).view_as(x)

    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.3)  # left over from an earlier backward pass
    optimizer_steps = []
    hook = optimizer.register_step_post_hook(lambda *args: optimizer_steps.append(1))
    namespace = getattr(step, "__globals__", {})  # the notebook's names, where the step finds pgd
    own_pgd = namespace.get("pgd")
    if own_pgd is not None:
        namespace["pgd"] = corner_pgd
    try:
        loss = step(model, optimizer, x, y, eps=eps, alpha=alpha, steps=2)
    finally:
        hook.remove()
        if own_pgd is not None:
            namespace["pgd"] = own_pgd
    require(len(pgd_calls) <= 1, f"pgd was called {len(pgd_calls)} times; one call crafts the batch")
    require(torch.equal(x, x_before) and torch.equal(y, y_before), "x or y changed; work on copies")
    require(
        len(optimizer_steps) == 1,
        f"optimizer.step() ran {len(optimizer_steps)} times; one call is one training step",
    )
    require(
        all(module.training for module in model.modules()),
        "the model arrived in eval mode and was not left in train mode",
    )
    now = torch.cat([p.detach().to("cpu", torch.float64).flatten() for p in model[1].parameters()])
    if not torch.allclose(now, expected, rtol=0, atol=1e-5):
        for message, wrong in mistakes:
            require(not torch.allclose(now, wrong, rtol=0, atol=1e-5), message)
        require(
            False,
            f"the parameters after the step are off by up to {(now - expected).abs().max().item():.3g} "
            "(tolerance 1e-5)",
        )
    require(isinstance(loss, float), f"return the loss as a Python float (loss.item()), got {type(loss).__name__}")
    require(
        abs(loss - expected_loss) <= 1e-5,
        f"returned loss {loss:.6f}, but the clean plus adversarial loss before the step is {expected_loss:.6f}",
    )
    print(
        f"{name}: one optimizer step on the clean and adversarial loss, loss {loss:.4f} returned, "
        "left in train mode  OK"
    )
