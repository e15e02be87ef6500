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
import contextlib
import importlib
import inspect
import io
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.modules import module as module_globals
from torch.utils.hooks import RemovableHandle

from autograder.battery import devices, forbidden, inputs, models
from autograder.battery.snapshot import GLOBAL_HOOKS, HOOK_DICTS
from autograder.remote import agent, wire
from autograder.remote.wire import (
    CONTAINER,
    GENERATOR,
    HANDLE,
    LEAF,
    MODEL,
    MODULE,
    PLAIN,
    TENSOR,
    dumps,
    from_bytes,
    is_tagged,
    loads,
    tensor_entry,
    to_bytes,
)

BOOT = """\
def _dlcourse_boot(sources, libraries, namespace):
    import sys, types
    for name, source in libraries:  # modules the grader's models are defined in, under their own names
        parts = name.split(".")
        for depth in range(1, len(parts)):
            package = ".".join(parts[:depth])
            if package not in sys.modules:
                sys.modules[package] = types.ModuleType(package)
                sys.modules[package].__path__ = []
        if name not in sys.modules:
            library = types.ModuleType(name)
            sys.modules[name] = library
            exec(compile(source, name, "exec"), library.__dict__)
    module = types.ModuleType("_dlcourse_agent")
    sys.modules["_dlcourse_agent"] = module
    for name, source in sources:
        exec(compile(source, name, "exec"), module.__dict__)
    module.NAMESPACE = namespace
    return module
_dlcourse_agent = _dlcourse_boot({sources!r}, {libraries!r}, globals())
del _dlcourse_boot
"""
MODEL_SOURCES = [(module.__name__, Path(module.__file__).read_text()) for module in (inputs, models)]
AGENT_SOURCES = [(module.__name__, Path(module.__file__).read_text()) for module in (wire, forbidden, devices, agent)]


class OutOfTime(BaseException):
    """The hidden tests' time ran out inside a call into the notebook (not an error of the answer)."""


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
    """Requests to the agent in one kernel; ``execute(code)`` runs code there and returns its stdout.

    With ``folder`` (one the kernel can read and write), requests and replies go through files
    there and only their names through the messaging: tensors of megabytes cross in milliseconds.
    """

    def __init__(
        self,
        execute: Callable[[str], str],
        folder: Path | None = None,
        start: Callable[[str], Callable[[bool], None]] | None = None,
        time_left: Callable[[], float] = lambda: 600.0,
    ):
        self.execute = execute
        self.folder = folder
        self.start = start  # runs code in the kernel without waiting; returns finish(interrupt)
        self.time_left = time_left
        self.connection: socket.socket | None = None
        self.booted = False
        self.lent: list[dict[str, str]] = []  # names bound to lent PyTorch functions for the calls now made

    def boot(self) -> None:
        self.execute(BOOT.format(sources=AGENT_SOURCES, libraries=MODEL_SOURCES))
        self.booted = True

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Serve the block's requests over a Unix socket to one running ``serve_socket`` in the kernel:
        a call then costs a fraction of a millisecond instead of a message round trip."""
        if self.folder is None or self.start is None:
            yield
            return
        if not self.booted:
            self.boot()
        path = self.folder / "agent.sock"
        path.unlink(missing_ok=True)
        finish = self.start(f"_dlcourse_agent.serve_socket({str(path)!r})")
        interrupt = False  # the kernel ends serving when told; interrupted only when it may not have
        try:
            self.connection = connect(path, min(CONNECT_SECONDS, self.time_left()))
            interrupt = self.connection is None
            yield
        except (OutOfTime, KernelUnreadable):
            interrupt = True
            raise
        finally:
            connection, self.connection = self.connection, None
            if connection is not None:
                with contextlib.suppress(OSError):
                    end = to_bytes({"op": "end"})
                    connection.sendall(len(end).to_bytes(8, "big") + end)
                connection.close()
            finish(interrupt)

    def over_socket(self, message: dict) -> dict:
        data = to_bytes(message)
        self.connection.settimeout(max(0.01, self.time_left()))
        try:
            self.connection.sendall(len(data).to_bytes(8, "big") + data)
            size = int.from_bytes(receive_exactly(self.connection, 8), "big")
            if size > MAX_REPLY_BYTES:
                raise KernelUnreadable(f"the kernel's answer is {size:,} bytes long")
            payload = receive_exactly(self.connection, size)
        except TimeoutError:
            raise OutOfTime from None
        except OSError as error:
            raise KernelUnreadable(f"the kernel's agent stopped answering ({type(error).__name__})") from None
        try:
            return from_bytes(payload)
        except Exception as error:  # noqa: BLE001 - whatever the kernel sent, it is not an answer
            raise KernelUnreadable(f"the kernel's answer could not be read ({type(error).__name__})") from None

    def request(self, **message) -> dict:
        if not self.booted:
            self.boot()
        if self.connection is not None:
            reply = self.over_socket(message)
        elif self.folder is None:
            reply = self.answer_of(self.execute(f"_dlcourse_agent.serve({dumps(message)!r})"), loads)
        else:
            sent, received = self.folder / "request.pt", self.folder / "reply.pt"
            received.unlink(missing_ok=True)
            sent.write_bytes(to_bytes(message))
            stdout = self.execute(f"_dlcourse_agent.serve_file({str(sent)!r}, {str(received)!r})")
            reply = self.answer_of(stdout, lambda _: from_bytes(received.read_bytes()))
        if not isinstance(reply, dict):
            raise KernelUnreadable("the kernel's answer could not be read")
        return reply

    @staticmethod
    def answer_of(stdout: str, read: Callable[[str], object]):
        lines = [line for line in stdout.splitlines() if line.startswith(agent.MARK)]
        if not lines:
            raise KernelUnreadable("the notebook's kernel did not answer the grader's call; was something replaced?")
        try:
            return read(lines[-1].removeprefix(agent.MARK))
        except Exception as error:  # noqa: BLE001 - whatever the kernel sent, it is not an answer
            raise KernelUnreadable(f"the kernel's answer could not be read ({type(error).__name__})") from None

    def receive(self, value, leaves: list[torch.Tensor] = (), containers: list = (), models: list = ()):
        """A copy of a value from the kernel; a :class:`Remote` for an object that stays there."""
        if is_tagged(value, TENSOR):
            return tensor_from(value)
        if is_tagged(value, HANDLE):
            return Remote(self, value)
        if is_tagged(value, LEAF):
            return leaves[value[LEAF]]
        if is_tagged(value, CONTAINER):
            return containers[value[CONTAINER]]
        if is_tagged(value, MODEL):
            return models[value[MODEL]]
        if type(value) in (list, tuple):
            return type(value)(self.receive(item, leaves, containers, models) for item in value)
        if type(value) is dict:
            return {key: self.receive(item, leaves, containers, models) for key, item in value.items()}
        if type(value) in PLAIN:
            return value
        raise KernelUnreadable(f"the kernel sent a {type(value).__name__}")

    def call(self, target: int, args: tuple, kwargs: dict, simulate_gpu: bool = False):
        """Call a kernel function on copies of the arguments, then replay on the grader's objects what it did.

        Forbidden calls watched by :func:`autograder.battery.forbidden.forbidding` are watched in the
        kernel too; with ``simulate_gpu`` the call runs on a simulated GPU there and ``(result,
        violations)`` is returned.
        """
        leaves: list[torch.Tensor] = []
        containers: list = []
        modules: list[nn.Module] = []
        message = {
            "op": "call",
            "target": target,
            "args": send(args, leaves, containers, modules),
            "kwargs": send(kwargs, leaves, containers, modules),
            "forbid": {qualified_name(f): name for watch in forbidden.WATCHES for f, name in watch.functions.items()},
            "simulate_gpu": simulate_gpu,
            "lend": {name: qualified for lent in self.lent for name, qualified in lent.items()},
        }
        reply = self.request(**message)
        for leaf, state in zip(leaves, reply.get("args", []), strict=False):
            replay(leaf, state)
        for container, contents in zip(containers, reply.get("containers", []), strict=False):
            if contents is not None:
                refill(container, self.receive(contents, leaves, containers, modules))
        for module, report in zip(modules, reply.get("modules", []), strict=False):
            replay_module(module, report)
        replay_global_hooks(reply.get("global_hooks", []))
        for watch in forbidden.WATCHES:
            watch.called.extend(name for name in reply.get("called", []) if name not in watch.called)
        if "error" in reply:
            raise exception_from(reply["error"])
        result = self.receive(reply["result"], leaves, containers, modules)
        if reply.get("call"):
            inputs = [leaf for leaf in leaves if leaf.requires_grad]
            result = linked(self, reply["call"], reply["result"], result, inputs)
        return (result, list(reply.get("violations", []))) if simulate_gpu else result


MAX_REPLY_BYTES = 2**31
CONNECT_SECONDS = 10.0  # the agent opens its socket as its first act; a kernel between cells is idle


def connect(path: Path, seconds: float) -> socket.socket | None:
    """A connection to the agent's socket once it exists; None when it does not appear in time."""
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        if path.exists():
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                connection.connect(str(path))
                return connection
            except OSError:
                connection.close()
        time.sleep(0.002)
    return None


def receive_exactly(connection: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = connection.recv(min(size, 1 << 20))
        if not chunk:
            raise ConnectionError("the kernel closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


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


def qualified_name(function) -> str:
    """``module:qualname`` of a library function, by which the kernel finds its own copy."""
    function = inspect.unwrap(function)
    module = getattr(function, "__module__", None) or getattr(getattr(function, "__self__", None), "__name__", "")
    return f"{module}:{function.__qualname__}"


def resolve_here(qualified: str):
    module, _, path = qualified.partition(":")
    value = importlib.import_module(module)
    for part in path.split("."):
        value = getattr(value, part)
    return value


def send(value, leaves: list[torch.Tensor], containers: list, modules: list):
    """The grader's argument as a message; tensors, lists, dicts and models collected in the order the kernel
    sees them. A model goes whole (PyTorch's pickle): the kernel trusts the grader, never the reverse."""
    if isinstance(value, torch.Tensor):
        leaves.append(value)
        return tensor_entry(value)
    if isinstance(value, Remote):
        return {HANDLE: value._entry[HANDLE]}
    if isinstance(value, nn.Module):
        modules.append(value)
        buffer = io.BytesIO()
        torch.save(value, buffer)
        return {MODULE: buffer.getvalue()}
    if inspect.isgenerator(value):
        return {GENERATOR: [send(item, leaves, containers, modules) for item in value]}
    if type(value) in PLAIN:
        return value
    if type(value) is tuple:
        return tuple(send(item, leaves, containers, modules) for item in value)
    if type(value) is list:
        containers.append(value)
        return [send(item, leaves, containers, modules) for item in value]
    if type(value) is dict:
        containers.append(value)
        return {key: send(item, leaves, containers, modules) for key, item in value.items()}
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
    if not leaf.is_leaf:
        return
    grad = state["grad"]
    if grad is None:
        leaf.grad = None
    elif leaf.grad is None or state["grad_swapped"] or leaf.grad.shape != grad.shape or leaf.grad.dtype != grad.dtype:
        leaf.grad = grad.to(leaf.device)
    elif not torch.equal(leaf.grad, grad.to(leaf.grad.device)):
        leaf.grad.copy_(grad)


def replay_module(module: nn.Module, report: dict) -> None:
    """Do to the grader's model what the call did to its copy: modes, hooks, parameters and buffers."""
    for sub, training, hooks in zip(module.modules(), report["modes"], report["hooks"], strict=False):
        sub.training = training
        for kind, count in zip(HOOK_DICTS, hooks, strict=True):
            match_hook_count(getattr(sub, kind), count)
    for kind, name, state in report["tensors"]:
        owner_name, _, attribute = name.rpartition(".")
        owner = module.get_submodule(owner_name)
        if state.get("removed"):
            delattr(owner, attribute)
        elif "replaced" in state:
            values = state["replaced"]
            if kind == "parameter":
                owner.register_parameter(attribute, nn.Parameter(values, requires_grad=state["requires_grad"]))
            else:
                owner.register_buffer(attribute, values)
        else:
            replay(getattr(owner, attribute), state)


def match_hook_count(hooks: dict, count: int) -> None:
    """Leave ``count`` hooks in a hook dict: hooks that do nothing stand for the ones the kernel's copy has."""
    while len(hooks) > count:
        hooks.popitem()
    while len(hooks) < count:
        handle = RemovableHandle(hooks)
        hooks[handle.id] = do_nothing


def do_nothing(*args, **kwargs) -> None:
    return None


def replay_global_hooks(changes: list[int]) -> None:
    for kind, change in zip(GLOBAL_HOOKS, changes, strict=False):
        hooks = getattr(module_globals, kind)
        match_hook_count(hooks, len(hooks) + change)


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


def needing_grad(entry, value) -> Iterator[torch.Tensor]:
    """The tensors of a result that the kernel sent requiring grad, in the kernel's order."""
    if is_tagged(entry, TENSOR):
        if entry["grad"]:
            yield value
    elif type(entry) in (list, tuple):
        for item, received in zip(entry, value, strict=True):
            yield from needing_grad(item, received)
    elif type(entry) is dict and not any(is_tagged(entry, tag) for tag in (HANDLE, LEAF, CONTAINER, MODEL)):
        for key, item in entry.items():
            yield from needing_grad(item, value[key])


def linked(kernel: Kernel, call: int, entry, result, inputs: list[torch.Tensor]):
    """``result`` with its tensors that require grad made outputs of one :class:`RemoteBackward`."""
    needing = list(needing_grad(entry, result))
    anchor = torch.zeros((), requires_grad=True)  # so the outputs require grad even when no input does
    outputs = iter(RemoteBackward.apply(Link(kernel, call, needing), anchor, *inputs))
    replaced = {id(tensor): next(outputs) for tensor in needing}
    return substitute(result, replaced)


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

    def run_on_simulated_gpu(self, *args, **kwargs):
        """(result, violations) of a call on a simulated GPU in the kernel (see autograder.battery.devices)."""
        return self._kernel.call(self._entry[HANDLE], args, kwargs, simulate_gpu=True)

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
        self.handles: dict[str, Remote] = {}  # functions and objects looked up once per hidden test

    def __contains__(self, name: str) -> bool:
        return self.kernel.request(op="lookup", name=name).get("found", False)

    def __getitem__(self, name: str):
        lent = {key: value for lent in self.kernel.lent for key, value in lent.items()}
        if name in lent:
            return resolve_here(lent[name])
        if name in self.handles:
            return self.handles[name]
        reply = self.kernel.request(op="lookup", name=name)
        if not reply.get("found"):
            raise KeyError(name)
        value = self.kernel.receive(reply["value"])
        if isinstance(value, Remote):
            self.handles[name] = value
        return value

    def get(self, name: str, default=None):
        try:
            return self[name]
        except KeyError:
            return default

    @contextlib.contextmanager
    def lending(self, replacements: dict) -> Iterator[None]:
        """Lend PyTorch functions under these names to every call made in the block (bound in the kernel for
        the call's duration, then the notebook's own bindings restored)."""
        lent = {}
        for name, value in replacements.items():
            if not (callable(value) and getattr(inspect.unwrap(value), "__module__", "").startswith("torch")):
                raise TypeError(f"only PyTorch's functions can be lent to the notebook, not {value!r}")
            lent[name] = qualified_name(value)
        self.kernel.lent.append(lent)
        try:
            yield
        finally:
            self.kernel.lent.remove(lent)

    def __setitem__(self, name: str, value) -> None:
        """Bind a name in the notebook: to one of its own objects, or to a library function lent to it."""
        self.handles.pop(name, None)
        if isinstance(value, Remote):
            reply = self.kernel.request(op="bind", name=name, handle=value._entry[HANDLE])
        elif callable(value) and getattr(inspect.unwrap(value), "__module__", "").startswith("torch"):
            reply = self.kernel.request(op="bind", name=name, qualified=qualified_name(value))
        else:
            raise TypeError(f"only the notebook's own objects and PyTorch's functions can be lent, not {value!r}")
        if "error" in reply:
            raise exception_from(reply["error"])

    def update(self, values: dict) -> None:
        for name, value in values.items():
            self[name] = value

    def pop(self, name: str, default=None):
        value = self.get(name, default)
        self.handles.pop(name, None)
        self.kernel.request(op="bind", name=name)
        return value
