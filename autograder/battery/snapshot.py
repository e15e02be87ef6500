"""Side effects: what the caller's tensors and models looked like before a call, checked after it.

:class:`Snapshot` records, for every tensor it is given, the values, dtype, device, memory (a
``.data = ...`` swap replaces it even when the values come back), version counter (which every
in-place change moves, even one undone later), ``requires_grad`` and ``.grad``; for every model,
each submodule's train/eval mode and hooks (PyTorch's global module hooks too), each parameter's
identity and state, and each buffer's identity and state. :meth:`Snapshot.assert_unchanged` names
the first thing that changed and what to do instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as module_globals

from autograder.battery.compare import require
from autograder.battery.student import call

HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
GLOBAL_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks")


def same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype or a.device != b.device:
        return False
    return bool(((a == b) | (a.isnan() & b.isnan())).all()) if a.is_floating_point() else torch.equal(a, b)


def memory_of(tensor: torch.Tensor) -> int:
    return 0 if tensor.device.type == "meta" else tensor.untyped_storage().data_ptr()


def leaf_grad(tensor: torch.Tensor) -> torch.Tensor | None:
    """A leaf's ``.grad``; a tensor computed from others (a model's output) has none, and reading it would warn."""
    return tensor.grad if tensor.is_leaf else None


@dataclass
class TensorState:
    tensor: torch.Tensor
    value: torch.Tensor
    version: int
    memory: int
    requires_grad: bool
    grad: torch.Tensor | None

    @classmethod
    def of(cls, tensor: torch.Tensor) -> TensorState:
        grad = leaf_grad(tensor)
        grad = grad.detach().clone() if grad is not None else None
        return cls(tensor, tensor.detach().clone(), tensor._version, memory_of(tensor), tensor.requires_grad, grad)

    def change(self, name: str, versions: bool, grads: bool = True) -> str | None:
        tensor = self.tensor
        if not same_values(tensor.detach(), self.value):
            return f"changed {name} in place (its values, dtype or device); work on a copy (e.g. {name}.clone())"
        if memory_of(tensor) != self.memory:
            return f"replaced the memory of {name} (e.g. {name}.data = ...); leave {name} alone and work on a copy"
        if versions and tensor._version != self.version:
            return (
                f"modified {name} in place (its version counter moved, even if the values came back); "
                f"work on a copy (e.g. {name}.clone())"
            )
        if tensor.requires_grad != self.requires_grad:
            return f"changed {name}.requires_grad; use a copy: {name}.clone().detach().requires_grad_(True)"
        grad = leaf_grad(tensor)
        if grads and ((grad is None) != (self.grad is None) or (grad is not None and not same_values(grad, self.grad))):
            return f"changed {name}.grad; take gradients of a copy of {name}, not of {name} itself"
        return None


def hook_counts(module: nn.Module) -> list[tuple[str, str, int]]:
    counts = [(name, kind, len(getattr(sub, kind, {}))) for name, sub in module.named_modules() for kind in HOOK_DICTS]
    return counts + [("(global)", kind, len(getattr(module_globals, kind))) for kind in GLOBAL_HOOKS]


@dataclass
class ModuleState:
    module: nn.Module
    modes: list[tuple[str, bool]]
    hooks: list[tuple[str, str, int]]
    parameters: dict[str, TensorState]
    buffers: dict[str, TensorState]

    @classmethod
    def of(cls, module: nn.Module) -> ModuleState:
        return cls(
            module,
            [(name, sub.training) for name, sub in module.named_modules()],
            hook_counts(module),
            {name: TensorState.of(p) for name, p in module.named_parameters()},
            {name: TensorState.of(b) for name, b in module.named_buffers()},
        )

    def change(self, name: str, versions: bool, grads: bool) -> str | None:
        module = self.module
        now_modes = [(n, m.training) for n, m in module.named_modules()]
        for (sub, training), (_, now) in zip(self.modes, now_modes, strict=False):
            if training != now:
                where = f"{name}.{sub}" if sub else name
                before, after = ("train", "eval") if training else ("eval", "train")
                return (
                    f"left {where} in {after} mode; it was in {before} mode: remember was_training = "
                    f"{name}.training and restore it with {name}.train(was_training)"
                )
        now_hooks = hook_counts(module)
        if now_hooks != self.hooks:
            if any(now[2] < before[2] for now, before in zip(now_hooks, self.hooks, strict=False)):
                return (
                    f"removed a hook that was registered on {name} before the call (e.g. with _forward_hooks.clear()); "
                    "remove only your own: keep the handle register_forward_hook returns and call handle.remove()"
                )
            return f"left hooks registered on {name} (or globally); keep each handle and call handle.remove() when done"
        now_parameters = dict(module.named_parameters())
        for key, state in self.parameters.items():
            if now_parameters.get(key) is not state.tensor:
                return (
                    f"replaced the parameter {name}.{key}; change parameters only through the optimizer (or not at all)"
                )
            if not same_values(state.tensor.detach(), state.value) or memory_of(state.tensor) != state.memory:
                return f"changed the values of {name}.{key}; leave the model's parameters as they were"
            if state.tensor.requires_grad != state.requires_grad:
                return f"changed {name}.{key}.requires_grad; leave it as it was"
            if grads and (state.tensor.grad is None) != (state.grad is None):
                return f"changed {name}.{key}.grad"
        now_buffers = dict(module.named_buffers())
        for key, state in self.buffers.items():
            if now_buffers.get(key) is not state.tensor or state.change(f"{name}.{key}", versions, grads=False):
                return (
                    f"changed the buffer {name}.{key} (e.g. batch-norm running statistics, which move whenever the "
                    "model runs in train mode)"
                )
        return None


class Snapshot:
    """``Snapshot(x=x, model=model)`` before a call; ``assert_unchanged(label)`` after it."""

    def __init__(self, **objects: Any):
        self.states: dict[str, TensorState | ModuleState] = {}
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

    def changes(self, versions: bool = True, grads: bool = False, input_grads: bool = True) -> list[str]:
        """What changed. ``input_grads``: the tensors' ``.grad``; ``grads``: the models' parameters' ``.grad``."""
        found = []
        for name, state in self.states.items():
            if isinstance(state, TensorState):
                change = state.change(name, versions, input_grads)
            else:
                change = state.change(name, versions, grads)
            if change:
                found.append(change)
        return found

    def assert_unchanged(self, label: str, versions: bool = True, grads: bool = False, input_grads: bool = True):
        changes = self.changes(versions, grads, input_grads)
        require(not changes, label, changes[0] if changes else "")


def call_leaving_unchanged(label: str, function: Callable, *args: Any, inputs: dict, **kwargs: Any) -> Any:
    """Call the answer (its errors named with ``label``); afterwards ``inputs`` (tensors, models) must be
    unchanged: values, version counters, ``requires_grad``, the tensors' ``.grad``, models' modes and hooks."""
    snapshot = Snapshot(**inputs)
    result = call(label, function, *args, **kwargs)
    snapshot.assert_unchanged(label, grads=False, input_grads=True)
    return result
