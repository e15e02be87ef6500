"""Visible checks of the visualization functions' contract (lab 5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def model_state(model: nn.Module) -> tuple[list, list, list]:
    """Each submodule's mode and hook counts, each parameter's values and requires_grad flag."""
    modes = [module.training for module in model.modules()]
    hooks = [len(getattr(module, kind)) for module in model.modules() for kind in HOOK_DICTS]
    parameters = [(p.detach().clone(), p.requires_grad) for p in model.parameters()]
    return modes, hooks, parameters


def check_leaves_model_as_found(name: str, run: Callable[[], Any], model: nn.Module) -> None:
    """Call ``run()`` with ``model`` in train mode, then in eval mode; after each call the model's modes,
    hooks, parameter values and ``requires_grad`` flags must be as they were. Prints one line."""

    def require(condition: bool, message: str) -> None:
        if not condition:
            print(f"{name}: FAILED")
            raise AssertionError(f"{name}: {message}")

    for training in (True, False):
        model.train(training)
        modes, hooks, parameters = model_state(model)
        run()
        now_modes, now_hooks, now_parameters = model_state(model)
        mode = "train" if training else "eval"
        require(
            now_modes == modes,
            f"the model was in {mode} mode and came back in another; remember was_training = model.training and "
            "restore it with model.train(was_training), also when an error interrupts the function (try/finally)",
        )
        require(now_hooks == hooks, "a hook is still registered; keep its handle and call handle.remove() (in finally)")
        require(
            all(torch.equal(a, b) and fa == fb for (a, fa), (b, fb) in zip(parameters, now_parameters, strict=True)),
            "the parameters' values or requires_grad flags changed; take gradients with respect to the image only",
        )
    print(f"{name}: mode, hooks and parameters restored from train and from eval mode  OK")
