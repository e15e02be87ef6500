"""What crosses between the grader and a student's kernel, and how it is written.

A message is a tree of plain values (None, bool, int, float, complex, str, bytes, lists,
tuples, dicts), ``torch.device``, ``torch.dtype``, ``torch.Size`` and plain tensors. Its plain
part is pickled with no class or function in it and read back by an unpickler that refuses
every name. Devices, dtypes, sizes, complex numbers and CPU tensors of the usual dtypes are
written as plain data too (a tensor as its storage's bytes, dtype, shape, strides and offset;
tensors that share a storage share it again on the other side), and rebuilt from it; anything
else (a tensor on a GPU, say) is saved with ``torch.save`` and read back with
``torch.load(weights_only=True)``, PyTorch's loader that builds only those types: nothing a
student's kernel sends can run code in the grader.
Inside the tree, two tagged dicts stand for what cannot be copied:

- ``{TENSOR: t, "grad": bool, "parameter": bool, "dot_grad": g}``: a tensor (detached),
  whether it requires grad, whether it is an ``nn.Parameter``, and its ``.grad``;
- ``{HANDLE: id, "type": name, "callable": bool, "module": bool}``: an object that stays in
  the kernel (a student's function, class, module instance), reached by its id;
- ``{LEAF: n}``, ``{CONTAINER: n}``, ``{MODEL: n}``: in a call's result, or in what it did to
  a list or dict argument, the n-th tensor (list or dict, model) argument itself;
- ``{CALLBACK: id, "name": name}``: a function of the grader's passed or lent to the notebook;
  the kernel calls it back over the socket, and the grader answers with its result.

On the socket a message travels as a frame: its length in 8 bytes, then its pieces
(:func:`message_parts`), each tensor storage sent from its own memory and received straight into
a new tensor's (:func:`send_frame`, :func:`receive_frame`), so ResNet-18's 45 MB of parameters are
no longer copied four times before sending and five times on receipt. Either side may ask the
other while it answers (a callback inside a call, a call inside a callback), so a frame from the
kernel is an answer or ``{"callback": request}``, and one from the grader a request (it has
``"op"``) or ``{"answer": reply}``.

What a call did to the tensors it was given (values written in place, storage swapped, version
counter, requires_grad, ``.grad``) is reported with :func:`tensor_after` and replayed on the
other side's tensors with :func:`replay`; outputs computed on one side are linked to the other
side's inputs by :class:`AcrossBackward`, whose backward pass asks the side that computed them.

This file runs on both sides: the grader imports it, and :mod:`autograder.remote.client`
sends its source to the kernel, which needs nothing of the grader installed.
"""

from __future__ import annotations

import base64
import functools
import io
import pickle
import warnings

import torch

MARK = "@@dlcourse-reply@@"  # starts the agent's answer on the kernel's stdout (when not over the socket)
TENSOR = "__dlcourse_tensor__"
HANDLE = "__dlcourse_handle__"
ERROR = "__dlcourse_error__"
LEAF = "__dlcourse_leaf__"  # the n-th tensor argument of the call, as the grader sent it
CONTAINER = "__dlcourse_container__"  # the n-th list or dict argument of the call
MODULE = "__dlcourse_module__"  # a model of the grader's, as bytes of torch.save (grader to kernel only)
MODEL = "__dlcourse_model__"  # in a reply: the n-th model argument of the call
GENERATOR = "__dlcourse_generator__"  # a generator argument, as the list of what it yields
CALLBACK = "__dlcourse_callback__"  # a function of the grader's, called back from the kernel
SCALARS = frozenset({type(None), bool, int, float, str, bytes})  # what pickle writes without a class
PLAIN = (type(None), bool, int, float, complex, str, bytes, torch.device, torch.dtype, torch.Size)


REF = "__dlcourse_ref__"  # in a message's plain part: the n-th of its tensors (devices, dtypes, sizes, complex)


def message_parts(message) -> list:
    """A message as a list of bytes-like pieces: its plain part pickled without a single class or function
    (Python's fast C unpickler then builds nothing else), then, if it has any, its tensors, devices, dtypes,
    sizes and complex numbers described as plain data (:func:`special_as_plain`), each tensor storage's bytes
    (a view of the storage itself: nothing is copied before the socket), and what only ``torch.save`` can
    write. Each pickled piece is preceded by its length in 8 bytes."""
    special: list = []
    plain = pickle.dumps(without_special(message, special), protocol=5)
    parts = [len(plain).to_bytes(8, "big"), plain]
    if not special:
        return parts
    saved: list = []
    storages: list = []
    described = pickle.dumps(special_as_plain(special, saved, storages), protocol=5)
    parts += [len(described).to_bytes(8, "big"), described, *storages]
    if saved:
        buffer = io.BytesIO()
        torch.save(saved, buffer)
        parts.append(buffer.getvalue())
    return parts


def to_bytes(message) -> bytes:
    """A message as one piece of bytes (see :func:`message_parts`)."""
    return b"".join(message_parts(message))


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


RAW_DTYPES = {
    dtype_name(dtype): dtype
    for dtype in (
        torch.float16,
        torch.bfloat16,
        torch.float32,
        torch.float64,
        torch.uint8,
        torch.int8,
        torch.int16,
        torch.int32,
        torch.int64,
        torch.bool,
    )
}


def is_raw(tensor: torch.Tensor) -> bool:
    """Whether a tensor crosses as its storage's bytes: a plain, dense CPU tensor of a usual dtype."""
    return (
        type(tensor) is torch.Tensor
        and tensor.device.type == "cpu"
        and tensor.layout == torch.strided
        and dtype_name(tensor.dtype) in RAW_DTYPES
        and not tensor.requires_grad
        and not tensor.is_conj()
        and not tensor.is_neg()
    )


def storage_bytes(storage) -> memoryview:
    """A CPU storage's bytes, not copied."""
    return memoryview(torch.empty(0, dtype=torch.uint8).set_(storage).numpy()).cast("B")


def special_as_plain(special: list, saved: list, blobs: list) -> dict:
    """Plain data that :func:`special_from_plain` rebuilds ``special`` from, given the storages' bytes, which are
    appended to ``blobs``; what it cannot describe is appended to ``saved`` (for ``torch.save``) and named by
    its position there."""
    storages: dict[tuple[int, int], int] = {}  # (address, size) of a storage -> its index in blobs
    items: list = []
    for value in special:
        if isinstance(value, torch.Tensor) and is_raw(value):
            storage = value.untyped_storage()
            key = (storage.data_ptr(), storage.nbytes())
            if key not in storages:
                storages[key] = len(blobs)
                blobs.append(storage_bytes(storage))
            layout = [list(value.shape), list(value.stride()), value.storage_offset()]
            items.append(["tensor", storages[key], dtype_name(value.dtype), *layout])
        elif type(value) is torch.device:
            items.append(["device", str(value)])
        elif type(value) is torch.dtype and dtype_name(value) in RAW_DTYPES:
            items.append(["dtype", dtype_name(value)])
        elif type(value) is torch.Size:
            items.append(["size", list(value)])
        elif type(value) is complex:
            items.append(["complex", value.real, value.imag])
        else:
            items.append(["saved", len(saved)])
            saved.append(value)
    return {"storages": [blob.nbytes for blob in blobs], "items": items}


def special_from_plain(described, bases: list, saved: list | None) -> list:
    """The tensors, devices, dtypes, sizes and complex numbers :func:`special_as_plain` described, their storages
    given as uint8 tensors; a malformed description raises."""
    special = []
    for item in described["items"]:
        kind = item[0]
        if kind == "tensor":
            _, storage, dtype, shape, stride, offset = item
            special.append(bases[storage].view(RAW_DTYPES[dtype]).as_strided(shape, stride, offset))
        elif kind == "device":
            special.append(torch.device(item[1]))
        elif kind == "dtype":
            special.append(RAW_DTYPES[item[1]])
        elif kind == "size":
            special.append(torch.Size(int(size) for size in item[1]))
        elif kind == "complex":
            special.append(complex(float(item[1]), float(item[2])))
        elif kind == "saved" and saved is not None:
            special.append(saved[item[1]])
        else:
            raise pickle.UnpicklingError(f"not a message: {kind!r}")
    return special


def without_special(value, special: list):
    kind = type(value)
    if kind in SCALARS:
        return value
    if kind is list or kind is tuple:
        if all(type(item) in SCALARS for item in value):  # a batch of calls sends thousands of these
            return value
        return kind([without_special(item, special) for item in value])
    if kind is dict:
        return {key: without_special(item, special) for key, item in value.items()}
    special.append(value)
    return {REF: len(special) - 1}


class PlainUnpickler(pickle.Unpickler):
    """Builds only what pickle builds without looking up a name: None, bools, numbers, strings, bytes, lists,
    tuples and dicts."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"{module}.{name} is not plain data")


def with_special(value, special: list):
    if type(value) in SCALARS:
        return value
    if type(value) is dict:
        if len(value) == 1 and REF in value and type(value[REF]) is int and 0 <= value[REF] < len(special):
            return special[value[REF]]
        return {key: with_special(item, special) for key, item in value.items()}
    if type(value) in (list, tuple):
        return type(value)(with_special(item, special) for item in value)
    return value


class BytesReader:
    """A message's pieces read from bytes in memory."""

    def __init__(self, data):
        self.data, self.at, self.size = memoryview(data).cast("B"), 0, memoryview(data).nbytes

    def left(self) -> int:
        return self.size - self.at

    def take(self, size: int) -> int:
        """Count ``size`` more bytes as read (where they started), or refuse to read past the end."""
        if size > self.left():
            raise pickle.UnpicklingError("not a message: too short")
        self.at += size
        return self.at - size

    def read(self, size: int):
        start = self.take(size)
        return self.data[start : start + size]

    def storage(self, size: int) -> torch.Tensor:
        if not size:
            return torch.empty(0, dtype=torch.uint8)  # frombuffer refuses an empty buffer
        return torch.frombuffer(bytearray(self.read(size)), dtype=torch.uint8)


class SocketReader(BytesReader):
    """A frame's pieces read from a socket as they are needed: each storage straight into a tensor's memory."""

    def __init__(self, connection, size: int):
        self.connection, self.size, self.at = connection, size, 0

    def read(self, size: int) -> bytes:
        self.take(size)
        return receive_exactly(self.connection, size)

    def storage(self, size: int) -> torch.Tensor:
        self.take(size)
        tensor = torch.empty(size, dtype=torch.uint8)
        receive_into(self.connection, memoryview(tensor.numpy()).cast("B"))
        return tensor


def read_pickled(reader: BytesReader):
    size = int.from_bytes(reader.read(8), "big")
    return PlainUnpickler(io.BytesIO(reader.read(size))).load()


def storage_sizes(described) -> list[int]:
    sizes = described.get("storages") if type(described) is dict else None
    if type(sizes) is not list or not all(type(size) is int and size >= 0 for size in sizes):
        raise pickle.UnpicklingError("not a message: storage sizes")
    return sizes


def read_message(reader: BytesReader):
    """A message written by :func:`message_parts`; only plain values and tensors are built (what crossed as
    plain data rebuilt from it; the rest by PyTorch's ``weights_only`` loader)."""
    plain = read_pickled(reader)
    if not reader.left():
        return plain
    described = read_pickled(reader)
    sizes = storage_sizes(described)
    if sum(sizes) > reader.left():
        raise pickle.UnpicklingError("not a message: storages beyond its end")
    bases = [reader.storage(size) for size in sizes]
    saved = None
    if reader.left():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a forged message's pickle protocol, say
            saved = torch.load(io.BytesIO(reader.read(reader.left())), weights_only=True)
        if type(saved) is not list:
            raise pickle.UnpicklingError("not a message")
    return with_special(plain, special_from_plain(described, bases, saved))


def from_bytes(data):
    """A message written by :func:`to_bytes` (see :func:`read_message`)."""
    return read_message(BytesReader(data))


def dumps(message) -> str:
    """The message as one line of ASCII (small messages travel inside the code line)."""
    return base64.b64encode(to_bytes(message)).decode("ascii")


def loads(text: str):
    """A message written by :func:`dumps`."""
    return from_bytes(base64.b64decode(text, validate=True))


def tensor_entry(tensor: torch.Tensor) -> dict:
    grad = tensor.grad if tensor.is_leaf else None
    return {
        TENSOR: tensor.detach(),
        "grad": bool(tensor.requires_grad),
        "parameter": isinstance(tensor, torch.nn.Parameter),
        "dot_grad": None if grad is None else grad.detach(),
    }


def is_tagged(value, tag: str) -> bool:
    return isinstance(value, dict) and tag in value


def error_entry(error: BaseException) -> dict:
    return {ERROR: type(error).__name__, "message": str(error)[:2000]}


SMALL_PIECE = 1 << 16  # pieces below this size are joined before they are sent; larger ones go as they are


def send_frame(connection, message) -> None:
    """A message on a socket: its length in 8 bytes, then its pieces (the storages' bytes not copied)."""
    parts = message_parts(message)
    size = sum(memoryview(part).nbytes for part in parts)
    pending = [size.to_bytes(8, "big")]
    for part in parts:
        if memoryview(part).nbytes < SMALL_PIECE:
            pending.append(part)
            continue
        connection.sendall(b"".join(pending))
        pending = []
        connection.sendall(part)
    if pending:
        connection.sendall(b"".join(pending))


class FrameTooLong(Exception):
    """A frame announced as longer than the reader accepts (it is left unread)."""


def receive_frame(connection, largest: int | None = None):
    """A message sent by :func:`send_frame`; a frame longer than ``largest`` bytes raises FrameTooLong."""
    size = int.from_bytes(receive_exactly(connection, 8), "big")
    if largest is not None and size > largest:
        raise FrameTooLong(f"the message is {size:,} bytes long")
    return read_message(SocketReader(connection, size))


def receive_exactly(connection, size: int) -> bytes:
    chunks = []
    while size:
        chunk = connection.recv(min(size, 1 << 20))
        if not chunk:
            raise ConnectionError("the other side closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def receive_into(connection, buffer: memoryview) -> None:
    while buffer.nbytes:
        count = connection.recv_into(buffer)
        if not count:
            raise ConnectionError("the other side closed the connection")
        buffer = buffer[count:]


def memory_of(tensor) -> int:
    return 0 if tensor.device.type == "meta" else tensor.untyped_storage().data_ptr()


def tensor_before(tensor) -> tuple:
    grad = tensor.grad if tensor.is_leaf else None
    return tensor.detach().clone(), tensor._version, memory_of(tensor), None if grad is None else memory_of(grad)


def tensor_after(tensor, before: tuple) -> dict:
    """What a call did to one tensor: values, storage, version counter, requires_grad, .grad."""
    values, version, memory, grad_memory = before
    same = tensor.shape == values.shape and tensor.dtype == values.dtype and tensor.device == values.device
    changed = not same or (tensor.device.type != "meta" and not torch.equal(tensor.detach(), values))
    grad = tensor.grad if tensor.is_leaf else None
    return {
        "values": tensor.detach().clone() if changed else None,
        "swapped": memory_of(tensor) != memory,
        "version": tensor._version - version,
        "requires_grad": bool(tensor.requires_grad),
        "grad": None if grad is None else grad.detach().clone(),
        "grad_swapped": grad is not None and grad_memory is not None and memory_of(grad) != grad_memory,
    }


def replay(leaf: torch.Tensor, state: dict) -> None:
    """Do to this side's tensor what the other side's call did to its copy."""
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


def tensors_in(value) -> list:
    if isinstance(value, torch.Tensor):
        return [value]
    if type(value) in (list, tuple):
        return [tensor for item in value for tensor in tensors_in(item)]
    if type(value) is dict and all(type(key) in (str, int) for key in value):
        return [tensor for item in value.values() for tensor in tensors_in(item)]
    return []


class Link:
    """Outputs computed on the other side, and ``backward(grads) -> input grads``, which asks there."""

    def __init__(self, backward, outputs: list):
        self.backward, self.outputs = backward, outputs


class AcrossBackward(torch.autograd.Function):
    """Outputs computed on the other side; their backward pass runs there and returns the inputs' gradients."""

    @staticmethod
    def forward(ctx, link: Link, anchor: torch.Tensor, *inputs: torch.Tensor):
        ctx.link = link
        return tuple(output.clone() for output in link.outputs)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor):
        return (None, None, *ctx.link.backward([grad.detach() for grad in grads]))


def needing_grad(entry, value):
    """The tensors of a received value that the other side sent requiring grad, in its order."""
    if is_tagged(entry, TENSOR):
        if entry["grad"]:
            yield value
    elif type(entry) in (list, tuple):
        for item, received in zip(entry, value, strict=True):
            yield from needing_grad(item, received)
    elif type(entry) is dict and not any(is_tagged(entry, tag) for tag in (HANDLE, LEAF, CONTAINER, MODEL, CALLBACK)):
        for key, item in entry.items():
            yield from needing_grad(item, value[key])


def substitute(value, replaced: dict):
    if isinstance(value, torch.Tensor):
        return replaced.get(id(value), value)
    if type(value) in (list, tuple):
        return type(value)(substitute(item, replaced) for item in value)
    if type(value) is dict:
        return {key: substitute(item, replaced) for key, item in value.items()}
    return value


def linked(backward, entry, result, inputs: list):
    """``result`` with its tensors that require grad made outputs of one :class:`AcrossBackward`."""
    needing = list(needing_grad(entry, result))
    anchor = torch.zeros((), requires_grad=True)  # so the outputs require grad even when no input does
    outputs = iter(AcrossBackward.apply(Link(backward, needing), anchor, *inputs))
    replaced = {id(tensor): next(outputs) for tensor in needing}
    return substitute(result, replaced)


def gradients_of(outputs: list, inputs: list, grads: list) -> list:
    """The inputs' gradients for upstream ``grads`` of ``outputs`` (None where unused); .grad left alone."""
    pairs = [(output, grad) for output, grad in zip(outputs, grads, strict=True) if grad is not None]
    if not pairs or not inputs:
        return [None] * len(inputs)
    # One scalar, sum(output * grad), has exactly these gradients, and a scalar's backward skips the shape
    # checks whose first use imports sympy (a third of a second in every fresh kernel).
    with torch.enable_grad():  # a backward pass (where this runs) records nothing by default
        total = sum((output * grad).sum() for output, grad in pairs)
    found = torch.autograd.grad(total, inputs, retain_graph=True, allow_unused=True)
    return [None if grad is None else grad.detach() for grad in found]


@functools.lru_cache(maxsize=1)  # the state rarely moves: comparing tuples costs far less than a new tensor
def random_keys_as_tensor(keys: tuple) -> torch.Tensor:
    """``random``'s 625 state integers as one tensor, compared and sent in one piece."""
    return torch.tensor(keys, dtype=torch.int64)


def generator_states() -> dict:
    """The global generators' states, as plain data and tensors: PyTorch's, Python's ``random`` and NumPy's."""
    import random

    version, keys, gauss_next = random.getstate()
    states = {"torch": torch.get_rng_state(), "random": (version, random_keys_as_tensor(keys), gauss_next)}
    try:
        import numpy
    except ImportError:
        return states
    name, keys, position, has_gauss, cached = numpy.random.get_state()
    states["numpy"] = (name, torch.from_numpy(keys.astype("int64")), position, has_gauss, cached)
    return states


def same_state(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
    if type(a) is tuple and type(b) is tuple:
        return len(a) == len(b) and all(same_state(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def follow_generator(name: str, state) -> None:
    """Take over the other side's state of one global generator; a state that does not fit is ignored."""
    import random

    try:
        if name == "torch":
            torch.set_rng_state(state)
        elif name == "random":
            random.setstate((state[0], tuple(state[1].tolist()), state[2]))
        elif name == "numpy":
            import numpy

            keys = state[1].numpy().astype("uint32")
            numpy.random.set_state((state[0], keys, state[2], state[3], state[4]))
    except (ImportError, RuntimeError, TypeError, ValueError, IndexError, AttributeError, OverflowError):
        pass


class RandomState:
    """The global generators' states (PyTorch's, Python's ``random`` and NumPy's) as last agreed with the other
    side, so that each crosses only when it moved: each side sends the states that differ from the agreed ones
    with a request (or an answer), and follows those it receives, as if every call ran in its own process (a
    seeded random start matches; a call that draws from a global generator is seen to)."""

    def __init__(self):
        self.agreed: dict | None = None

    def outgoing(self) -> dict | None:
        states = generator_states()
        agreed = self.agreed or {}
        moved = {name: state for name, state in states.items() if not same_state(state, agreed.get(name))}
        self.agreed = states
        return moved or None

    def incoming(self, moved) -> None:
        if type(moved) is not dict:
            return
        for name, state in moved.items():
            follow_generator(name, state)
        self.agreed = generator_states()
