"""Catch device mistakes on a grader without a GPU.

On a CUDA grader the hidden tests pass inputs on the GPU, and an answer that creates a tensor on
the CPU (``torch.zeros(n)``, ``torch.tensor([...])``, ``torch.rand(x.shape)``) fails by itself.
A CPU-only grader cannot see that mistake, so :func:`run_on_simulated_gpu` runs the answer once
more under a :class:`~torch.overrides.TorchFunctionMode` that pretends its inputs live on
``cuda:0``: they report ``device == cuda:0``, tensors computed from them count as GPU tensors,
factories given that device are redirected to the CPU but count as GPU tensors, and tensors made
without a device (or explicitly on the CPU) count as CPU tensors. Whatever a real GPU would
refuse is recorded instead of raised:

- an operation that mixes a GPU tensor with a CPU tensor of one or more dimensions (a CPU
  scalar, a 0-dim tensor, is allowed, as on a real GPU), except the conversions that are legal
  across devices (``to``, ``copy_``, indexing);
- ``.numpy()`` of a GPU tensor, and ``.data`` or ``.grad`` of a GPU tensor set to a CPU tensor;
- a result on the CPU where the contract says "on x's device" (checked by the caller with
  :meth:`SimulatedGpu.on_gpu`).

Only tensors known to be made on the CPU during the call count as CPU tensors, so an answer is
never blamed for a tensor the mode did not see being made.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

GPU = torch.device("cuda", 0)
CPU = torch.device("cpu")
CONVERSIONS = {"to", "copy_", "__getitem__", "__setitem__", "type_as", "index_put_", "index_put"}


def is_gpu_device(value: Any) -> bool:
    if isinstance(value, torch.device):
        return value.type == "cuda"
    return isinstance(value, str) and value.split(":")[0] == "cuda"


def is_cpu_device(value: Any) -> bool:
    if isinstance(value, torch.device):
        return value.type == "cpu"
    return isinstance(value, str) and value == "cpu"


def to_real_device(value: Any) -> Any:
    return CPU if is_gpu_device(value) else value


class SimulatedGpu(TorchFunctionMode):
    """Tracks which tensors would live on the GPU and records what a GPU would refuse."""

    def __init__(self, gpu_tensors: list[torch.Tensor]):
        super().__init__()
        self.kind: dict[int, str] = {}  # id -> "gpu" or "cpu"
        self.keep: list[torch.Tensor] = []  # ids stay valid while the call runs
        self.violations: list[str] = []
        for tensor in gpu_tensors:
            self.mark(tensor, "gpu")

    def mark(self, tensor: torch.Tensor, kind: str) -> None:
        self.kind[id(tensor)] = kind
        self.keep.append(tensor)

    def kind_of(self, value: Any) -> str | None:
        return self.kind.get(id(value)) if isinstance(value, torch.Tensor) else None

    def on_gpu(self, value: Any) -> bool:
        """True unless ``value`` is a tensor known to have been made on the CPU."""
        return self.kind_of(value) != "cpu"

    def violate(self, message: str) -> None:
        if message not in self.violations:
            self.violations.append(message)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        owner = getattr(getattr(func, "__self__", None), "__name__", "")
        if name in ("__get__", "__set__"):
            return self.attribute(func, name, owner, args)
        tensors = [leaf for leaf in tree_flatten((args, kwargs))[0] if isinstance(leaf, torch.Tensor)]
        kinds = [self.kind_of(tensor) for tensor in tensors]
        devices = [leaf for leaf in tree_flatten((args, kwargs))[0] if is_gpu_device(leaf) or is_cpu_device(leaf)]
        if name not in CONVERSIONS and "gpu" in kinds:
            for tensor, kind in zip(tensors, kinds, strict=True):
                if kind == "cpu" and tensor.dim() > 0:
                    self.violate(
                        f"{name} combined a tensor on the GPU with a tensor of shape {tuple(tensor.shape)} made on "
                        "the CPU (e.g. torch.zeros(...) or torch.tensor(...) without device=x.device); create "
                        "tensors on the input's device: torch.zeros_like(x), x.new_zeros(...), device=x.device"
                    )
        if name == "numpy" and kinds[:1] == ["gpu"]:
            self.violate(".numpy() of a tensor on the GPU fails; call .cpu() first (or stay in torch)")
        result = func(*tree_map(to_real_device, args), **tree_map(to_real_device, kwargs))
        kind = self.result_kind(name, kinds, devices)
        if kind is not None:
            for leaf in tree_flatten(result)[0]:
                if isinstance(leaf, torch.Tensor) and not (leaf is (args[0] if args else None) and name.endswith("_")):
                    self.mark(leaf, kind)
        return result

    def result_kind(self, name: str, kinds: list[str | None], devices: list) -> str | None:
        if name in ("cpu", "numpy"):
            return "cpu"
        if name == "cuda":
            return "gpu"
        if devices:  # an explicit device wins: factories, *_like, new_*, .to(device)
            return "gpu" if is_gpu_device(devices[-1]) else "cpu"
        if name in ("to", "type_as") and len(kinds) > 1 and kinds[1] is not None:
            return kinds[1]  # x.to(other): other's device
        if not kinds:  # a factory without a device: torch.zeros(...), torch.tensor(...), torch.rand(...)
            return "cpu"
        if "gpu" in kinds:
            return "gpu"
        if all(kind == "cpu" for kind in kinds):
            return "cpu"
        return None

    def attribute(self, func, name: str, owner: str, args):
        tensor = args[0]
        kind = self.kind_of(tensor)
        if name == "__get__":
            if owner == "device" and kind == "gpu":
                return GPU
            if owner == "is_cuda" and kind == "gpu":
                return True
            result = func(*args)
            # a tensor read from a tensor's property (.grad, .data, .T, .mT) lives where the tensor lives
            if isinstance(result, torch.Tensor) and kind is not None and self.kind_of(result) is None:
                self.mark(result, kind)
            return result
        value = args[1]
        if owner in ("data", "grad") and kind == "gpu" and self.kind_of(value) == "cpu":
            self.violate(
                f"`.{owner} = ...` put a tensor made on the CPU into a tensor on the GPU; fill it in place "
                "(e.g. tensor.copy_(...), tensor.normal_(...)) or create the new values on its device"
            )
        result = func(*args)
        if owner == "data" and self.kind_of(value) is not None:
            self.mark(tensor, self.kind_of(value))
        return result


def module_tensors(module: torch.nn.Module) -> list[torch.Tensor]:
    return [*module.parameters(), *module.buffers()]


def gpu_tensors_in(values) -> list[torch.Tensor]:
    """The tensors among ``values`` (and the parameters and buffers of modules among them)."""
    found = []
    for leaf in tree_flatten(values)[0]:
        if isinstance(leaf, torch.Tensor):
            found.append(leaf)
        elif isinstance(leaf, torch.nn.Module):
            found += module_tensors(leaf)
    return found


SIMULATIONS: list[SimulatedGpu] = []  # the simulations now running (a callback into the grader marks its results)


@contextlib.contextmanager
def simulated_gpu(*values) -> Iterator[SimulatedGpu]:
    """Pretend that the tensors in ``values`` (and the modules' parameters and buffers) are on cuda:0."""
    mode = SimulatedGpu(gpu_tensors_in(values))
    real_from_numpy = torch.from_numpy

    def from_numpy(array):  # not a torch function, so the mode never sees it: its tensors are made on the CPU
        tensor = real_from_numpy(array)
        mode.mark(tensor, "cpu")
        return tensor

    SIMULATIONS.append(mode)
    torch.from_numpy = from_numpy
    try:
        with mode:
            yield mode
    finally:
        torch.from_numpy = real_from_numpy
        SIMULATIONS.remove(mode)


def run_on_simulated_gpu(function: Callable, *args, **kwargs) -> tuple[Any, list[str]]:
    """Call ``function(*args, **kwargs)`` with its tensor and module arguments on a simulated GPU.

    Returns ``(result, violations)``. The result is what the function returned, or None when it
    raised: an exception under the simulation (e.g. code that asks for a real CUDA device) proves
    nothing by itself, so it is not reported; a recorded violation before it still is. A returned
    tensor known to be made on the CPU is a violation too. An answer in the student's kernel
    (:class:`autograder.remote.client.Remote`) runs on the kernel's own simulated GPU.
    """
    if hasattr(type(function), "run_on_simulated_gpu"):
        return function.run_on_simulated_gpu(*args, **kwargs)
    with simulated_gpu(function, args, kwargs) as mode:  # a module called is on the GPU with its inputs
        try:
            result = function(*args, **kwargs)
        except Exception:  # noqa: BLE001 - inconclusive, see the docstring
            return None, mode.violations
        for leaf in tree_flatten(result)[0]:
            if isinstance(leaf, torch.Tensor) and not mode.on_gpu(leaf):
                mode.violate(
                    "the result was made on the CPU while the inputs were on the GPU; return a tensor on the "
                    "input's device (create it with torch.zeros_like(x), x.new_zeros(...) or device=x.device)"
                )
    return result, mode.violations


def module_on_simulated_gpu(
    module_class: type[torch.nn.Module], args: tuple, kwargs: dict, x: torch.Tensor, modes: list[bool]
) -> tuple[list[str], list[bool | None], dict[str, bool]]:
    """Build ``module_class(*args, **kwargs)``, count its parameters and buffers as moved to the GPU (as
    ``module.to("cuda")`` would), and run ``x`` (on the GPU) through it in each of ``modes`` (True: train).

    Returns (violations, whether each output is on the GPU (None where the forward raised), whether each
    parameter and buffer still is). A class in the student's kernel runs there.
    """
    if hasattr(type(module_class), "module_on_simulated_gpu"):
        return module_class.module_on_simulated_gpu(args, kwargs, x, modes)
    outputs: list[bool | None] = []
    with simulated_gpu(x) as mode:
        module = module_class(*args, **kwargs)
        for tensor in module_tensors(module):
            mode.mark(tensor, "gpu")
        for training in modes:
            module.train(training)
            try:
                outputs.append(mode.on_gpu(module(x)))
            except Exception:  # noqa: BLE001 - an error under the simulation proves nothing by itself
                outputs.append(None)
    tensors = {key: mode.on_gpu(value) for key, value in [*module.named_parameters(), *module.named_buffers()]}
    return mode.violations, outputs, tensors
