"""What crosses between the grader and a student's kernel, and how it is written.

A message is a tree of plain values (None, bool, int, float, complex, str, bytes, lists,
tuples, dicts), ``torch.device``, ``torch.dtype``, ``torch.Size`` and plain tensors, saved
with ``torch.save`` and read back with ``torch.load(weights_only=True)``, PyTorch's loader
that builds only those types: nothing a student's kernel sends can run code in the grader.
Inside the tree, two tagged dicts stand for what cannot be copied:

- ``{TENSOR: t, "grad": bool, "parameter": bool, "dot_grad": g}``: a tensor (detached),
  whether it requires grad, whether it is an ``nn.Parameter``, and its ``.grad``;
- ``{HANDLE: id, "type": name, "callable": bool, "module": bool}``: an object that stays in
  the kernel (a student's function, class, module instance), reached by its id;
- ``{LEAF: n}``, ``{CONTAINER: n}``, ``{MODEL: n}``: in a call's result, or in what it did to
  a list or dict argument, the n-th tensor (list or dict, model) argument itself.

This file runs on both sides: the grader imports it, and :mod:`autograder.remote.client`
sends its source to the kernel, which needs nothing of the grader installed.
"""

from __future__ import annotations

import base64
import io
import warnings

import torch

TENSOR = "__dlcourse_tensor__"
HANDLE = "__dlcourse_handle__"
ERROR = "__dlcourse_error__"
LEAF = "__dlcourse_leaf__"  # the n-th tensor argument of the call, as the grader sent it
CONTAINER = "__dlcourse_container__"  # the n-th list or dict argument of the call
MODULE = "__dlcourse_module__"  # a model of the grader's, as bytes of torch.save (grader to kernel only)
MODEL = "__dlcourse_model__"  # in a reply: the n-th model argument of the call
GENERATOR = "__dlcourse_generator__"  # a generator argument, as the list of what it yields
PLAIN = (type(None), bool, int, float, complex, str, bytes, torch.device, torch.dtype, torch.Size)


def to_bytes(message) -> bytes:
    buffer = io.BytesIO()
    torch.save(message, buffer)
    return buffer.getvalue()


def from_bytes(data: bytes):
    """A message written by :func:`to_bytes`; only plain values and tensors are built."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a forged message's pickle protocol, say
        return torch.load(io.BytesIO(data), weights_only=True)


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
