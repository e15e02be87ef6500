"""Side effects: what the caller's tensors and models looked like before a call, checked after it.

:class:`Snapshot` records, for every tensor it is given, the values, dtype, device, version counter
(which every in-place change moves, even one undone later), ``requires_grad`` and ``.grad``; for
every model, each submodule's train/eval mode and hooks, each parameter's identity, values and
``requires_grad``, and each buffer's values. :meth:`Snapshot.assert_unchanged` names the first
thing that changed and what to do instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype or a.device != b.device:
        return False
    return bool(((a == b) | (a.isnan() & b.isnan())).all()) if a.is_floating_point() else torch.equal(a, b)


@dataclass
class TensorState:
    tensor: torch.Tensor
    value: torch.Tensor
    version: int
    requires_grad: bool
    grad: torch.Tensor | None

    @classmethod
    def of(cls, tensor: torch.Tensor) -> TensorState:
        grad = tensor.grad.detach().clone() if tensor.grad is not None else None
        return cls(tensor, tensor.detach().clone(), tensor._version, tensor.requires_grad, grad)

    def change(self, name: str, versions: bool) -> str | None:
        tensor = self.tensor
        if not same_values(tensor.detach(), self.value):
            return f"changed {name} in place (its values, dtype or device); work on a copy (e.g. {name}.clone())"
        if versions and tensor._version != self.version:
            return (
                f"modified {name} in place (its version counter moved, even if the values came back); "
                f"work on a copy (e.g. {name}.clone())"
            )
        if tensor.requires_grad != self.requires_grad:
            return f"changed {name}.requires_grad; use a copy: {name}.clone().detach().requires_grad_(True)"
        if (tensor.grad is None) != (self.grad is None) or (
            tensor.grad is not None and not same_values(tensor.grad, self.grad)
        ):
            return f"changed {name}.grad; take gradients of a copy of {name}, not of {name} itself"
        return None


@dataclass
class ModuleState:
    module: nn.Module
    modes: list[tuple[str, bool]]
    hooks: list[tuple[str, str, int]]
    parameters: dict[str, tuple[torch.nn.Parameter, TensorState]]
    buffers: dict[str, torch.Tensor]

    @classmethod
    def of(cls, module: nn.Module) -> ModuleState:
        modes = [(name, sub.training) for name, sub in module.named_modules()]
        hooks = [
            (name, kind, len(getattr(sub, kind, {}))) for name, sub in module.named_modules() for kind in HOOK_DICTS
        ]
        parameters = {name: (p, TensorState.of(p)) for name, p in module.named_parameters()}
        buffers = {name: b.detach().clone() for name, b in module.named_buffers()}
        return cls(module, modes, hooks, parameters, buffers)

    def change(self, name: str, grads: bool) -> str | None:
        module = self.module
        for (sub, training), (_, now) in zip(
            self.modes, [(n, m.training) for n, m in module.named_modules()], strict=True
        ):
            if training != now:
                where = f"{name}.{sub}" if sub else name
                before, after = ("train", "eval") if training else ("eval", "train")
                return (
                    f"left {where} in {after} mode; it was in {before} mode: remember was_training = "
                    f"{name}.training and restore it with {name}.train(was_training)"
                )
        now_hooks = [(n, kind, len(getattr(m, kind, {}))) for n, m in module.named_modules() for kind in HOOK_DICTS]
        if now_hooks != self.hooks:
            return f"left hooks registered on {name}; keep each handle and call handle.remove() when done"
        now_parameters = dict(module.named_parameters())
        for key, (parameter, state) in self.parameters.items():
            if now_parameters.get(key) is not parameter:
                return (
                    f"replaced the parameter {name}.{key}; change parameters only through the optimizer (or not at all)"
                )
            if not same_values(parameter.detach(), state.value):
                return f"changed the values of {name}.{key}; leave the model's parameters as they were"
            if parameter.requires_grad != state.requires_grad:
                return f"changed {name}.{key}.requires_grad; leave it as it was"
            if grads and ((parameter.grad is None) != (state.grad is None)):
                return f"changed {name}.{key}.grad"
        for key, value in self.buffers.items():
            now = dict(module.named_buffers()).get(key)
            if now is None or not same_values(now.detach(), value):
                return (
                    f"changed the buffer {name}.{key} (e.g. batch-norm running statistics, which move whenever the "
                    "model runs in train mode)"
                )
        return None


class Snapshot:
    """``Snapshot(x=x, model=model)`` before a call; ``assert_unchanged(label)`` after it."""

    def __init__(self, **objects: Any):
        self.states: dict[str, Any] = {}
        for name, value in objects.items():
            self.add(name, value)

    def add(self, name: str, value: Any) -> None:
        if isinstance(value, torch.Tensor):
            self.states[name] = TensorState.of(value)
        elif isinstance(value, nn.Module):
            self.states[name] = ModuleState.of(value)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                self.add(f"{name}[{index}]", item)

    def changes(self, versions: bool = True, grads: bool = False) -> list[str]:
        found = []
        for name, state in self.states.items():
            change = state.change(name, versions) if isinstance(state, TensorState) else state.change(name, grads)
            if change:
                found.append(change)
        return found

    def assert_unchanged(self, label: str, versions: bool = True, grads: bool = False) -> None:
        from autograder.battery.compare import require

        changes = self.changes(versions, grads)
        require(not changes, label, changes[0] if changes else "")


def same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    """``a`` is ``b``: the very object, not a copy or a rebound name."""
    return a is b
