"""Small models for hidden tests, chosen so that mistakes change the result.

A model that behaves the same in train and eval mode cannot tell whether an answer switched
modes; :class:`TrainEvalGap` is a deterministic layer that does (no randomness, no dependence on
the rest of the batch), so exact oracles stay possible. Smooth activations keep every gradient
entry away from zero, so float64 results are exact and signs never tie.
"""

from __future__ import annotations

import torch
from torch import nn

from autograder.battery.inputs import seeded


class TrainEvalGap(nn.Module):
    """y = scale * x in train mode, y = x in eval mode: a mode mistake changes outputs and gradients."""

    def __init__(self, scale: float = 2.0):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale if self.training else x


def mode_sensitive_mlp(
    in_features: int, classes: int, hidden: int = 16, *, dtype=torch.float64, device=None, seed: int = 0
) -> nn.Sequential:
    """Flatten -> Linear -> Tanh -> TrainEvalGap -> Linear: smooth, and different in train and eval mode."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(in_features, hidden), nn.Tanh(), TrainEvalGap(), nn.Linear(hidden, classes)
    )
    return model.to(device=device, dtype=dtype)


def mode_sensitive_cnn(
    channels: int, size: int, classes: int, *, dtype=torch.float64, device=None, seed: int = 0
) -> nn.Sequential:
    """Conv -> Tanh -> TrainEvalGap -> Linear on (N, channels, size, size) images."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(channels, 4, 3, padding=1),
        nn.Tanh(),
        TrainEvalGap(),
        nn.Flatten(),
        nn.Linear(4 * size * size, classes),
    )
    return model.to(device=device, dtype=dtype)


def batchnorm_dropout_cnn(channels: int, size: int, classes: int, *, device=None, seed: int = 0) -> nn.Sequential:
    """A float32 CNN with batch norm and dropout, whose running statistics are far from any batch's."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(channels, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Flatten(),
        nn.Linear(4 * size * size, classes),
    ).to(device)
    with torch.no_grad():
        model.train()(3 * torch.rand(8, channels, size, size, generator=seeded(seed)).to(device) + 1)
    return model


class Fails(nn.Module):
    """A layer whose forward pass always raises: a function must clean up (remove its hooks) after the error."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("this layer always fails (the hidden tests' broken model)")


class NoGradOnly(nn.Module):
    """The identity, which raises when it runs with gradients enabled: a function that promises scores without a
    graph must run the model under ``torch.no_grad()`` (or ``torch.inference_mode()``), not detach afterwards."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            raise RuntimeError(
                "the model ran with gradients enabled, building a graph; run it under torch.no_grad() "
                "(detaching the result afterwards still builds the graph)"
            )
        return x


class TwoPaths(nn.Module):
    """head(flatten(tanh(body(x)) + shortcut(x))): a forward that is not a chain of children, with the
    ``body`` nested two levels deep, so a layer must be found by a hook, not by walking the children."""

    def __init__(self, channels: int, size: int, classes: int):
        super().__init__()
        self.body = nn.Sequential(nn.Sequential(nn.Conv2d(channels, 3, 3, padding=1), TrainEvalGap()))
        self.shortcut = nn.Conv2d(channels, 3, 1)
        self.head = nn.Linear(3 * size * size, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head((torch.tanh(self.body(x)) + self.shortcut(x)).flatten(1))


def silent_hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
    """A forward hook that changes nothing: a model arrives with it, and an answer must leave it registered."""
    return None
