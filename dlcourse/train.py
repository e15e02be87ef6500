"""The training loop and evaluation every chapter and lab shares."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from dlcourse.config import is_quick_mode
from dlcourse.device import get_device

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class History:
    """Per-epoch averages recorded by :func:`train`."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)

    def last(self) -> dict[str, float]:
        """The final value of every recorded curve."""
        return {name: values[-1] for name, values in vars(self).items() if values}


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose arg-max logit equals the label."""
    return (logits.argmax(dim=-1) == labels).float().mean().item()


def show_progress(progress: bool | None) -> bool:
    """Progress bars are on by default, off in quick mode (graders read no bars)."""
    return (not is_quick_mode()) if progress is None else progress


def train_epoch(
    model: nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn = F.cross_entropy,
    device: torch.device | None = None,
    max_norm: float | None = None,
    progress: bool | None = None,
) -> tuple[float, float]:
    """One pass over ``loader``; returns the example-weighted mean loss and accuracy.

    ``max_norm`` clips the global gradient norm before each step when given.
    """
    device = device or get_device()
    model.train()
    total_loss = total_correct = total = 0.0
    for x, y in tqdm(loader, desc="train", leave=False, disable=not show_progress(progress)):
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        logits = model(x)
        loss = loss_fn(logits, y)
        loss.backward()
        if max_norm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        optimizer.step()
        total += len(y)
        total_loss += loss.item() * len(y)
        total_correct += (logits.argmax(dim=-1) == y).sum().item()
    return total_loss / total, total_correct / total


@torch.no_grad()
def evaluate(
    model: nn.Module, loader: Iterable, loss_fn: LossFn = F.cross_entropy, device: torch.device | None = None
) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` (in eval mode) over ``loader``.

    The model's train/eval mode is restored afterwards.
    """
    device = device or get_device()
    was_training = model.training
    model.eval()
    total_loss = total_correct = total = 0.0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        total += len(y)
        total_loss += loss_fn(logits, y).item() * len(y)
        total_correct += (logits.argmax(dim=-1) == y).sum().item()
    model.train(was_training)
    return total_loss / total, total_correct / total


def accuracy_under_attack(
    model: nn.Module,
    loader: Iterable,
    attack: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    device: torch.device | None = None,
    max_examples: int | None = None,
) -> float:
    """Accuracy of ``model`` (in eval mode) on ``attack(model, x, y)`` for each batch of ``loader``.

    Without an attack this is the clean accuracy. Attacks need input gradients, so
    unlike :func:`evaluate` this does not run under ``torch.no_grad``. Stops after
    ``max_examples`` examples when given; the model's mode is restored afterwards.
    """
    device = device or get_device()
    was_training = model.training
    model.eval()
    correct = total = 0
    for x, y in loader:
        if max_examples is not None and total >= max_examples:
            break
        x, y = x.to(device), y.to(device)
        if attack is not None:
            x = attack(model, x, y)
        with torch.no_grad():
            correct += (model(x).argmax(dim=-1) == y).sum().item()
        total += len(y)
    model.train(was_training)
    return correct / total


def train(
    model: nn.Module,
    train_loader: Iterable,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    loss_fn: LossFn = F.cross_entropy,
    val_loader: Iterable | None = None,
    device: torch.device | None = None,
    max_norm: float | None = None,
    progress: bool | None = None,
) -> History:
    """Train for ``epochs`` epochs, evaluating on ``val_loader`` after each one.

    The model is moved to ``device`` (default: :func:`dlcourse.get_device`).
    """
    device = device or get_device()
    model.to(device)
    history = History()
    epochs_bar = tqdm(range(epochs), desc="epochs", disable=not show_progress(progress))
    for _ in epochs_bar:
        loss, acc = train_epoch(model, train_loader, optimizer, loss_fn, device, max_norm, progress=False)
        history.train_loss.append(loss)
        history.train_acc.append(acc)
        if val_loader is not None:
            val_loss, val_acc = evaluate(model, val_loader, loss_fn, device)
            history.val_loss.append(val_loss)
            history.val_acc.append(val_acc)
        epochs_bar.set_postfix(history.last())
    return history
