"""Visible checks of the attacks' contract (lab 6)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
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


def mean_cross_entropy_gradients(
    weight: torch.Tensor, bias: torch.Tensor, inputs: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Gradients of mean_n CE(W x_n + b, y_n) in closed form: (1/N) sum_n (p_n - e_{y_n}) x_n^T; and the loss."""
    probabilities = torch.softmax(inputs @ weight.T + bias, dim=1)
    one_hot = F.one_hot(labels, num_classes=weight.shape[0]).to(weight.dtype)
    error = (probabilities - one_hot) / len(inputs)
    loss = -(one_hot * probabilities.log()).sum(dim=1).mean().item()
    return error.T @ inputs, error.sum(dim=0), loss


def sign_corner(weight: torch.Tensor, x: torch.Tensor, labels: torch.Tensor, eps: float) -> torch.Tensor:
    """Where L-infinity PGD with alpha >= 2 eps ends on two-class softmax regression, from any start in the ball.

    The input gradient of CE(W x + b, c) is p_other (w_other - w_c): its sign does not depend on x.
    """
    direction = (weight[1 - labels] - weight[labels]).sign()
    return (x + eps * direction).clamp(0, 1)


def step_outcome(
    weight: torch.Tensor,
    bias: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    x_adv: torch.Tensor,
    lr: float,
    terms: tuple[str, ...] = ("clean", "adversarial"),
    leftover: float = 0.0,
    scale: float = 1.0,
) -> tuple[torch.Tensor, float]:
    """Parameters (flattened W, b) after one SGD step of rate lr on scale * the sum of the chosen terms, and the loss.

    ``leftover`` is a gradient already in ``.grad`` that the step adds if it is not zeroed first.
    """
    batches = {"clean": x, "adversarial": x_adv}
    grad_w, grad_b = torch.full_like(weight, leftover), torch.full_like(bias, leftover)
    loss = 0.0
    for term in terms:
        term_w, term_b, term_loss = mean_cross_entropy_gradients(weight, bias, batches[term], y)
        grad_w, grad_b, loss = grad_w + scale * term_w, grad_b + scale * term_b, loss + scale * term_loss
    return torch.cat([(weight - lr * grad_w).flatten(), bias - lr * grad_b]), loss


class CornerPgd:
    """Stands in for the lab's ``pgd`` on :func:`two_class_linear_model`: every correct L-infinity PGD run
    with alpha >= 2 eps ends at :func:`sign_corner` there, so the stand-in returns that point and records its calls.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.calls: list[dict] = []

    def __call__(self, model, x, y, eps, alpha, steps, random_start=True, targeted=False) -> torch.Tensor:
        self.calls.append({"random_start": random_start, "targeted": targeted})
        if model is not self.model:
            raise AssertionError(
                "adversarial_training_step: pgd was called on another model; attack the model being trained"
            )
        weight = self.model[1].weight.detach().to(x.dtype)
        return sign_corner(weight, x.detach().flatten(1), y, eps).view_as(x)


def check_training_step_contract(step: Callable[..., float], device: torch.device | str = "cpu") -> None:
    """Check ``step(model, optimizer, x, y, eps, alpha, steps)``, lab 6's adversarial training step, on a model
    where the attack's result is known without running it.

    On two-class softmax regression, PGD with alpha >= 2 eps ends at :func:`sign_corner` wherever its random
    start lies, so one SGD step on CE(f(x), y) + CE(f(x_adv), y), x_adv crafted against the eval-mode
    predictions, has a closed form. While the step runs, the ``pgd`` it calls is :class:`CornerPgd`, so that a
    mistake in the lab's pgd is not counted here again. The model arrives in eval mode with stale gradients in
    ``.grad``; the check compares the parameters after the call and the returned loss with that step, counts
    the optimizer's steps and pgd's calls, and checks the mode the model is left in and that x and y are
    unchanged. Prints one line.
    """
    name = "adversarial_training_step"

    def require(condition: bool, message: str) -> None:
        if not condition:
            print(f"{name}: FAILED")
            raise AssertionError(f"{name}: {message}")

    lr, eps, alpha = 0.5, 0.1, 0.25
    model = two_class_linear_model(device).eval()
    generator = torch.Generator().manual_seed(6)
    x = (0.1 + 0.8 * torch.rand(5, 1, 2, 3, generator=generator)).to(device)
    with torch.no_grad():
        predictions = model(x).argmax(dim=1)
    y = predictions.clone()
    y[[1, 3]] = 1 - y[[1, 3]]  # two labels the model gets wrong
    x_before, y_before = x.clone(), y.clone()
    weight, bias = (p.detach().to("cpu", torch.float64) for p in model[1].parameters())
    flat_x, cpu_y = x.flatten(1).to("cpu", torch.float64), y.cpu()
    x_adv = sign_corner(weight, flat_x, predictions.cpu(), eps)

    def after(x_adv: torch.Tensor = x_adv, **change) -> torch.Tensor:
        return step_outcome(weight, bias, flat_x, cpu_y, x_adv, lr, **change)[0]

    expected, expected_loss = step_outcome(weight, bias, flat_x, cpu_y, x_adv, lr)
    mistakes = [
        (
            "the update matches a step on the clean loss alone; add the loss on the adversarial examples",
            after(terms=("clean",)),
        ),
        (
            "the update matches a step on the adversarial loss alone; the loss is the clean plus the adversarial term",
            after(terms=("adversarial",)),
        ),
        (
            "the update matches a step whose second term saw the clean inputs: the adversarial examples must come "
            "from an attack on this model",
            after(x_adv=flat_x),
        ),
        (
            "the update matches examples crafted against y; with use_predicted_labels=True, attack the model's "
            "predictions",
            after(x_adv=sign_corner(weight, flat_x, cpu_y, eps)),
        ),
        (
            "the gradients left in .grad by an earlier backward pass were added to the update; zero them first",
            after(leftover=0.3),
        ),
        ("the update is half the expected one: each term is a batch mean, and the loss is their sum", after(scale=0.5)),
    ]
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.3)  # left over from an earlier backward pass
    optimizer_steps = []
    hook = optimizer.register_step_post_hook(lambda *args: optimizer_steps.append(1))
    namespace = getattr(step, "__globals__", {})  # the notebook's names, where the step finds pgd
    own_pgd, corner_pgd = namespace.get("pgd"), CornerPgd(model)
    if own_pgd is not None:
        namespace["pgd"] = corner_pgd
    try:
        loss = step(model, optimizer, x, y, eps=eps, alpha=alpha, steps=2)
    finally:
        hook.remove()
        if own_pgd is not None:
            namespace["pgd"] = own_pgd
    require(len(corner_pgd.calls) <= 1, f"pgd was called {len(corner_pgd.calls)} times; one call crafts the batch")
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
