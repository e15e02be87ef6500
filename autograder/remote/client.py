"""The grader's end of the calls into a student's kernel.

:class:`Kernel` talks to the agent (:mod:`autograder.remote.agent`) in one kernel through a
function that runs one line of code there and returns what it printed.
:class:`RemoteNamespace` is the notebook's namespace as the hidden tests see it: plain values
and tensors arrive as copies, functions and other objects as :class:`Remote` handles that
forward calls and attribute reads. After each call the grader replays on its own tensors
what the call did to their copies (values written in place, storage swapped, version
counter, requires_grad, .grad), and a result that requires grad is linked to the
arguments by :class:`RemoteBackward`, whose backward pass runs in the kernel. So a hidden
test reads as before, ``check_standardize(globals())``, and everything it compares and
prints happens here.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from autograder.remote import agent, wire
from autograder.remote.wire import CONTAINER, HANDLE, LEAF, PLAIN, TENSOR, dumps, is_tagged, loads, tensor_entry

BOOT = """\
def _dlcourse_boot(sources, namespace):
    import sys, types
    module = types.ModuleType("_dlcourse_agent")
    for name, source in sources:
        exec(compile(source, name, "exec"), module.__dict__)
    module.NAMESPACE = namespace
    sys.modules["_dlcourse_agent"] = module
    return module
_dlcourse_agent = _dlcourse_boot({sources!r}, globals())
del _dlcourse_boot
"""
AGENT_SOURCES = [
    ("_dlcourse_wire", Path(wire.__file__).read_text()),
    ("_dlcourse_agent", Path(agent.__file__).read_text()),
]


class KernelUnreadable(BaseException):
    """The kernel's answer could not be read: the notebook broke or replaced the grader's agent.

    A BaseException, so that no ``except Exception`` of a hidden test takes it for an error of
    the answer: the hidden test stops, and the grader reports it.
    """


class StudentError(Exception):
    """An exception the student's code raised whose type is not a Python builtin."""


def exception_from(entry: dict) -> Exception:
    kind = getattr(builtins, entry[wire.ERROR], None)
    if isinstance(kind, type) and issubclass(kind, Exception):
        return kind(entry["message"])
    return StudentError(f"{entry[wire.ERROR]}: {entry['message']}")


class Kernel:
    """Requests to the agent in one kernel; ``execute(code)`` runs code there and returns its stdout."""

    def __init__(self, execute: Callable[[str], str]):
        self.execute = execute
        self.booted = False

    def boot(self) -> None:
        self.execute(BOOT.format(sources=AGENT_SOURCES))
        self.booted = True

    def request(self, **message) -> dict:
        if not self.booted:
            self.boot()
        stdout = self.execute(f"_dlcourse_agent.serve({dumps(message)!r})")
        lines = [line for line in stdout.splitlines() if line.startswith(agent.MARK)]
        if not lines:
            raise KernelUnreadable("the notebook's kernel did not answer the grader's call; was something replaced?")
        try:
            reply = loads(lines[-1].removeprefix(agent.MARK))
        except Exception as error:  # noqa: BLE001 - whatever the kernel sent, it is not an answer
            raise KernelUnreadable(f"the kernel's answer could not be read ({type(error).__name__})") from None
        if not isinstance(reply, dict):
            raise KernelUnreadable("the kernel's answer could not be read")
        return reply

    def receive(self, value, leaves: list[torch.Tensor] = (), containers: list = ()):
        """A copy of a value from the kernel; a :class:`Remote` for an object that stays there."""
        if is_tagged(value, TENSOR):
            return tensor_from(value)
        if is_tagged(value, HANDLE):
            return Remote(self, value)
        if is_tagged(value, LEAF):
            return leaves[value[LEAF]]
        if is_tagged(value, CONTAINER):
            return containers[value[CONTAINER]]
        if type(value) in (list, tuple):
            return type(value)(self.receive(item, leaves, containers) for item in value)
        if type(value) is dict:
            return {key: self.receive(item, leaves, containers) for key, item in value.items()}
        if type(value) in PLAIN:
            return value
        raise KernelUnreadable(f"the kernel sent a {type(value).__name__}")

    def call(self, target: int, args: tuple, kwargs: dict):
        leaves: list[torch.Tensor] = []
        containers: list = []
        message = {
            "op": "call",
            "target": target,
            "args": send(args, leaves, containers),
            "kwargs": send(kwargs, leaves, containers),
        }
        reply = self.request(**message)
        for leaf, state in zip(leaves, reply.get("args", []), strict=False):
            replay(leaf, state)
        for container, contents in zip(containers, reply.get("containers", []), strict=False):
            if contents is not None:
                refill(container, self.receive(contents, leaves, containers))
        if "error" in reply:
            raise exception_from(reply["error"])
        result = self.receive(reply["result"])
        if reply.get("call"):
            result = linked(
                self, reply["call"], reply["result"], result, [leaf for leaf in leaves if leaf.requires_grad]
            )
        return result


def tensor_from(entry: dict) -> torch.Tensor:
    """A copy of a kernel tensor; a parameter stays a parameter, with its requires_grad and .grad."""
    tensor = entry[TENSOR]
    if entry["parameter"]:
        tensor = torch.nn.Parameter(tensor, requires_grad=entry["grad"])
    elif entry["grad"]:
        tensor = tensor.requires_grad_(True)
    if entry["dot_grad"] is not None and tensor.requires_grad:
        tensor.grad = entry["dot_grad"]
    return tensor


def send(value, leaves: list[torch.Tensor], containers: list):
    """The grader's argument as a message; tensors, lists and dicts collected in the order the kernel sees them."""
    if isinstance(value, torch.Tensor):
        leaves.append(value)
        return tensor_entry(value)
    if isinstance(value, Remote):
        return {HANDLE: value._entry[HANDLE]}
    if type(value) in PLAIN:
        return value
    if type(value) is tuple:
        return tuple(send(item, leaves, containers) for item in value)
    if type(value) is list:
        containers.append(value)
        return [send(item, leaves, containers) for item in value]
    if type(value) is dict:
        containers.append(value)
        return {key: send(item, leaves, containers) for key, item in value.items()}
    raise TypeError(f"a {type(value).__name__} cannot be sent to the student's kernel")


def replay(leaf: torch.Tensor, state: dict) -> None:
    """Do to the grader's tensor what the student's call did to its copy."""
    if state["values"] is not None or state["version"]:
        values = leaf.detach() if state["values"] is None else state["values"].to(leaf.device)
        if state["swapped"] or values.shape != leaf.shape or values.dtype != leaf.dtype:
            leaf.data = values
        else:
            with torch.no_grad():
                leaf.copy_(values)
    if leaf.is_leaf and state["requires_grad"] != leaf.requires_grad:
        leaf.requires_grad_(state["requires_grad"])
    if state["grad"] is not None and leaf.is_leaf:
        leaf.grad = state["grad"].to(leaf.device)


def refill(container: list | dict, contents: list | dict) -> None:
    """Change the grader's list or dict in place as the call changed its copy."""
    if isinstance(container, dict):
        container.clear()
        container.update(contents)
    else:
        container[:] = contents


@dataclass
class Link:
    kernel: Kernel
    call: int
    outputs: list[torch.Tensor]


class RemoteBackward(torch.autograd.Function):
    """Outputs computed in the kernel; their backward pass runs there and returns the inputs' gradients."""

    @staticmethod
    def forward(ctx, link: Link, anchor: torch.Tensor, *inputs: torch.Tensor):
        ctx.link = link
        return tuple(output.clone() for output in link.outputs)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor):
        reply = ctx.link.kernel.request(op="backward", call=ctx.link.call, grads=[grad.detach() for grad in grads])
        if "error" in reply:
            raise exception_from(reply["error"])
        return (None, None, *reply["grads"])


def flagged(entry) -> Iterator[bool]:
    """For each tensor of a reply, in order: whether it requires grad."""
    if is_tagged(entry, TENSOR):
        yield entry["grad"]
    elif type(entry) in (list, tuple):
        for item in entry:
            yield from flagged(item)
    elif type(entry) is dict and not is_tagged(entry, HANDLE):
        for item in entry.values():
            yield from flagged(item)


def linked(kernel: Kernel, call: int, entry, result, inputs: list[torch.Tensor]):
    """``result`` with its tensors that require grad made outputs of one :class:`RemoteBackward`."""
    tensors = list(tensors_of(result))
    needing = [tensor for tensor, grad in zip(tensors, flagged(entry), strict=True) if grad]
    anchor = torch.zeros((), requires_grad=True)  # so the outputs require grad even when no input does
    outputs = iter(RemoteBackward.apply(Link(kernel, call, needing), anchor, *inputs))
    replaced = {id(tensor): next(outputs) for tensor in needing}
    return substitute(result, replaced)


def tensors_of(value) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif type(value) in (list, tuple):
        for item in value:
            yield from tensors_of(item)
    elif type(value) is dict:
        for item in value.values():
            yield from tensors_of(item)


def substitute(value, replaced: dict):
    if isinstance(value, torch.Tensor):
        return replaced.get(id(value), value)
    if type(value) in (list, tuple):
        return type(value)(substitute(item, replaced) for item in value)
    if type(value) is dict:
        return {key: substitute(item, replaced) for key, item in value.items()}
    return value


class Remote:
    """An object that stays in the student's kernel: calls and attribute reads are forwarded."""

    def __init__(self, kernel: Kernel, entry: dict):
        self._kernel = kernel
        self._entry = entry

    @property
    def __name__(self) -> str:
        return self._entry["type"].rsplit(".", 1)[-1]

    def __call__(self, *args, **kwargs):
        if not self._entry["callable"]:
            raise TypeError(f"'{self.__name__}' object is not callable")
        return self._kernel.call(self._entry[HANDLE], args, kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        reply = self._kernel.request(op="getattr", target=self._entry[HANDLE], name=name)
        if "error" in reply:
            raise exception_from(reply["error"])
        return self._kernel.receive(reply["value"])

    def __repr__(self) -> str:
        return f"<{self._entry['type']} in the student's kernel>"


class RemoteNamespace:
    """The notebook's namespace, read through the kernel: what ``globals()`` is to a hidden test."""

    def __init__(self, kernel: Kernel):
        self.kernel = kernel

    def __contains__(self, name: str) -> bool:
        return self.kernel.request(op="lookup", name=name).get("found", False)

    def __getitem__(self, name: str):
        reply = self.kernel.request(op="lookup", name=name)
        if not reply.get("found"):
            raise KeyError(name)
        return self.kernel.receive(reply["value"])

    def get(self, name: str, default=None):
        try:
            return self[name]
        except KeyError:
            return default
