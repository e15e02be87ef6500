"""Hidden tests of lab00_setup: standardize, pairwise_sq_distances, one_hot, to_device, fit_line.

They run in the grader's process; the student's functions are reached through the notebook's
namespace (``globals()`` of the test cell, a remote namespace when graded).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import torch
import torch.nn.functional as F

from autograder.battery.student import Student, call
from dlcourse.checks import check_close, check_true


def check_standardize(namespace: MutableMapping[str, Any]) -> None:
    student = Student(namespace)
    standardize, device = student.function("standardize"), student.device

    # batch_norm in training mode without affine parameters normalizes each column with its
    # mean and biased variance; a negligible eps keeps it exact, float64 keeps it far below tolerance
    def reference(t):
        return F.batch_norm(t.double().cpu(), None, None, training=True, eps=1e-20).to(t.device, t.dtype)

    gen = torch.Generator().manual_seed(1)
    for shape, scale in [((5, 3), 1.0), ((64, 7), 100.0), ((2, 4), 0.01)]:
        # offset in proportion to the spread, so float32 rounding stays far below the tolerance
        x = ((torch.randn(shape, generator=gen) + 3.0) * scale).to(device)
        x_before = x.clone()
        z = call(f"standardize on a {shape} input", standardize, x)
        check_true("a tensor", isinstance(z, torch.Tensor), f"standardize must return a tensor, got {type(z).__name__}")
        check_true(
            "same shape", tuple(z.shape) == shape, f"for x of shape {shape} standardize returned shape {tuple(z.shape)}"
        )
        check_true("same device", z.device == x.device, f"x was on {x.device} but the result is on {z.device}")
        check_close(f"standardize on a {shape} input", z, reference(x), atol=1e-4, rtol=1e-4)
        check_true("x unchanged", torch.equal(x, x_before), "standardize modified its input x in place")
    x64 = torch.randn(10, 3, generator=gen, dtype=torch.float64)
    check_close("standardize in float64", call("standardize in float64", standardize, x64), reference(x64), atol=1e-10)


def check_pairwise_sq_distances(namespace: MutableMapping[str, Any]) -> None:
    student = Student(namespace)
    pairwise_sq_distances, device = student.function("pairwise_sq_distances"), student.device

    def reference(a, b):
        a64, b64 = a.double().cpu(), b.double().cpu()
        distances = torch.cdist(a64, b64, compute_mode="donot_use_mm_for_euclid_dist") ** 2
        return distances.to(a.device, a.dtype)

    gen = torch.Generator().manual_seed(2)
    for n, m, d in [(7, 5, 3), (1, 9, 16), (12, 1, 1), (20, 30, 64)]:
        a = torch.randn(n, d, generator=gen).to(device)
        b = torch.randn(m, d, generator=gen).to(device)
        result = call(f"pairwise_sq_distances for N={n}, M={m}, D={d}", pairwise_sq_distances, a, b)
        check_true(
            "shape (N, M)",
            isinstance(result, torch.Tensor) and tuple(result.shape) == (n, m),
            f"for a of shape {(n, d)} and b of shape {(m, d)} the result must be a tensor of shape {(n, m)}, "
            f"got {getattr(result, 'shape', type(result).__name__)}",
        )
        check_close(f"distances for N={n}, M={m}, D={d}", result, reference(a, b), atol=1e-3, rtol=1e-4)
    far = torch.randn(4, 3, generator=gen) + 100.0
    check_close(
        "distances of points far from the origin",
        call("pairwise_sq_distances far from the origin", pairwise_sq_distances, far, far),
        reference(far, far),
        atol=0.05,
        rtol=1e-3,
    )


def check_one_hot(namespace: MutableMapping[str, Any]) -> None:
    student = Student(namespace)
    one_hot, device = student.function("one_hot"), student.device
    gen = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 4, (50,), generator=gen).to(device)
    encoded = call("one_hot(labels, 10)", one_hot, labels, 10)
    check_true("a tensor", isinstance(encoded, torch.Tensor), f"one_hot must return a tensor, got {type(encoded)}")
    check_true(
        "num_classes respected",
        tuple(encoded.shape) == (50, 10),
        f"labels below 4 with num_classes=10 must give shape (50, 10), got {tuple(encoded.shape)}; "
        "take the number of columns from num_classes",
    )
    check_true(
        "float result",
        torch.is_floating_point(encoded),
        f"one-hot rows must be a float tensor, got dtype {encoded.dtype}",
    )
    check_true(
        "same device",
        encoded.device == labels.device,
        f"labels were on {labels.device} but the result is on {encoded.device}",
    )
    check_close("one_hot on 50 random labels", encoded, F.one_hot(labels, 10).float())
    empty = call("one_hot of an empty batch", one_hot, labels[:0], 5)
    check_true(
        "empty batch",
        isinstance(empty, torch.Tensor) and tuple(empty.shape) == (0, 5),
        "an empty batch of labels must give an empty (0, num_classes) tensor",
    )


def check_to_device(namespace: MutableMapping[str, Any]) -> None:
    to_device = Student(namespace).function("to_device")
    # The "meta" device holds shapes without data: it exists on every machine, so it
    # proves the code moves tensors wherever it is told, not only to the CPU.
    meta = torch.device("meta")
    batch = {"x": torch.zeros(2, 3), "pair": [torch.ones(1), (torch.zeros(4), 7)], "name": "digits"}
    moved = call("to_device(batch, meta)", to_device, batch, meta)
    check_true(
        "dict kept",
        isinstance(moved, dict) and set(moved) == {"x", "pair", "name"},
        "a dict must come back as a dict with the same keys",
    )
    check_true(
        "top-level tensor moved",
        isinstance(moved["x"], torch.Tensor) and moved["x"].device == meta,
        "tensors inside a dict were not moved",
    )
    check_true(
        "nested list kept",
        isinstance(moved["pair"], list) and len(moved["pair"]) == 2,
        "a list inside the batch must stay a list",
    )
    check_true(
        "nested tensors moved",
        isinstance(moved["pair"][1], tuple | list)
        and all(isinstance(t, torch.Tensor) and t.device == meta for t in (moved["pair"][0], moved["pair"][1][0])),
        "tensors nested inside lists and tuples must be moved too; recurse into containers",
    )
    check_true(
        "nested tuple kept",
        isinstance(moved["pair"][1], tuple) and moved["pair"][1][1] == 7,
        "a tuple inside the batch must stay a tuple, and non-tensors stay as they are",
    )
    check_true("strings unchanged", moved["name"] == "digits", "non-tensor values must be returned unchanged")
    check_true(
        "input untouched",
        batch["x"].device.type == "cpu" and batch["pair"][0].device.type == "cpu",
        "to_device must not change the batch it was given",
    )
    single = call("to_device(tensor, meta)", to_device, torch.ones(2), meta)
    check_true(
        "single tensor",
        isinstance(single, torch.Tensor) and single.device == meta,
        "a bare tensor must be moved too",
    )


def check_fit_line(namespace: MutableMapping[str, Any]) -> None:
    student = Student(namespace)
    fit_line, device = student.function("fit_line"), student.device

    def reference(x, y, steps, lr):
        # the gradients of the mean squared error, written out by hand in float64
        x, y = x.double().cpu(), y.double().cpu()
        w = b = 0.0
        for _ in range(steps):
            residual = w * x + b - y
            grad_w, grad_b = 2 * (residual * x).mean().item(), 2 * residual.mean().item()
            w, b = w - lr * grad_w, b - lr * grad_b
        return w, b

    gen = torch.Generator().manual_seed(4)
    x = torch.randn(40, generator=gen).to(device)
    y = -1.5 * x + 2.0 + 0.3 * torch.randn(40, generator=gen).to(device)
    for steps, lr in [(1, 0.1), (2, 0.1), (5, 0.05), (30, 0.1)]:
        w, b = call(f"fit_line(steps={steps}, lr={lr})", fit_line, x, y, steps=steps, lr=lr)
        check_true(
            "returns floats",
            isinstance(w, float) and isinstance(b, float),
            f"return (w, b) as Python floats (use .item()), got {type(w).__name__}, {type(b).__name__}",
        )
        ref_w, ref_b = reference(x, y, steps, lr)
        check_close(f"w after {steps} steps (lr={lr})", w, ref_w, atol=1e-4, rtol=1e-4)
        check_close(f"b after {steps} steps (lr={lr})", b, ref_b, atol=1e-4, rtol=1e-4)
    w, b = call("fit_line(steps=0)", fit_line, x, y, steps=0, lr=0.1)
    check_true("zero steps", (w, b) == (0.0, 0.0), "with steps=0 the parameters must stay at w = b = 0")
