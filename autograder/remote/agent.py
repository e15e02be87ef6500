"""The kernel's end of the grader's calls: runs in the student's kernel, knows no test.

The grader sends this file's source (after :mod:`autograder.remote.wire`'s) to the kernel
once; each request is then one line ``_dlcourse_agent.serve(TEXT)`` and the answer one line
of stdout starting with :data:`MARK`. A request looks up a name in the notebook, calls a
function, reads or sets an attribute, runs a backward pass or releases objects. Arguments
arrive as copies; after a call the agent reports what the call did to each tensor argument
(values changed, storage swapped, version counter, requires_grad, .grad) so the grader can
replay it on its own tensors.

Nothing here is trusted: a student can replace any of it, and gains nothing by it, because
every comparison and every message is made in the grader from copies of the values.
"""

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


def decode(value, leaves: list, containers: list):
    """The grader's arguments as kernel objects; tensors (fresh leaves), lists and dicts collected in order."""
    if is_tagged(value, TENSOR):  # noqa: F821
        tensor = value[TENSOR].clone().requires_grad_(value["grad"])  # noqa: F821
        leaves.append(tensor)
        return tensor
    if is_tagged(value, HANDLE):  # noqa: F821
        return OBJECTS[value[HANDLE]]  # noqa: F821
    if type(value) is tuple:
        return tuple(decode(item, leaves, containers) for item in value)
    if type(value) is list:
        container: list = []
        containers.append(container)
        container.extend(decode(item, leaves, containers) for item in value)
        return container
    if type(value) is dict:
        container: dict = {}
        containers.append(container)
        container.update((key, decode(item, leaves, containers)) for key, item in value.items())
        return container
    return value


def shallow(container) -> list:
    items = container.items() if isinstance(container, dict) else enumerate(container)
    return [(key, id(item)) for key, item in items]


def encode_contents(container, leaves: list, containers: list):
    """A list or dict argument's contents; the call's own arguments in it written as references to them."""

    def reference(value):
        for tag, arguments in ((LEAF, leaves), (CONTAINER, containers)):  # noqa: F821
            for index, argument in enumerate(arguments):
                if value is argument:
                    return {tag: index}
        if type(value) is tuple:
            return tuple(reference(item) for item in value)
        return encode(value)

    if isinstance(container, dict):
        return {key: reference(item) for key, item in container.items()}
    return [reference(item) for item in container]


def before_call(leaves: list, containers: list) -> tuple:
    tensors = [(leaf.clone(), leaf._version, leaf.untyped_storage().data_ptr()) for leaf in leaves]
    return tensors, [shallow(container) for container in containers]


def container_changes(leaves: list, containers: list, before: list) -> list:
    """For each list or dict argument: None, or its new contents when the call changed it."""
    return [
        None if shallow(container) == items else encode_contents(container, leaves, containers)
        for container, items in zip(containers, before, strict=True)
    ]


def after_call(leaves: list, before: list) -> list:
    """What the call did to each tensor argument."""
    states = []
    for leaf, (values, version, pointer) in zip(leaves, before, strict=True):
        changed = leaf.shape != values.shape or leaf.dtype != values.dtype or not torch.equal(leaf, values)
        states.append(
            {
                "values": leaf.detach().clone() if changed else None,
                "swapped": leaf.untyped_storage().data_ptr() != pointer,
                "version": leaf._version - version,
                "requires_grad": bool(leaf.requires_grad),
                "grad": None if leaf.grad is None else leaf.grad.detach().clone(),
            }
        )
    return states


def tensors_in(value) -> list:
    if isinstance(value, torch.Tensor):
        return [value]
    if type(value) in (list, tuple):
        return [tensor for item in value for tensor in tensors_in(item)]
    if type(value) is dict:
        return [tensor for item in value.values() for tensor in tensors_in(item)]
    return []


def call(request: dict) -> dict:
    leaves: list = []
    containers: list = []
    function = OBJECTS[request["target"]]
    args = decode(request["args"], leaves, containers)
    kwargs = decode(request["kwargs"], leaves, containers)
    tensors, items = before_call(leaves, containers)
    try:
        result = function(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - the grader decides what an error means
        reply = {"error": error_entry(error)}  # noqa: F821
    else:
        reply = {"result": encode(result), "call": None}
    reply["args"] = after_call(leaves, tensors)
    reply["containers"] = container_changes(leaves, containers, items)
    if "error" in reply:
        return reply
    outputs = [tensor for tensor in tensors_in(result) if tensor.requires_grad]
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


def release(request: dict) -> dict:
    for key in request["handles"]:
        OBJECTS.pop(key, None)
    CALLS.clear()
    return {}


OPERATIONS = {"call": call, "backward": backward, "lookup": lookup, "getattr": get_attribute, "release": release}


def serve(text: str) -> None:
    """Answer one request with one line on stdout."""
    request = loads(text)  # noqa: F821
    try:
        reply = OPERATIONS[request["op"]](request)
    except Exception as error:  # noqa: BLE001
        reply = {"error": error_entry(error)}  # noqa: F821
    print(MARK + dumps(reply), flush=True)  # noqa: F821
