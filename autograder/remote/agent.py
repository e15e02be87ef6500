"""The kernel's end of the grader's calls: runs in the student's kernel, knows no test.

The grader sends this file's source to the kernel once, after the sources whose names it
uses (:mod:`autograder.remote.wire`, :mod:`autograder.battery.forbidden` and
:mod:`autograder.battery.devices`); each request is then one line
``_dlcourse_agent.serve(TEXT)`` and the answer one line of stdout starting with :data:`MARK`.
A request looks up a name in the notebook, calls a function (watching for forbidden calls, on
a simulated GPU when asked), reads an attribute, binds a name (a library function the grader
lends), runs a backward pass or releases objects. Models the grader passes are standard
PyTorch modules, sent whole. Arguments
arrive as copies; after a call the agent reports what the call did to each tensor argument
(values changed, storage swapped, version counter, requires_grad, .grad) so the grader can
replay it on its own tensors.

Nothing here is trusted: a student can replace any of it, and gains nothing by it, because
every comparison and every message is made in the grader from copies of the values.
"""

import io
import itertools

import torch

MARK = "@@dlcourse-reply@@"
NAMESPACE: dict = {}  # the notebook's globals, set by the grader's boot code
OBJECTS: dict = {}  # handle id -> object the grader holds a handle to
CALLS: dict = {}  # call id -> (output tensors that require grad, argument tensors that require grad)
COUNTER = itertools.count(1)
EXACT = {list, tuple, dict}


def handle_of(value) -> dict:
    key = id(value)
    OBJECTS[key] = value
    name = getattr(value, "__qualname__", None) if isinstance(value, type) or callable(value) else None
    return {
        HANDLE: key,  # noqa: F821 - from the wire source run before this one
        "type": name or type(value).__qualname__,
        "class": isinstance(value, type),
        "callable": callable(value),
        "module": isinstance(value, torch.nn.Module),
    }


def encode(value, depth: int = 0):
    """Copies of plain values and tensors; a handle for anything else."""
    kind = type(value)
    if depth > 20:
        return handle_of(value)
    if kind in (torch.Tensor, torch.nn.Parameter):
        return tensor_entry(value)  # noqa: F821
    if kind in PLAIN:  # noqa: F821
        return value
    if isinstance(value, bool | int | float | complex) and kind.__module__ == "numpy":
        return value.item()  # numpy's float64 is a float; a student's own subclass of float is not copied
    if kind in (list, tuple):
        return kind(encode(item, depth + 1) for item in value)
    if kind is dict and all(type(key) in (str, int) for key in value):
        return {key: encode(item, depth + 1) for key, item in value.items()}
    return handle_of(value)


def fresh_tensor(entry: dict) -> torch.Tensor:
    tensor = entry[TENSOR].clone()  # noqa: F821
    if entry["parameter"]:
        tensor = torch.nn.Parameter(tensor, requires_grad=entry["grad"])
    else:
        tensor.requires_grad_(entry["grad"])
    if entry["dot_grad"] is not None and tensor.requires_grad:
        tensor.grad = entry["dot_grad"].clone()
    return tensor


def decode(value, leaves: list, containers: list, modules: list | None = None):
    """The grader's arguments as kernel objects; tensors (fresh copies), lists, dicts and modules collected in order."""
    modules = [] if modules is None else modules
    if is_tagged(value, TENSOR):  # noqa: F821
        tensor = fresh_tensor(value)
        leaves.append(tensor)
        return tensor
    if is_tagged(value, HANDLE):  # noqa: F821
        return OBJECTS[value[HANDLE]]  # noqa: F821
    if is_tagged(value, MODULE):  # noqa: F821
        module = torch.load(io.BytesIO(value[MODULE]), weights_only=False)  # noqa: F821 - the grader's own model
        modules.append(module)
        return module
    if is_tagged(value, GENERATOR):  # noqa: F821
        items = [decode(item, leaves, containers, modules) for item in value[GENERATOR]]  # noqa: F821
        return (item for item in items)
    if type(value) is tuple:
        return tuple(decode(item, leaves, containers, modules) for item in value)
    if type(value) is list:
        container: list = []
        containers.append(container)
        container.extend(decode(item, leaves, containers, modules) for item in value)
        return container
    if type(value) is dict:
        container: dict = {}
        containers.append(container)
        container.update((key, decode(item, leaves, containers, modules)) for key, item in value.items())
        return container
    return value


def shallow(container) -> list:
    items = container.items() if isinstance(container, dict) else enumerate(container)
    return [(key, id(item)) for key, item in items]


def encode_referring(value, leaves: list, containers: list, modules: list):
    """Like encode, with the call's own arguments (tensors, lists, dicts, models) written as references."""
    for tag, arguments in ((LEAF, leaves), (CONTAINER, containers), (MODEL, modules)):  # noqa: F821
        for index, argument in enumerate(arguments):
            if value is argument:
                return {tag: index}
    if type(value) in (list, tuple):
        return type(value)(encode_referring(item, leaves, containers, modules) for item in value)
    if type(value) is dict and all(type(key) in (str, int) for key in value):
        return {key: encode_referring(item, leaves, containers, modules) for key, item in value.items()}
    return encode(value)


def container_changes(leaves: list, containers: list, modules: list, before: list) -> list:
    """For each list or dict argument: None, or its new contents when the call changed it."""
    changes = []
    for container, items in zip(containers, before, strict=True):
        if shallow(container) == items:
            changes.append(None)
        else:
            items = container.items() if isinstance(container, dict) else enumerate(container)
            contents = {key: encode_referring(item, leaves, containers, modules) for key, item in items}
            changes.append(contents if isinstance(container, dict) else list(contents.values()))
    return changes


def memory_of(tensor) -> int:
    return 0 if tensor.device.type == "meta" else tensor.untyped_storage().data_ptr()


def tensor_before(tensor) -> tuple:
    grad = tensor.grad
    return tensor.detach().clone(), tensor._version, memory_of(tensor), None if grad is None else memory_of(grad)


def tensor_after(tensor, before: tuple) -> dict:
    """What a call did to one tensor: values, storage, version counter, requires_grad, .grad."""
    values, version, memory, grad_memory = before
    same = tensor.shape == values.shape and tensor.dtype == values.dtype and tensor.device == values.device
    changed = not same or (tensor.device.type != "meta" and not torch.equal(tensor.detach(), values))
    grad = tensor.grad
    return {
        "values": tensor.detach().clone() if changed else None,
        "swapped": memory_of(tensor) != memory,
        "version": tensor._version - version,
        "requires_grad": bool(tensor.requires_grad),
        "grad": None if grad is None else grad.detach().clone(),
        "grad_swapped": grad is not None and grad_memory is not None and memory_of(grad) != grad_memory,
    }


HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
GLOBAL_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks")


def module_tensors_named(module) -> list:
    return [("parameter", name, p) for name, p in module.named_parameters()] + [
        ("buffer", name, b) for name, b in module.named_buffers()
    ]


def module_before(module) -> list:
    return [(kind, name, tensor, tensor_before(tensor)) for kind, name, tensor in module_tensors_named(module)]


def module_after(module, before: list) -> dict:
    """What a call did to a model: each submodule's mode and hooks, each parameter's and buffer's state."""
    current = {(kind, name): tensor for kind, name, tensor in module_tensors_named(module)}
    tensors = []
    for kind, name, tensor, state in before:
        now = current.get((kind, name))
        if now is None:
            tensors.append((kind, name, {"removed": True}))
        elif now is not tensor:
            tensors.append((kind, name, {"replaced": now.detach().clone(), "requires_grad": bool(now.requires_grad)}))
        else:
            tensors.append((kind, name, tensor_after(tensor, state)))
    return {
        "modes": [bool(sub.training) for sub in module.modules()],
        "hooks": [[len(getattr(sub, kind, {})) for kind in HOOK_DICTS] for sub in module.modules()],
        "tensors": tensors,
    }


def global_hooks() -> list:
    from torch.nn.modules import module as module_globals

    return [len(getattr(module_globals, kind)) for kind in GLOBAL_HOOKS]


def before_call(leaves: list, containers: list) -> tuple:
    return [tensor_before(leaf) for leaf in leaves], [shallow(container) for container in containers]


def after_call(leaves: list, before: list) -> list:
    """What the call did to each tensor argument."""
    return [tensor_after(leaf, state) for leaf, state in zip(leaves, before, strict=True)]


def tensors_in(value) -> list:
    if isinstance(value, torch.Tensor):
        return [value]
    if type(value) in (list, tuple):
        return [tensor for item in value for tensor in tensors_in(item)]
    if type(value) is dict and all(type(key) in (str, int) for key in value):
        return [tensor for item in value.values() for tensor in tensors_in(item)]
    return []


def resolve(qualified: str):
    """A PyTorch (or other library) function from its module and qualified name, or None."""
    import importlib
    import sys

    module_name, _, path = qualified.partition(":")
    module = sys.modules.get(module_name)
    if module is None:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            return None
    value = module
    for part in path.split("."):
        value = getattr(value, part, None)
    return value


def run_watched(function, args, kwargs, forbid: dict, simulate_gpu: bool) -> tuple:
    """(result, forbidden names called, simulated-GPU violations); exceptions propagate."""
    functions = {value: name for qualified, name in forbid.items() if (value := resolve(qualified)) is not None}
    with forbidden_calls(functions) as called:  # noqa: F821 - from the forbidden-calls source
        if simulate_gpu:
            result, violations = run_on_simulated_gpu(function, *args, **kwargs)  # noqa: F821
        else:
            result, violations = function(*args, **kwargs), []
    return result, list(called), violations


def call(request: dict) -> dict:
    leaves: list = []
    containers: list = []
    modules: list = []
    function = OBJECTS[request["target"]]
    args = decode(request["args"], leaves, containers, modules)
    kwargs = decode(request["kwargs"], leaves, containers, modules)
    tensors, items = before_call(leaves, containers)
    models = [module_before(module) for module in modules]
    hooks = global_hooks()
    reply: dict = {"called": [], "violations": []}
    saved = {name: NAMESPACE.get(name, NAMESPACE) for name in request.get("lend", {})}
    try:
        for name, qualified in request.get("lend", {}).items():
            bind({"name": name, "qualified": qualified})
        result, reply["called"], reply["violations"] = run_watched(
            function, args, kwargs, request.get("forbid", {}), request.get("simulate_gpu", False)
        )
    except Exception as error:  # noqa: BLE001 - the grader decides what an error means
        reply["error"] = error_entry(error)  # noqa: F821
    else:
        reply.update(result=encode_referring(result, leaves, containers, modules), call=None)
    finally:
        for name, value in saved.items():
            LENT.discard(LENT_NAMES.pop(name, None))  # noqa: F821
            if value is NAMESPACE:
                NAMESPACE.pop(name, None)
            else:
                NAMESPACE[name] = value
    reply["args"] = after_call(leaves, tensors)
    reply["containers"] = container_changes(leaves, containers, modules, items)
    reply["modules"] = [module_after(module, state) for module, state in zip(modules, models, strict=True)]
    reply["global_hooks"] = [now - then for now, then in zip(global_hooks(), hooks, strict=True)]
    if "error" in reply:
        return reply
    outputs = [t for t in tensors_in(result) if t.requires_grad and not any(t is leaf for leaf in leaves)]
    if outputs:
        reply["call"] = next(COUNTER)
        CALLS[reply["call"]] = (outputs, [leaf for leaf in leaves if leaf.requires_grad])
    return reply


def backward(request: dict) -> dict:
    outputs, inputs = CALLS[request["call"]]
    for leaf in inputs:
        leaf.grad = None
    pairs = [(output, grad) for output, grad in zip(outputs, request["grads"], strict=True) if grad is not None]
    torch.autograd.backward([output for output, _ in pairs], [grad for _, grad in pairs], retain_graph=True)
    return {"grads": [None if leaf.grad is None else leaf.grad.detach().clone() for leaf in inputs]}


def lookup(request: dict) -> dict:
    if request["name"] not in NAMESPACE:
        return {"found": False}
    return {"found": True, "value": encode(NAMESPACE[request["name"]])}


def get_attribute(request: dict) -> dict:
    return {"value": encode(getattr(OBJECTS[request["target"]], request["name"]))}


LENT_NAMES: dict = {}  # name in the notebook -> the code object of what the grader lent under it


def bind(request: dict) -> dict:
    """Bind a name in the notebook: to an object by handle, or to a library function the grader lends."""
    name = request["name"]
    code = LENT_NAMES.pop(name, None)
    if code is not None:
        LENT.discard(code)  # noqa: F821
    if "qualified" in request:
        value = resolve(request["qualified"])
        if value is None:
            raise LookupError(f"cannot lend {request['qualified']}")
        code = code_of(value)  # noqa: F821
        if code is not None:
            LENT_NAMES[name] = code
            LENT.add(code)  # noqa: F821
    elif "handle" in request:
        value = OBJECTS[request["handle"]]
    else:
        NAMESPACE.pop(name, None)
        return {}
    NAMESPACE[name] = value
    return {}


def release(request: dict) -> dict:
    for key in request["handles"]:
        OBJECTS.pop(key, None)
    CALLS.clear()
    return {}


OPERATIONS = {
    "call": call,
    "backward": backward,
    "lookup": lookup,
    "getattr": get_attribute,
    "bind": bind,
    "release": release,
}


def answer(request: dict) -> dict:
    try:
        return OPERATIONS[request["op"]](request)
    except Exception as error:  # noqa: BLE001
        return {"error": error_entry(error)}  # noqa: F821


def serve(text: str) -> None:
    """Answer one request with one line on stdout."""
    print(MARK + dumps(answer(loads(text))), flush=True)  # noqa: F821


def receive_exactly(connection, size: int) -> bytes:
    chunks = []
    while size:
        chunk = connection.recv(min(size, 1 << 20))
        if not chunk:
            raise ConnectionError("closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def serve_socket(path: str) -> None:
    """Answer requests on a Unix socket until the grader ends the session (one per hidden part)."""
    import os
    import socket

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    server.settimeout(60)
    try:
        connection, _ = server.accept()
    except OSError:
        return
    finally:
        server.close()
        os.unlink(path)
    with connection:
        connection.settimeout(None)
        while True:
            try:
                request = from_bytes(receive_exactly(connection, int.from_bytes(receive_exactly(connection, 8), "big")))  # noqa: F821
            except (ConnectionError, OSError):
                return
            if request.get("op") == "end":
                return
            reply = to_bytes(answer(request))  # noqa: F821
            connection.sendall(len(reply).to_bytes(8, "big") + reply)


def serve_file(request_path: str, reply_path: str) -> None:
    """Answer one request read from a file with a file (large tensors skip the messaging), then a mark."""
    with open(request_path, "rb") as handle:
        reply = answer(from_bytes(handle.read()))  # noqa: F821
    with open(reply_path, "wb") as handle:
        handle.write(to_bytes(reply))  # noqa: F821
    print(MARK, flush=True)
