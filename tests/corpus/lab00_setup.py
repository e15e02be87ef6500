"""lab00_setup: realistic mistakes (each caught by the named test cell) and correct alternatives."""

from tests.submissions import WrongImplementation as Wrong

# Each test cell tests one answer (and the answers USES names; tests/test_lab_namespaces.py checks it), so
# entries of unrelated answer cells are graded together, several to a notebook (tests/grading.py).
TESTED_BY = {
    "standardize": ("test_standardize",),
    "pairwise_sq_distances": ("test_pairwise_sq_distances",),
    "one_hot": ("test_one_hot",),
    "to_device": ("test_to_device",),
    "fit_line": ("test_fit_line",),
}

CORPUS = [
    Wrong(
        "standardize_unbiased_std",
        "standardize",
        """
def standardize(x):
    return (x - x.mean(dim=0)) / x.std(dim=0)  # torch.std divides by N - 1
""",
        ("test_standardize",),
    ),
    Wrong(
        "standardize_rows",
        "standardize",
        """
def standardize(x):
    mean = x.mean(dim=1, keepdim=True)
    std = x.std(dim=1, correction=0, keepdim=True)
    return (x - mean) / std
""",
        ("test_standardize",),
    ),
    Wrong(
        "standardize_in_place",
        "standardize",
        """
def standardize(x):
    x -= x.mean(dim=0)
    x /= x.std(dim=0, correction=0)
    return x
""",
        ("test_standardize",),
    ),
    Wrong(
        "distances_not_squared",
        "pairwise_sq_distances",
        """
def pairwise_sq_distances(a, b):
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(dim=-1).sqrt()
""",
        ("test_pairwise_sq_distances",),
    ),
    Wrong(
        "distances_sum_before_square",
        "pairwise_sq_distances",
        """
def pairwise_sq_distances(a, b):
    return (a[:, None, :] - b[None, :, :]).sum(dim=-1) ** 2
""",
        ("test_pairwise_sq_distances",),
    ),
    Wrong(
        "distances_transposed",
        "pairwise_sq_distances",
        """
def pairwise_sq_distances(a, b):
    return ((b[:, None, :] - a[None, :, :]) ** 2).sum(dim=-1)
""",
        ("test_pairwise_sq_distances",),
    ),
    Wrong(
        "one_hot_classes_from_labels",
        "one_hot",
        """
def one_hot(labels, num_classes):
    return torch.nn.functional.one_hot(labels).float()
""",
        ("test_one_hot",),
    ),
    Wrong(
        "one_hot_integer_dtype",
        "one_hot",
        """
def one_hot(labels, num_classes):
    return torch.nn.functional.one_hot(labels, num_classes)
""",
        ("test_one_hot",),
    ),
    Wrong(
        "to_device_top_level_only",
        "to_device",
        """
def to_device(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    return type(batch)(t.to(device) for t in batch)
""",
        ("test_to_device",),
    ),
    Wrong(
        "to_device_tuples_become_lists",
        "to_device",
        """
def to_device(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return [to_device(v, device) for v in batch]
    return batch
""",
        ("test_to_device",),
    ),
    Wrong(
        "fit_line_no_zero_grad",
        "fit_line",
        """
def fit_line(x, y, steps=100, lr=0.1):
    w = torch.zeros((), device=x.device, requires_grad=True)
    b = torch.zeros((), device=x.device, requires_grad=True)
    for _ in range(steps):
        loss = ((w * x + b - y) ** 2).mean()
        loss.backward()  # gradients accumulate: .grad is never reset
        with torch.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
    return w.item(), b.item()
""",
        ("test_fit_line",),
    ),
    Wrong(
        "fit_line_sum_loss",
        "fit_line",
        """
def fit_line(x, y, steps=100, lr=0.1):
    w = torch.zeros((), requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    for _ in range(steps):
        loss = ((w * x + b - y) ** 2).sum() / 20  # not the mean unless N == 20
        w.grad = b.grad = None
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
    return w.item(), b.item()
""",
        ("test_fit_line",),
    ),
    Wrong(
        "fit_line_returns_tensors",
        "fit_line",
        """
def fit_line(x, y, steps=100, lr=0.1):
    w = torch.zeros((), requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.SGD([w, b], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        ((w * x + b - y) ** 2).mean().backward()
        optimizer.step()
    return w, b
""",
        ("test_fit_line",),
    ),
]

# Correct answers written in other styles: each must keep full marks.
ALTERNATIVES = [
    Wrong(
        "standardize_var_sqrt",
        "standardize",
        """
def standardize(x):
    centred = x - x.mean(0)
    return centred / centred.pow(2).mean(0).sqrt()
""",
        (),
    ),
    Wrong(
        "distances_expanded_square",
        "pairwise_sq_distances",
        """
def pairwise_sq_distances(a, b):
    return (a * a).sum(1)[:, None] - 2 * a @ b.T + (b * b).sum(1)[None, :]
""",
        (),
    ),
    Wrong(
        "one_hot_functional",
        "one_hot",
        """
import torch.nn.functional as F

def one_hot(labels, num_classes):
    return F.one_hot(labels, num_classes=num_classes).to(torch.float32)
""",
        (),
    ),
    Wrong(
        "to_device_pytree",
        "to_device",
        """
from torch.utils._pytree import tree_map

def to_device(batch, device):
    return tree_map(lambda v: v.to(device) if isinstance(v, torch.Tensor) else v, batch)
""",
        (),
    ),
    Wrong(
        "fit_line_optimizer",
        "fit_line",
        """
def fit_line(x, y, steps=100, lr=0.1):
    params = torch.zeros(2, device=x.device, requires_grad=True)
    optimizer = torch.optim.SGD([params], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(params[0] * x + params[1], y)
        loss.backward()
        optimizer.step()
    return float(params[0]), float(params[1])
""",
        (),
    ),
]
