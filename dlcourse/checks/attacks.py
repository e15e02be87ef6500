"""Visible checks of the attacks' contract (lab 6)."""

from __future__ import annotations

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
