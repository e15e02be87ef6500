"""The kernel's end of the grader's calls: runs in the student's kernel, knows no test.

The grader never imports this file: it sends its source to the kernel once, after the sources whose names it
uses (:mod:`autograder.remote.wire`, :mod:`autograder.battery.forbidden` and
:mod:`autograder.battery.devices`); each request is then one line
``_dlcourse_agent.serve(TEXT)`` and the answer one line of stdout starting with :data:`MARK`.
A request looks up a name in the notebook, calls a function or a method (watching for forbidden
calls, on a simulated GPU when asked), reads an attribute, binds a name (a library function or
a function of the grader's that the grader lends), runs a backward pass or releases objects.
Models and optimizers the grader passes are sent whole, in one pickle (so an optimizer holds
the model's very parameters). Arguments arrive as copies; after a call the agent reports what
the call did to each tensor argument (values changed, storage swapped, version counter,
requires_grad, .grad) and to each model and optimizer, so the grader can replay it on its own.

A module of the notebook's that reaches the grader is *mirrored*: the grader holds copies of
its parameters, buffers, submodules and modes, kept in step after every call (what changed is
reported here, what the grader changed is pushed before the next request), while calling it
runs here. A function of the grader's passed or lent to the notebook is a
:class:`GraderFunction`: calling it asks the grader over the socket, with autograd linked
across (:class:`AcrossBackward`).

Nothing here is trusted: a student can replace any of it, and gains nothing by it, because
every comparison and every message is made in the grader from copies of the values.
"""

import io
import itertools
import numbers

import torch

NAMESPACE: dict = {}  # the notebook's globals, set by the grader's boot code
OBJECTS: dict = {}  # handle id -> object the grader holds a handle to
CALLS: dict = {}  # call id -> (output tensors that require grad, the inputs that require grad)
MIRRORED: dict = {}  # handle id -> [module the grader mirrors, its state when last reported, its structure]
COUNTER = itertools.count(1)
CONNECTION: list = []  # the grader's connection while serve_socket runs
RANDOM = RandomState()  # noqa: F821 - from the wire source


def module_structure(module) -> list:
    return [
        (
            name,
            type(sub),
            tuple(sub._parameters),
            tuple(sub._buffers),
            tuple((k, id(v)) for k, v in sub._modules.items()),
        )
        for name, sub in module.named_modules()
    ]


def module_tree(module) -> dict:
    """A module's structure and state, for the grader's mirror of it."""
    OBJECTS[id(module)] = module
    return {
        "key": id(module),
        "type": type(module).__qualname__,
        "bases": [f"{c.__module__}:{c.__qualname__}" for c in type(module).__mro__],
        "training": bool(module.training),
        "parameters": {k: None if v is None else tensor_entry(v) for k, v in module._parameters.items()},  # noqa: F821
        "buffers": {k: None if v is None else tensor_entry(v) for k, v in module._buffers.items()},  # noqa: F821
        "non_persistent": sorted(module._non_persistent_buffers_set),
        "children": {k: None if v is None else module_tree(v) for k, v in module._modules.items()},
        "hooks": [len(getattr(module, kind, {})) for kind in HOOK_DICTS],
    }


def handle_of(value) -> dict:
    key = id(value)
    OBJECTS[key] = value
    name = getattr(value, "__qualname__", None) if isinstance(value, type) or callable(value) else None
    entry = {
        HANDLE: key,  # noqa: F821 - from the wire source run before this one
        "type": name or type(value).__qualname__,
        "class": isinstance(value, type),
        "callable": callable(value),
        "module": isinstance(value, torch.nn.Module),
    }
    if isinstance(value, type):
        entry["bases"] = [f"{c.__module__}:{c.__qualname__}" for c in value.__mro__]
        entry["module_class"] = issubclass(value, torch.nn.Module)
    if isinstance(value, torch.nn.Module):
        if key in MIRRORED:  # the grader's mirror follows it by the reports: its key is enough (no tensors sent)
            entry["tree"] = {"key": key, "mirrored": True}
        else:
            entry["tree"] = module_tree(value)
            MIRRORED[key] = [value, module_before(value), module_structure(value), fingerprint(value)]
    return entry


def encode(value, depth: int = 0, leaves: list | None = None):
    """Copies of plain values and tensors (collected in ``leaves`` when given); a handle for anything else."""
    kind = type(value)
    if depth > 20:
        return handle_of(value)
    if kind in (torch.Tensor, torch.nn.Parameter):
        if leaves is not None:
            leaves.append(value)
        return tensor_entry(value)  # noqa: F821
    if kind in PLAIN:  # noqa: F821
        return value
    if kind.__module__ == "numpy" and isinstance(value, numbers.Number):
        return value.item()  # numpy scalars (float32 included) as Python numbers; a student's float subclass is not
    if kind in (list, tuple):
        return kind(encode(item, depth + 1, leaves) for item in value)
    if kind is dict and all(type(key) in (str, int) for key in value):
        return {key: encode(item, depth + 1, leaves) for key, item in value.items()}
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


class Decoded:
    """What decoding the grader's arguments found, in order: tensors, lists and dicts, objects, handles."""

    def __init__(self, objects: list | None = None):
        self.leaves: list = []
        self.containers: list = []
        self.objects = [] if objects is None else objects  # the grader's models and optimizers
        self.handles: list = []


def decode(value, found: Decoded):
    """The grader's arguments as kernel objects; tensors are fresh copies."""
    if type(value) in SCALARS:  # noqa: F821
        return value
    if is_tagged(value, TENSOR):  # noqa: F821
        tensor = fresh_tensor(value)
        found.leaves.append(tensor)
        return tensor
    if is_tagged(value, HANDLE):  # noqa: F821
        found.handles.append(value[HANDLE])  # noqa: F821
        return OBJECTS[value[HANDLE]]  # noqa: F821
    if is_tagged(value, MODULE):  # noqa: F821
        return found.objects[value[MODULE]]  # noqa: F821
    if is_tagged(value, CALLBACK):  # noqa: F821
        return GraderFunction(value[CALLBACK], value["name"])  # noqa: F821
    if is_tagged(value, GENERATOR):  # noqa: F821
        items = [decode(item, found) for item in value[GENERATOR]]  # noqa: F821
        return (item for item in items)
    if type(value) is tuple:
        return tuple(decode(item, found) for item in value)
    if type(value) is list:
        container: list = []
        found.containers.append(container)
        container.extend(decode(item, found) for item in value)
        return container
    if type(value) is dict:
        container: dict = {}
        found.containers.append(container)
        container.update((key, decode(item, found)) for key, item in value.items())
        return container
    return value


def shallow(container) -> list:
    items = container.items() if isinstance(container, dict) else enumerate(container)
    return [(key, id(item)) for key, item in items]


def encode_referring(value, found: Decoded):
    """Like encode, with the call's own arguments (tensors, lists, dicts, models) written as references."""
    for tag, arguments in ((LEAF, found.leaves), (CONTAINER, found.containers), (MODEL, found.objects)):  # noqa: F821
        for index, argument in enumerate(arguments):
            if value is argument:
                return {tag: index}
    if type(value) in (list, tuple):
        return type(value)(encode_referring(item, found) for item in value)
    if type(value) is dict and all(type(key) in (str, int) for key in value):
        return {key: encode_referring(item, found) for key, item in value.items()}
    return encode(value)


def container_changes(found: Decoded, before: list) -> list:
    """For each list or dict argument: None, or its new contents when the call changed it."""
    changes = []
    for container, items in zip(found.containers, before, strict=True):
        if shallow(container) == items:
            changes.append(None)
        else:
            items = container.items() if isinstance(container, dict) else enumerate(container)
            contents = {key: encode_referring(item, found) for key, item in items}
            changes.append(contents if isinstance(container, dict) else list(contents.values()))
    return changes


HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
GLOBAL_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks")


def module_tensors_named(module) -> list:
    return [("parameter", name, p) for name, p in module.named_parameters()] + [
        ("buffer", name, b) for name, b in module.named_buffers()
    ]


def module_before(module) -> list:
    return [(kind, name, tensor, tensor_before(tensor)) for kind, name, tensor in module_tensors_named(module)]  # noqa: F821


def module_after(module, before: list, attributes: bool = True) -> dict:
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
            tensors.append((kind, name, tensor_after(tensor, state)))  # noqa: F821
    return {
        "modes": [bool(sub.training) for sub in module.modules()],
        "hooks": [[len(getattr(sub, kind, {})) for kind in HOOK_DICTS] for sub in module.modules()],
        "tensors": tensors,
        "attributes": [plain_attributes(sub) for sub in module.modules()] if attributes else [],
    }


def is_plain_data(value, depth: int = 0) -> bool:
    if type(value) in PLAIN:  # noqa: F821
        return True
    if type(value) in (list, tuple) and depth < 5:
        return all(is_plain_data(item, depth + 1) for item in value)
    if type(value) is dict and depth < 5:
        return all(type(key) is str and is_plain_data(item, depth + 1) for key, item in value.items())
    return False


def plain_attributes(module) -> dict:
    """A module's public attributes that are plain data (a recorder's list of calls, say)."""
    return {k: v for k, v in vars(module).items() if not k.startswith("_") and k != "training" and is_plain_data(v)}


def optimizer_parameters(optimizer) -> list:
    return [p for group in optimizer.param_groups for p in group["params"]]


def object_before(value):
    if isinstance(value, torch.nn.Module):
        return module_before(value)
    if isinstance(value, torch.optim.Optimizer):
        return [tensor_before(p) for p in optimizer_parameters(value)]  # noqa: F821
    return None


def object_after(value, before) -> dict | None:
    """What a call did to one of the grader's models (see module_after) or optimizers (its new state_dict, and
    what happened to each parameter it steps)."""
    if isinstance(value, torch.nn.Module):
        return module_after(value, before)
    if isinstance(value, torch.optim.Optimizer):
        parameters = [tensor_after(p, state) for p, state in zip(optimizer_parameters(value), before, strict=True)]  # noqa: F821
        return {"optimizer": encode(value.state_dict()), "parameters": parameters}
    return None


def fingerprint(module) -> tuple:
    """What a module's report depends on besides its tensors' values: cheap to take after every call."""
    tensors = [
        (id(t), t._version, memory_of(t), t.requires_grad, None if t.grad is None else (id(t.grad), t.grad._version))  # noqa: F821
        for _, _, t in module_tensors_named(module)
    ]
    hooks = [[len(getattr(sub, kind, {})) for kind in HOOK_DICTS] for sub in module.modules()]
    return tensors, [sub.training for sub in module.modules()], hooks


def unchanged(module, before: list, mark: tuple) -> bool:
    return fingerprint(module) == mark and all(
        state[0].shape == tensor.shape and torch.equal(state[0], tensor.detach()) for _, _, tensor, state in before
    )


def mirror_reports() -> dict:
    """What changed in each mirrored module since it was last reported (its whole tree when its structure did);
    modules that did not change are left out."""
    reports = {}
    for key, record in MIRRORED.items():
        module, before, structure, mark = record
        now = module_structure(module)
        if now != structure:
            reports[key] = {"tree": module_tree(module)}
        elif unchanged(module, before, mark):
            continue
        else:
            reports[key] = module_after(module, before, attributes=False)  # a mirror reads them from the kernel
        record[1:] = [module_before(module), now, fingerprint(module)]
    return reports


def apply_push(pushed: dict) -> None:
    """The grader changed its mirror of a module (mode, values, requires_grad, .grad): do the same here."""
    for key, state in pushed.items():
        record = MIRRORED.get(key)
        if record is None:
            continue
        module = record[0]
        for sub, training in zip(module.modules(), state["modes"], strict=False):
            sub.training = training
        for kind, name, entry in state["tensors"]:
            owner_name, _, attribute = name.rpartition(".")
            owner = module.get_submodule(owner_name)
            tensor = (owner._parameters if kind == "parameter" else owner._buffers).get(attribute)
            if tensor is None:
                continue
            values = entry[TENSOR]  # noqa: F821
            if values.shape == tensor.shape and values.dtype == tensor.dtype:
                if not torch.equal(values, tensor.detach()):
                    with torch.no_grad():
                        tensor.copy_(values)
            else:
                tensor.data = values.clone()
            if tensor.is_leaf and tensor.requires_grad != entry["grad"]:
                tensor.requires_grad_(entry["grad"])
            if tensor.is_leaf:
                tensor.grad = None if entry["dot_grad"] is None else entry["dot_grad"].clone()
        record[1:] = [module_before(module), module_structure(module), fingerprint(module)]


def global_hooks() -> list:
    from torch.nn.modules import module as module_globals

    return [len(getattr(module_globals, kind)) for kind in GLOBAL_HOOKS]


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


RESOLVED: dict = {}  # qualified name -> library function (or None), resolved once


def resolved(qualified: str):
    if qualified not in RESOLVED:
        RESOLVED[qualified] = resolve(qualified)
    return RESOLVED[qualified]


def run_watched(function, args, kwargs, forbid: dict, simulate_gpu: bool) -> tuple:
    """(result, forbidden names called, simulated-GPU violations); exceptions propagate."""
    functions = {value: name for qualified, name in forbid.items() if (value := resolved(qualified)) is not None}
    if not functions:  # nothing to watch: no profile function, which would slow every call the answer makes
        if simulate_gpu:
            result, violations = run_on_simulated_gpu(function, *args, **kwargs)  # noqa: F821
            return result, [], violations
        return function(*args, **kwargs), [], []
    with forbidden_calls(functions) as called:  # noqa: F821 - from the forbidden-calls source
        if simulate_gpu:
            result, violations = run_on_simulated_gpu(function, *args, **kwargs)  # noqa: F821
        else:
            result, violations = function(*args, **kwargs), []
    return result, list(called), violations


class lent_names:
    """Bind the names the grader lends for one call (a library function or a function of the grader's), then
    restore the notebook's own bindings."""

    def __init__(self, lend: dict):
        self.lend = lend

    def __enter__(self):
        self.saved = {name: NAMESPACE.get(name, NAMESPACE) for name in self.lend}
        for name, spec in self.lend.items():
            bind({"name": name, **spec})

    def __exit__(self, *exc):
        for name, value in self.saved.items():
            LENT.discard(LENT_NAMES.pop(name, None))  # noqa: F821
            if value is NAMESPACE:
                NAMESPACE.pop(name, None)
            else:
                NAMESPACE[name] = value


def modules_involved(target_key, found: Decoded) -> list:
    """([reference, module]) for the mirrored modules and the grader's models a call reaches."""
    involved, seen = [], set()
    for key in [target_key, *found.handles]:
        if key in MIRRORED and key not in seen:
            seen.add(key)
            involved.append(({"handle": key}, MIRRORED[key][0]))
    for index, value in enumerate(found.objects):
        if isinstance(value, torch.nn.Module):
            involved.append(({"model": index}, value))
    return involved


def call(request: dict, batched: bool = False) -> dict:
    target = OBJECTS[request["target"]]
    function = getattr(target, request["method"]) if request.get("method") else target
    objects = load_objects(request.get("objects"), request.get("proxies"))
    for index, grads in (request.get("grads") or {}).items():
        for name, grad in grads.items():
            parameter_of(objects[index], name).grad = grad.clone()
    found = Decoded(objects)
    args = decode(request["args"], found)
    kwargs = decode(request["kwargs"], found)
    tensors = [tensor_before(leaf) for leaf in found.leaves]  # noqa: F821
    items = [shallow(container) for container in found.containers]
    states = [object_before(value) for value in objects]
    hooks = global_hooks()
    reply: dict = {"called": [], "violations": []}
    RANDOM.incoming(request.get("rng"))
    try:
        with lent_names(request.get("lend", {})), torch.set_grad_enabled(request.get("grad_enabled", True)):
            result, reply["called"], reply["violations"] = run_watched(
                function, args, kwargs, request.get("forbid", {}), request.get("simulate_gpu", False)
            )
    except Exception as error:  # noqa: BLE001 - the grader decides what an error means
        reply["error"] = error_entry(error)  # noqa: F821
    else:
        reply.update(result=encode_referring(result, found), call=None)
    reply["args"] = [tensor_after(leaf, state) for leaf, state in zip(found.leaves, tensors, strict=True)]  # noqa: F821
    reply["containers"] = container_changes(found, items)
    reply["objects"] = [object_after(value, state) for value, state in zip(objects, states, strict=True)]
    reply["global_hooks"] = [now - then for now, then in zip(global_hooks(), hooks, strict=True)]
    reply["rng"] = None if batched else RANDOM.outgoing()
    if "error" in reply:
        return reply
    outputs = [t for t in tensors_in(result) if t.requires_grad and not any(t is leaf for leaf in found.leaves)]  # noqa: F821
    if outputs:
        inputs = [leaf for leaf in found.leaves if leaf.requires_grad]
        reply["parameters"] = []
        for reference, module in modules_involved(request["target"], found):
            for name, parameter in module.named_parameters():
                if parameter.requires_grad:
                    inputs.append(parameter)
                    reply["parameters"].append((reference, name))
        reply["call"] = next(COUNTER)
        CALLS[reply["call"]] = (outputs, inputs)
    return reply


def parameter_of(value, name: str):
    """A model's parameter by name, or an optimizer's by "group/position"."""
    if isinstance(value, torch.optim.Optimizer):
        group, position = map(int, name.split("/"))
        return value.param_groups[group]["params"][position]
    return value.get_parameter(name)


def load_objects(data, proxies: dict | None = None) -> list:
    """The grader's models and optimizers of one call; a model whose class the kernel cannot import (the grader's
    own cell, say) is a :class:`GraderModule`."""
    objects = torch.load(io.BytesIO(data), weights_only=False) if data else []  # the grader's own objects
    for index, spec in (proxies or {}).items():
        objects[index] = grader_module(spec)
    return objects


def calls(request: dict) -> dict:
    """Many calls of one function in one request (see call): one reply each, in order, and the generators'
    states once, after the last (nothing of the grader's runs between the calls; a callback carries them)."""
    common = {key: value for key, value in request.items() if key not in ("op", "calls", "rng")}
    RANDOM.incoming(request.get("rng"))  # once: each call goes on from where the one before left the generator
    replies = [call({**common, **one}, batched=True) for one in request["calls"]]
    return {"replies": replies, "rng": RANDOM.outgoing()}


def simulate_module(request: dict) -> dict:
    """Build a module of the notebook's class on a simulated GPU and run it (see devices.module_on_simulated_gpu)."""
    found = Decoded()
    args, kwargs, x = decode(request["args"], found), decode(request["kwargs"], found), decode(request["x"], found)
    with lent_names(request.get("lend", {})):
        violations, outputs, tensors = module_on_simulated_gpu(  # noqa: F821
            OBJECTS[request["target"]], args, kwargs, x, request["modes"]
        )
    return {"violations": violations, "outputs": outputs, "tensors": tensors}


def backward(request: dict) -> dict:
    outputs, inputs = CALLS[request["call"]]
    return {"grads": gradients_of(outputs, inputs, request["grads"])}  # noqa: F821


def lookup(request: dict) -> dict:
    if request["name"] not in NAMESPACE:
        return {"found": False}
    return {"found": True, "value": encode(NAMESPACE[request["name"]])}


def get_attribute(request: dict) -> dict:
    return {"value": encode(getattr(OBJECTS[request["target"]], request["name"]))}


LENT_NAMES: dict = {}  # name in the notebook -> the code object of what the grader lent under it


def bind(request: dict) -> dict:
    """Bind a name in the notebook: to an object by handle, or to a function the grader lends."""
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
    elif "callback" in request:
        value = GraderFunction(request["callback"], request.get("label", name))
    elif "handle" in request:
        value = OBJECTS[request["handle"]]
    else:
        NAMESPACE.pop(name, None)
        return {}
    NAMESPACE[name] = value
    return {}


def whole_tree(request: dict) -> dict:
    """A mirrored module's whole tree, for a grader that let its mirror go before the module came back."""
    return {"tree": module_tree(OBJECTS[request["handle"]])}


def release(request: dict) -> dict:
    for key in request["handles"]:
        OBJECTS.pop(key, None)
        MIRRORED.pop(key, None)
    CALLS.clear()
    return {}


OPERATIONS = {
    "call": call,
    "calls": calls,
    "backward": backward,
    "lookup": lookup,
    "getattr": get_attribute,
    "bind": bind,
    "release": release,
    "tree": whole_tree,
    "simulate_module": simulate_module,
}


def answer(request: dict) -> dict:
    try:
        for key in request.get("released", ()):
            OBJECTS.pop(key, None)
            MIRRORED.pop(key, None)
        apply_push(request.get("push", {}))
        reply = OPERATIONS[request["op"]](request)
    except Exception as error:  # noqa: BLE001
        reply = {"error": error_entry(error)}  # noqa: F821
    if MIRRORED and request["op"] in ("call", "calls", "backward", "simulate_module"):
        reply["mirrors"] = mirror_reports()
    return reply


# ---------------------------------------------------------------- the grader's functions, called back


class GraderFunction:
    """A function of the grader's, passed or lent to the notebook: each call asks the grader."""

    def __init__(self, key: int, name: str):
        self.key, self.__name__, self.__qualname__ = key, name, name

    def __call__(self, *args, **kwargs):
        return call_grader(self.key, args, kwargs)

    def __repr__(self) -> str:
        return f"<function {self.__name__}>"


class GraderModule(torch.nn.Module):
    """A model of the grader's whose class stays there: its parameters and buffers are copies here (under the
    same names, in plain submodules), and calling it asks the grader, which runs its own model in this one's
    modes; gradients reach these parameters through the link."""

    def __init__(self, key: int, name: str):
        super().__init__()
        self.grader_key, self.grader_name = key, name

    def forward(self, *args, **kwargs):
        parameters = [p for p in self.parameters() if p.requires_grad]
        modes = [bool(sub.training) for sub in self.modules()]
        return call_grader(self.grader_key, args, kwargs, parameters, modes)

    def extra_repr(self) -> str:
        return f"the grader's {self.grader_name}"


def grader_module(spec: dict, root: bool = True) -> torch.nn.Module:
    module = GraderModule(spec["callback"], spec["type"]) if root else torch.nn.Module()
    module.training = spec["training"]
    for name, entry in spec["parameters"].items():
        module.register_parameter(name, None if entry is None else torch.nn.Parameter(fresh_tensor(entry)))
    for name, entry in spec["buffers"].items():
        module.register_buffer(name, None if entry is None else fresh_tensor(entry))
    for name, child in spec["children"].items():
        module.add_module(name, None if child is None else grader_module(child, root=False))
    return module


LENT.add(GraderFunction.__call__.__code__)  # noqa: F821 - what a function of the grader's does is not the notebook's


def frame_from_grader():
    return receive_frame(CONNECTION[-1])  # noqa: F821


def ask_grader(message: dict):
    """Send a request to the grader and answer what it asks meanwhile, until its answer comes."""
    if not CONNECTION:
        raise RuntimeError("a function of the grader's can only be called while the grader calls the notebook")
    send_frame(CONNECTION[-1], {"callback": message})  # noqa: F821
    while True:
        frame = frame_from_grader()
        if "op" in frame:
            send_frame(CONNECTION[-1], answer(frame))  # noqa: F821
            continue
        return frame["answer"]


def grader_error(entry: dict) -> Exception:
    import builtins

    kind = getattr(builtins, entry[ERROR], None)  # noqa: F821
    if isinstance(kind, type) and issubclass(kind, Exception):
        return kind(entry["message"])
    return type(entry[ERROR], (Exception,), {})(entry["message"])  # noqa: F821


def ask_backward(call_id: int):
    def backward(grads: list) -> list:
        reply = ask_grader({"op": "backward", "call": call_id, "grads": grads})
        if "error" in reply:
            raise grader_error(reply["error"])
        return reply["grads"]

    return backward


def call_grader(key: int, args: tuple, kwargs: dict, parameters: list = (), modes: list | None = None):
    """Call the grader's function ``key`` on copies; replay what it did to the tensors; link its result's graph
    (to ``parameters`` too: a :class:`GraderModule`'s, whose ``modes`` the grader's model takes)."""
    simulation = SIMULATIONS[-1] if SIMULATIONS else None  # noqa: F821 - from the devices source
    with torch._C.DisableTorchFunction():
        leaves: list = []
        message = {
            "op": "call",
            "target": key,
            "args": encode(args, leaves=leaves),
            "kwargs": encode(kwargs, leaves=leaves),
            "grad_enabled": torch.is_grad_enabled(),
            "rng": RANDOM.outgoing(),
            "modes": modes,
        }
        reply = ask_grader(message)
        RANDOM.incoming(reply.get("rng"))
        for leaf, state in zip(leaves, reply.get("args", []), strict=False):
            replay(leaf, state)  # noqa: F821
        if "error" in reply:
            raise grader_error(reply["error"])
        result = decode(reply["result"], Decoded())
        if reply.get("call"):
            inputs = [leaf for leaf in leaves if leaf.requires_grad] + list(parameters)
            result = linked(ask_backward(reply["call"]), reply["result"], result, inputs)  # noqa: F821
    if simulation is not None and any(simulation.kind_of(leaf) == "gpu" for leaf in leaves):
        for tensor in tensors_in(result):  # noqa: F821 - a function of the grader's computes on its inputs' device
            simulation.mark(tensor, "gpu")
    return result


def serve(text: str) -> None:
    """Answer one request with one line on stdout."""
    print(MARK + dumps(answer(loads(text))), flush=True)  # noqa: F821


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
    OBJECTS.clear()  # whatever an earlier hidden part left (one cut off did not say it ended)
    MIRRORED.clear()
    CALLS.clear()
    RANDOM.agreed = None
    with connection:
        connection.settimeout(None)
        CONNECTION.append(connection)
        try:
            while True:
                try:
                    request = frame_from_grader()
                except (ConnectionError, OSError):
                    return
                if request.get("op") == "end":  # the hidden part is over: nothing of it is kept
                    OBJECTS.clear()
                    MIRRORED.clear()
                    CALLS.clear()
                    return
                send_frame(connection, answer(request))  # noqa: F821
        finally:
            CONNECTION.remove(connection)


def serve_file(request_path: str, reply_path: str) -> None:
    """Answer one request read from a file with a file (large tensors skip the messaging), then a mark."""
    with open(request_path, "rb") as handle:
        reply = answer(from_bytes(handle.read()))  # noqa: F821
    with open(reply_path, "wb") as handle:
        handle.write(to_bytes(reply))  # noqa: F821
    print(MARK, flush=True)  # noqa: F821
