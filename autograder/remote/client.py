"""The grader's end of the calls into a student's kernel.

:class:`Kernel` talks to the agent (:mod:`autograder.remote.agent`) in one kernel through a
function that runs one line of code there and returns what it printed.
:class:`RemoteNamespace` is the notebook's namespace as the hidden tests see it: plain values
and tensors arrive as copies, functions and other objects as :class:`Remote` handles that
forward calls and attribute reads. After each call the grader replays on its own tensors
what the call did to their copies (values written in place, storage swapped, version
counter, requires_grad, .grad), and a result that requires grad is linked to the
arguments by :class:`~autograder.remote.wire.AcrossBackward`, whose backward pass runs in the
kernel. A module of the notebook's arrives as a :class:`Mirror` (an ``nn.Module`` here whose
parameters, buffers and modes follow the kernel's; calling it runs there), a class as a
:class:`RemoteClass`; a function of the grader's given to the notebook (as an argument, or lent
under a name) is called back from the kernel. So a hidden test reads as before,
``check_standardize(globals())``, and everything it compares and prints happens here.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import importlib
import importlib.util
import inspect
import io
import itertools
import socket
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn
from torch.nn.modules import module as module_globals
from torch.utils.hooks import RemovableHandle

from autograder.battery import devices, forbidden, inputs, models
from autograder.battery.snapshot import GLOBAL_HOOKS, HOOK_DICTS
from autograder.remote import wire
from autograder.remote.wire import (
    CALLBACK,
    CONTAINER,
    GENERATOR,
    HANDLE,
    LEAF,
    MODEL,
    MODULE,
    PLAIN,
    TENSOR,
    FrameTooLong,
    RandomState,
    dumps,
    error_entry,
    from_bytes,
    gradients_of,
    is_tagged,
    linked,
    loads,
    receive_frame,
    replay,
    send_frame,
    tensor_after,
    tensor_before,
    tensor_entry,
    tensors_in,
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
AGENT = "autograder.remote.agent"  # never imported here: its source runs in the kernel only
AGENT_SOURCES = [(module.__name__, Path(module.__file__).read_text()) for module in (wire, forbidden, devices)] + [
    (AGENT, Path(importlib.util.find_spec(AGENT).origin).read_text())
]


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
        self.lent: list[dict[str, dict]] = []  # names lent to the notebook for the calls now made
        self.callbacks: dict[int, Callable] = {}  # key -> a function of the grader's the kernel may call
        self.callback_errors: dict[str, Exception] = {}  # exceptions the grader's functions raised, by type name
        self.graphs: dict[int, tuple[list, list]] = {}  # callback call -> (outputs, inputs that require grad)
        self.mirrors: weakref.WeakValueDictionary[int, Mirror] = weakref.WeakValueDictionary()
        self.released: list[int] = []  # mirrors gone here, to be let go in the kernel with the next request
        self.broken = False  # an exchange on the socket was cut off half way: the next answer cannot be trusted
        self.counter = itertools.count(1)
        self.random = RandomState()  # the global generator follows each call both ways

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
            self.random.agreed = None
            self.connection = connect(path, min(CONNECT_SECONDS, self.time_left()))
            interrupt = self.connection is None
            yield
        except (OutOfTime, KernelUnreadable):
            interrupt = True
            raise
        finally:
            interrupt = interrupt or self.broken
            self.broken = False
            self.callbacks.clear()  # a function lent in one hidden part is gone in the next, if the notebook kept it
            self.graphs.clear()
            self.mirrors.clear()  # the kernel lets go of everything of this hidden part when it ends
            self.released.clear()
            connection, self.connection = self.connection, None
            if connection is not None and not interrupt:
                with contextlib.suppress(OSError):
                    end = to_bytes({"op": "end"})
                    connection.sendall(len(end).to_bytes(8, "big") + end)
                connection.close()
            finish(interrupt)

    def over_socket(self, message: dict) -> dict:
        """Send a request; answer the kernel's callbacks until its answer comes. Anything raised half way (time
        out, a signal, a callback's BaseException) leaves the exchange cut: the session then interrupts."""
        if self.broken:
            raise KernelUnreadable("the exchange with the kernel was cut off")
        self.broken = True
        self.send_over_socket(message)
        while True:
            frame = self.receive_over_socket()
            if isinstance(frame, dict) and isinstance(frame.get("callback"), dict):
                self.send_over_socket({"answer": self.answer_callback(frame["callback"])})
                continue
            self.broken = False
            return frame

    def send_over_socket(self, message: dict) -> None:
        self.connection.settimeout(max(0.01, self.time_left()))
        try:
            send_frame(self.connection, message)
        except TimeoutError:
            raise OutOfTime from None
        except OSError as error:
            raise KernelUnreadable(f"the kernel's agent stopped answering ({type(error).__name__})") from None

    def receive_over_socket(self):
        self.connection.settimeout(max(0.01, self.time_left()))
        try:
            return receive_frame(self.connection, largest=MAX_REPLY_BYTES)
        except TimeoutError:
            raise OutOfTime from None
        except OSError as error:
            raise KernelUnreadable(f"the kernel's agent stopped answering ({type(error).__name__})") from None
        except FrameTooLong as error:
            raise KernelUnreadable(f"the kernel's answer is too long: {error}") from None
        except Exception as error:  # noqa: BLE001 - whatever the kernel sent, it is not an answer
            raise KernelUnreadable(f"the kernel's answer could not be read ({type(error).__name__})") from None

    def callback(self, function: Callable) -> dict:
        """A function of the grader's, as the kernel may call it back."""
        key = id(function)
        self.callbacks[key] = function
        name = getattr(function, "__name__", None) or type(function).__name__
        return {CALLBACK: key, "name": name}

    def answer_callback(self, request: dict) -> dict:
        """Run a function of the grader's the kernel called (or its backward pass) on copies of the arguments."""
        if request.get("op") == "backward":
            outputs, inputs = self.graphs[request["call"]]
            try:
                return {"grads": gradients_of(outputs, inputs, request["grads"])}
            except Exception as error:  # noqa: BLE001
                return {"error": error_entry(error)}
        if request.get("op") != "call":
            raise KernelUnreadable("the kernel asked the grader for something it does not answer")
        function = self.callbacks.get(request.get("target"))
        if function is None:
            message = "a function the grader lent for an earlier test was called; it is lent for one test only"
            return {"error": error_entry(LookupError(message))}
        fresh: list[torch.Tensor] = []
        args = self.receive(request["args"], fresh=fresh)
        kwargs = self.receive(request["kwargs"], fresh=fresh)
        before = [tensor_before(tensor) for tensor in fresh]
        reply: dict = {}
        self.random.incoming(request.get("rng"))
        if isinstance(function, ModuleCallback) and isinstance(request.get("modes"), list):
            function.set_modes(request["modes"])
        with torch.set_grad_enabled(bool(request.get("grad_enabled", True))):
            try:
                result = function(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - raised in the notebook's call, as in-process
                self.callback_errors[type(error).__name__] = error
                reply["error"] = error_entry(error)
        reply["args"] = [tensor_after(tensor, state) for tensor, state in zip(fresh, before, strict=True)]
        reply["rng"] = self.random.outgoing()
        if "error" in reply:
            return reply
        objects: list = []
        reply["result"] = send(result, [], [], objects, self)
        if objects:
            raise TypeError("a function of the grader's returned a model, which cannot be sent back")
        outputs = [tensor for tensor in tensors_in(result) if tensor.requires_grad]
        if outputs:
            reply["call"] = next(self.counter)
            inputs = [tensor for tensor in fresh if tensor.requires_grad]
            if isinstance(function, ModuleCallback):
                inputs += function.graph_inputs()
            self.graphs[reply["call"]] = (outputs, inputs)
        return reply

    def request(self, **message) -> dict:
        if not self.booted:
            self.boot()
        if self.released:
            message["released"], self.released = self.released, []
        pushed = {
            key: change for key, mirror in list(self.mirrors.items()) if mirror._root and (change := mirror._changes())
        }
        if pushed:
            message["push"] = pushed
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
        for key, report in reply.get("mirrors", {}).items():
            mirror = self.mirrors.get(key)
            if mirror is not None:
                mirror._follow(report)
        return reply

    @staticmethod
    def answer_of(stdout: str, read: Callable[[str], object]):
        lines = [line for line in stdout.splitlines() if line.startswith(wire.MARK)]
        if not lines:
            raise KernelUnreadable("the notebook's kernel did not answer the grader's call; was something replaced?")
        try:
            return read(lines[-1].removeprefix(wire.MARK))
        except Exception as error:  # noqa: BLE001 - whatever the kernel sent, it is not an answer
            raise KernelUnreadable(f"the kernel's answer could not be read ({type(error).__name__})") from None

    def receive(self, value, leaves: list[torch.Tensor] = (), containers: list = (), models: list = (), fresh=None):
        """A copy of a value from the kernel (its tensors collected in ``fresh`` when given); a :class:`Mirror`
        for a module, a :class:`RemoteClass` for a class, a :class:`Remote` for another object that stays there."""
        if is_tagged(value, TENSOR):
            tensor = tensor_from(value)
            if fresh is not None:
                fresh.append(tensor)
            return tensor
        if is_tagged(value, HANDLE):
            if isinstance(value.get("tree"), dict):
                return self.mirror(value["tree"])
            if value.get("class"):
                return RemoteClass(self, value)
            return Remote(self, value)
        if is_tagged(value, LEAF):
            return leaves[value[LEAF]]
        if is_tagged(value, CONTAINER):
            return containers[value[CONTAINER]]
        if is_tagged(value, MODEL):
            return models[value[MODEL]]
        if type(value) in (list, tuple):
            return type(value)(self.receive(item, leaves, containers, models, fresh) for item in value)
        if type(value) is dict:
            return {key: self.receive(item, leaves, containers, models, fresh) for key, item in value.items()}
        if type(value) in PLAIN:
            return value
        raise KernelUnreadable(f"the kernel sent a {type(value).__name__}")

    def mirror(self, tree: dict, root: bool = True) -> Mirror:
        """The grader's mirror of a module of the notebook's: the same one each time it arrives. A root (a module
        the kernel sent, not only as a submodule) is kept in step by the kernel's reports and pushes changes."""
        mirror = self.mirrors.get(tree["key"])
        if mirror is None and tree.get("mirrored"):  # sent by its key, but this side let its mirror go meanwhile
            tree = self.request(op="tree", handle=tree["key"])["tree"]
        if mirror is None:
            mirror = mirror_class(tree)(self, tree)
            self.mirrors[tree["key"]] = mirror
            weakref.finalize(mirror, self.released.append, tree["key"])
        if root and not mirror._root:
            mirror._root = True
            mirror._synced = mirror._state()
        return mirror

    def call(self, target: int, args: tuple, kwargs: dict, simulate_gpu: bool = False, method: str | None = None):
        """Call a kernel function (or ``method`` of a kernel object) on copies of the arguments, then replay on
        the grader's objects what it did.

        Forbidden calls watched by :func:`autograder.battery.forbidden.forbidding` are watched in the
        kernel too; with ``simulate_gpu`` the call runs on a simulated GPU there and ``(result,
        violations)`` is returned.
        """
        sent = SentCall(self, args, kwargs)
        self.callback_errors.clear()
        reply = self.request(
            op="call", target=target, method=method, simulate_gpu=simulate_gpu, **sent.message, **self.context()
        )
        result = sent.outcome(reply)
        return (result, list(reply.get("violations", []))) if simulate_gpu else result

    def call_each(self, target: int, argument_sets: list[tuple[tuple, dict]]) -> list[tuple[object, Exception | None]]:
        """Call a kernel function once per ``(args, kwargs)``, all in one request: ``(result, None)`` or
        ``(None, error)`` for each, in order (thousands of small calls cost one round trip)."""
        calls = [SentCall(self, args, kwargs) for args, kwargs in argument_sets]
        self.callback_errors.clear()
        reply = self.request(op="calls", target=target, calls=[sent.message for sent in calls], **self.context())
        if "error" in reply:
            raise exception_from(reply["error"])
        outcomes = []
        for sent, answer in zip(calls, reply["replies"], strict=True):
            try:
                outcomes.append((sent.outcome(answer), None))
            except Exception as error:  # noqa: BLE001 - each call's own error, as a loop of calls would see it
                outcomes.append((None, error))
        self.random.incoming(reply.get("rng"))  # where the last call left the generators
        return outcomes

    def context(self) -> dict:
        """What every call carries besides its arguments: forbidden calls, lent names, grad mode, the generator."""
        return {
            "forbid": {qualified_name(f): name for watch in forbidden.WATCHES for f, name in watch.functions.items()},
            "lend": self.lent_now(),
            "grad_enabled": torch.is_grad_enabled(),
            "rng": self.random.outgoing(),
        }

    def parameter(self, reference: dict, name: str, objects: list) -> torch.Tensor:
        """The grader's own copy of a parameter the kernel's call reached: a mirror's or a sent model's."""
        module = objects[reference["model"]] if "model" in reference else self.mirrors.get(reference.get("handle"))
        if module is None:
            raise KernelUnreadable("the kernel named a module the grader does not hold")
        return module.get_parameter(name)

    def backward_of(self, call: int) -> Callable[[list], list]:
        def backward(grads: list) -> list:
            reply = self.request(op="backward", call=call, grads=grads)
            if "error" in reply:
                raise exception_from(reply["error"])
            return reply["grads"]

        return backward

    def proxies(self, objects: list) -> dict:
        """index -> how the kernel builds a GraderModule, for the models among ``objects`` it cannot unpickle."""
        return {
            index: proxy_tree(value, self.callback(ModuleCallback(value))[CALLBACK])
            for index, value in enumerate(objects)
            if not importable_in_kernel(value)
        }

    def lent_now(self) -> dict:
        return {name: spec for lent in self.lent for name, spec in lent.items()}


class SentCall:
    """One call's arguments as sent to the kernel, and how its reply is replayed on the grader's objects."""

    def __init__(self, kernel: Kernel, args: tuple, kwargs: dict):
        self.kernel = kernel
        self.leaves: list[torch.Tensor] = []
        self.containers: list = []
        self.objects: list = []
        self.message = {
            "args": send(args, self.leaves, self.containers, self.objects, kernel),
            "kwargs": send(kwargs, self.leaves, self.containers, self.objects, kernel),
        }
        self.message |= {
            "objects": pickled(self.objects),
            "grads": grads_of(self.objects),  # a parameter's pickle leaves its .grad behind
            "proxies": kernel.proxies(self.objects),
        }

    def outcome(self, reply: dict):
        """Replay what the call did to the arguments; its result, or its exception raised."""
        kernel, leaves, containers, objects = self.kernel, self.leaves, self.containers, self.objects
        kernel.random.incoming(reply.get("rng"))
        for leaf, state in zip(leaves, reply.get("args", []), strict=False):
            replay(leaf, state)
        for container, contents in zip(containers, reply.get("containers", []), strict=False):
            if contents is not None:
                refill(container, kernel.receive(contents, leaves, containers, objects))
        for value, report in zip(objects, reply.get("objects", []), strict=False):
            replay_object(value, report, kernel)
        replay_global_hooks(reply.get("global_hooks", []))
        for watch in forbidden.WATCHES:
            watch.called.extend(name for name in reply.get("called", []) if name not in watch.called)
        if "error" in reply:
            raised = kernel.callback_errors.get(reply["error"].get(wire.ERROR))
            raise raised if raised is not None else exception_from(reply["error"])
        result = kernel.receive(reply["result"], leaves, containers, objects)
        if reply.get("call"):
            inputs = [leaf for leaf in leaves if leaf.requires_grad]
            inputs += [kernel.parameter(reference, name, objects) for reference, name in reply.get("parameters", [])]
            result = linked(kernel.backward_of(reply["call"]), reply["result"], result, inputs)
        return result


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


@functools.cache
def qualified_name(function) -> str:
    """``module:path`` of a library function, by which the kernel finds its own copy: its qualified name, or, for
    a built-in whose qualified name is not a path to it (``torch.batch_norm`` is
    ``_VariableFunctionsClass.batch_norm``), its name in its module."""
    function = inspect.unwrap(function)
    module = getattr(function, "__module__", None) or getattr(getattr(function, "__self__", None), "__name__", "")
    for path in (function.__qualname__, function.__name__):
        with contextlib.suppress(Exception):
            if inspect.unwrap(resolve_here(f"{module}:{path}")) is function:
                return f"{module}:{path}"
    return f"{module}:{function.__qualname__}"


def resolve_here(qualified: str):
    module, _, path = qualified.partition(":")
    value = importlib.import_module(module)
    for part in path.split("."):
        value = getattr(value, part)
    return value


KERNEL_LIBRARIES = {name for name, _ in MODEL_SOURCES}


def importable_in_kernel(value) -> bool:
    """Whether the kernel can unpickle this model: its classes are PyTorch's, the public ``dlcourse``'s (which the
    sandbox shows the kernel) or the battery's shipped models."""
    if not isinstance(value, nn.Module):
        return True
    return all(
        type(sub).__module__.startswith(("torch.", "dlcourse.")) or type(sub).__module__ in KERNEL_LIBRARIES
        for sub in value.modules()
    )


def pickled(objects: list) -> bytes | None:
    """The grader's models and optimizers of one call, in one pickle: an optimizer keeps the model's parameters.
    A model the kernel could not unpickle goes as a proxy instead (see Kernel.proxies)."""
    if not objects:
        return None
    buffer = io.BytesIO()
    torch.save([value if importable_in_kernel(value) else None for value in objects], buffer)
    return buffer.getvalue()


def grads_of(objects: list) -> dict:
    """index -> {parameter: .grad} for the models (by parameter name) and optimizers (by "group/position")
    among ``objects`` the kernel unpickles."""
    grads = {}
    for index, value in enumerate(objects):
        if isinstance(value, torch.optim.Optimizer):
            named = [
                (f"{g}/{k}", p) for g, group in enumerate(value.param_groups) for k, p in enumerate(group["params"])
            ]
        elif importable_in_kernel(value):
            named = list(value.named_parameters())
        else:
            continue
        grads[index] = {name: p.grad.detach() for name, p in named if p.grad is not None}
    return grads


def proxy_tree(module: nn.Module, key: int | None) -> dict:
    """A model's structure and state for the kernel's GraderModule (its class stays here)."""
    return {
        "callback": key,
        "type": type(module).__name__,
        "training": module.training,
        "parameters": {k: None if v is None else tensor_entry(v) for k, v in module._parameters.items()},
        "buffers": {k: None if v is None else tensor_entry(v) for k, v in module._buffers.items()},
        "children": {k: None if v is None else proxy_tree(v, None) for k, v in module._modules.items()},
    }


class ModuleCallback:
    """A model of the grader's called from the kernel's GraderModule, in the modes the kernel's copy is in."""

    def __init__(self, module: nn.Module):
        self.module, self.__name__ = module, type(module).__name__

    def __call__(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def set_modes(self, modes: list[bool]) -> None:
        for sub, training in zip(self.module.modules(), modes, strict=False):
            sub.training = bool(training)

    def graph_inputs(self) -> list[torch.Tensor]:
        return [p for p in self.module.parameters() if p.requires_grad]


def send(value, leaves: list[torch.Tensor], containers: list, objects: list, kernel: Kernel | None = None):
    """The grader's argument as a message; tensors, lists, dicts, models and optimizers collected in the order
    the kernel sees them. Models and optimizers go whole (PyTorch's pickle): the kernel trusts the grader, never
    the reverse. Another function of the grader's is called back from the kernel."""
    if type(value) in PLAIN:  # first: a batch of calls sends thousands of numbers
        return value
    if isinstance(value, torch.Tensor):
        leaves.append(value)
        return tensor_entry(value)
    if isinstance(value, Remote | Mirror):
        return {HANDLE: value._key}
    if isinstance(value, nn.Module | torch.optim.Optimizer):
        objects.append(value)
        return {MODULE: len(objects) - 1}
    if inspect.isgenerator(value):
        return {GENERATOR: [send(item, leaves, containers, objects, kernel) for item in value]}
    if type(value) is tuple:
        return tuple(send(item, leaves, containers, objects, kernel) for item in value)
    if type(value) is list:
        containers.append(value)
        return [send(item, leaves, containers, objects, kernel) for item in value]
    if type(value) is dict:
        containers.append(value)
        return {key: send(item, leaves, containers, objects, kernel) for key, item in value.items()}
    if callable(value) and kernel is not None:
        return kernel.callback(value)
    raise TypeError(f"a {type(value).__name__} cannot be sent to the student's kernel")


def replay_object(value, report: dict | None, kernel: Kernel) -> None:
    """Do to the grader's model or optimizer what the call did to its copy."""
    if report is None:
        return
    if isinstance(value, nn.Module):
        replay_module(value, report)
    elif "optimizer" in report:
        parameters = [p for group in value.param_groups for p in group["params"]]
        for parameter, state in zip(parameters, report.get("parameters", []), strict=False):
            replay(parameter, state)  # as stepped in the kernel (when its model came too, the same values again)
        value.load_state_dict(kernel.receive(report["optimizer"]))


def replay_module(module: nn.Module, report: dict) -> None:
    """Do to the grader's model what the call did to its copy: modes, hooks, parameters and buffers."""
    for sub, training, hooks in zip(module.modules(), report["modes"], report["hooks"], strict=False):
        sub.training = training
        for kind, count in zip(HOOK_DICTS, hooks, strict=True):
            match_hook_count(getattr(sub, kind), count)
    if not isinstance(module, Mirror):  # the grader's own model: plain attributes as its copy left them
        for sub, attributes in zip(module.modules(), report.get("attributes", []), strict=False):
            for name, value in attributes.items():
                if name in vars(sub) and vars(sub)[name] != value:
                    setattr(sub, name, value)
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


class Remote:
    """An object that stays in the student's kernel: calls and attribute reads are forwarded."""

    def __init__(self, kernel: Kernel, entry: dict):
        self._kernel = kernel
        self._entry = entry

    @property
    def _key(self) -> int:
        return self._entry[HANDLE]

    @property
    def __name__(self) -> str:
        return self._entry["type"].rsplit(".", 1)[-1]

    def __call__(self, *args, **kwargs):
        if not self._entry["callable"]:
            raise TypeError(f"'{self.__name__}' object is not callable")
        return self._kernel.call(self._key, args, kwargs)

    def run_on_simulated_gpu(self, *args, **kwargs):
        """(result, violations) of a call on a simulated GPU in the kernel (see autograder.battery.devices)."""
        return self._kernel.call(self._key, args, kwargs, simulate_gpu=True)

    def call_each(self, argument_sets: list[tuple[tuple, dict]]) -> list[tuple[object, Exception | None]]:
        """See :func:`autograder.battery.student.call_each`; all the calls in one request."""
        return self._kernel.call_each(self._key, argument_sets)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return remote_attribute(self._kernel, self._key, name)

    def __repr__(self) -> str:
        return f"<{self._entry['type']} in the student's kernel>"


def remote_attribute(kernel: Kernel, key: int, name: str):
    reply = kernel.request(op="getattr", target=key, name=name)
    if "error" in reply:
        raise exception_from(reply["error"])
    return kernel.receive(reply["value"])


def library_classes(bases: list[str]) -> list[type]:
    """The classes among ``bases`` (``module:qualname``) that PyTorch defines, as the grader's own."""
    found = []
    for qualified in bases:
        if qualified.startswith("torch.") or qualified.startswith("builtins:"):
            with contextlib.suppress(Exception):
                found.append(resolve_here(qualified))
    return found


class RemoteClass(Remote):
    """A class of the notebook's: calling it builds an instance in the kernel (a module arrives as a
    :class:`Mirror`). ``__mro__`` lists the PyTorch classes it derives from, so that checks such as
    ``issubclass(c, nn.RNNCellBase) for c in cls.__mro__`` read as for a local class."""

    @property
    def __mro__(self) -> tuple[type, ...]:
        return tuple(library_classes(self._entry.get("bases", [])))

    @property
    def is_module_class(self) -> bool:
        return bool(self._entry.get("module_class"))

    def module_on_simulated_gpu(self, args: tuple, kwargs: dict, x: torch.Tensor, modes: list[bool]):
        """See :func:`autograder.battery.devices.module_on_simulated_gpu`; built and run in the kernel."""
        found: list = []
        objects: list = []
        reply = self._kernel.request(
            op="simulate_module",
            target=self._key,
            args=send(args, found, [], objects, self._kernel),
            kwargs=send(kwargs, found, [], objects, self._kernel),
            x=send(x, found, [], objects, self._kernel),
            modes=list(modes),
            lend=self._kernel.lent_now(),
        )
        if "error" in reply:
            raise exception_from(reply["error"])
        return list(reply["violations"]), list(reply["outputs"]), dict(reply["tensors"])


FORWARDED = ("train", "to", "cuda", "cpu", "double", "float", "half", "type", "load_state_dict", "requires_grad_")


class Mirror(nn.Module):
    """A module of the notebook's, mirrored: its parameters, buffers, submodules, modes and hook counts are
    copies kept in step with the kernel's after every request, so reading them (``named_parameters()``,
    ``state_dict()``, ``.training``) is local; calling it, and the methods that change it (``train``, ``to``,
    ``load_state_dict``...), run in the kernel. What the grader changes here (values, ``.grad``, modes) is
    pushed to the kernel before the next request. Other attributes are read from the kernel."""

    def __init__(self, kernel: Kernel, tree: dict):
        nn.Module.__init__(self)  # not the PyTorch class's own __init__: the state comes from the kernel
        self._kernel = kernel
        self._key = tree["key"]
        self._root = False
        self._fill(tree)

    def _fill(self, tree: dict) -> None:
        self._parameters.clear()
        self._buffers.clear()
        self._modules.clear()
        self.training = tree["training"]
        for name, entry in tree["parameters"].items():
            self._parameters[name] = None if entry is None else as_parameter(tensor_from(entry))
        for name, entry in tree["buffers"].items():
            self._buffers[name] = None if entry is None else tensor_from(entry)
        self._non_persistent_buffers_set = set(tree["non_persistent"])
        for name, child in tree["children"].items():
            self._modules[name] = None if child is None else self._kernel.mirror(child, root=False)
        for kind, count in zip(HOOK_DICTS, tree["hooks"], strict=False):
            match_hook_count(getattr(self, kind), count)
        self._synced = self._state()

    def forward(self, *args, **kwargs):
        return self._kernel.call(self._key, args, kwargs)

    def run_on_simulated_gpu(self, *args, **kwargs):
        """(result, violations) of a call on a simulated GPU in the kernel, the module's tensors on the GPU."""
        return self._kernel.call(self._key, args, kwargs, simulate_gpu=True)

    def _forwarded(self, method: str, *args, **kwargs):
        return self._kernel.call(self._key, args, kwargs, method=method)

    def train(self, mode: bool = True):
        return self._forwarded("train", mode)

    def eval(self):
        return self._forwarded("train", False)

    def to(self, *args, **kwargs):
        return self._forwarded("to", *args, **kwargs)

    def cuda(self, *args, **kwargs):
        return self._forwarded("cuda", *args, **kwargs)

    def cpu(self):
        return self._forwarded("cpu")

    def double(self):
        return self._forwarded("double")

    def float(self):
        return self._forwarded("float")

    def half(self):
        return self._forwarded("half")

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return self._forwarded("load_state_dict", dict(state_dict), strict=strict, assign=assign)

    def requires_grad_(self, requires_grad: bool = True):
        return self._forwarded("requires_grad_", requires_grad)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name.startswith("_"):
                raise
        return remote_attribute(self._kernel, self._key, name)

    def _tensors(self) -> list[tuple[str, str, torch.Tensor]]:
        return [("parameter", name, p) for name, p in self.named_parameters()] + [
            ("buffer", name, b) for name, b in self.named_buffers()
        ]

    def _state(self) -> dict:
        """What the grader could change here: each tensor's identity, version, memory, requires_grad and .grad."""
        tensors = {}
        for kind, name, tensor in self._tensors():
            grad = tensor.grad
            grad_state = None if grad is None else (id(grad), grad._version)
            tensors[(kind, name)] = (id(tensor), tensor._version, tensor.data_ptr(), tensor.requires_grad, grad_state)
        return {"modes": [sub.training for sub in self.modules()], "tensors": tensors}

    def _changes(self) -> dict | None:
        """What the grader changed since the kernel's state was last followed, to push there; None if nothing."""
        now = self._state()
        if now == self._synced:
            return None
        changed = [
            (kind, name, tensor_entry(tensor))
            for kind, name, tensor in self._tensors()
            if now["tensors"][(kind, name)] != self._synced["tensors"].get((kind, name))
        ]
        self._synced = now
        return {"modes": now["modes"], "tensors": changed}

    def _follow(self, report: dict) -> None:
        """Take over what the kernel's module went through (its whole tree when its structure changed)."""
        if "tree" in report:
            self._fill(report["tree"])
        else:
            replay_module(self, report)
        self._synced = self._state()


def as_parameter(tensor: torch.Tensor) -> nn.Parameter:
    return tensor if isinstance(tensor, nn.Parameter) else nn.Parameter(tensor, requires_grad=tensor.requires_grad)


MIRROR_CLASSES: dict[tuple[str, tuple[type, ...]], type] = {}


def mirror_class(tree: dict) -> type[Mirror]:
    """A subclass of :class:`Mirror` named as the kernel's class, deriving from the PyTorch module class it
    derives from (so ``isinstance(cell.x2h, nn.Linear)`` holds for a mirrored ``nn.Linear``)."""
    library = tuple(
        cls
        for cls in library_classes(tree["bases"])
        if isinstance(cls, type) and issubclass(cls, nn.Module) and cls is not nn.Module
    )[:1]
    key = (tree["type"], library)
    if key not in MIRROR_CLASSES:
        name = tree["type"].rsplit(".", 1)[-1]
        MIRROR_CLASSES[key] = type(name, (Mirror, *library), {"__module__": "student's notebook"})
    return MIRROR_CLASSES[key]


class RemoteNamespace:
    """The notebook's namespace, read through the kernel: what ``globals()`` is to a hidden test."""

    def __init__(self, kernel: Kernel):
        self.kernel = kernel
        self.handles: dict[str, Remote] = {}  # functions and objects looked up once per hidden test

    def __contains__(self, name: str) -> bool:
        return self.kernel.request(op="lookup", name=name).get("found", False)

    def __getitem__(self, name: str):
        lent = self.kernel.lent_now()
        if name in lent:
            spec = lent[name]
            return resolve_here(spec["qualified"]) if "qualified" in spec else self.kernel.callbacks[spec["callback"]]
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
        """Lend functions under these names to every call made in the block (bound in the kernel for the call's
        duration, then the notebook's own bindings restored): PyTorch's own run in the kernel, the grader's own
        (a recording stand-in, say) are called back."""
        lent = {name: self.lent_spec(name, value) for name, value in replacements.items()}
        self.kernel.lent.append(lent)
        try:
            yield
        finally:
            self.kernel.lent.remove(lent)

    def lent_spec(self, name: str, value) -> dict:
        if not callable(value) or isinstance(value, Remote | Mirror):
            raise TypeError(f"only functions can be lent to the notebook, not {value!r}")
        if getattr(inspect.unwrap(value), "__module__", "").startswith("torch"):
            return {"qualified": qualified_name(value)}
        return {"callback": self.kernel.callback(value)[CALLBACK], "label": name}

    def __setitem__(self, name: str, value) -> None:
        """Bind a name in the notebook: to one of its own objects, or to a function lent to it."""
        self.handles.pop(name, None)
        if isinstance(value, Remote | Mirror):
            reply = self.kernel.request(op="bind", name=name, handle=value._key)
        else:
            reply = self.kernel.request(op="bind", name=name, **self.lent_spec(name, value))
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
