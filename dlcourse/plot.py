"""Plots the chapters share, and the kernel-free form of interactive figures.

A chapter's interactive figure is one drawing function ``draw(fig, value)``.
:func:`interactive_figure` shows it with an ipywidgets slider in a live kernel
(Colab, Jupyter) and, when the book is built (``DLCOURSE_STATIC_FIGURES=1``,
set by ``make book``), also as a JavaScript frame player that works in the
static HTML page without any kernel.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib import animation

from dlcourse.train import History

STATIC_ENV_VAR = "DLCOURSE_STATIC_FIGURES"

DrawFn = Callable[[plt.Figure, Any], None]


def plot_history(history: History, title: str = "") -> plt.Figure:
    """Loss and accuracy per epoch, training and validation side by side."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.2))
    epochs = range(1, len(history.train_loss) + 1)
    for ax, key, label in ((ax_loss, "loss", "cross-entropy loss"), (ax_acc, "acc", "accuracy")):
        ax.plot(epochs, getattr(history, f"train_{key}"), marker="o", label="train")
        if getattr(history, f"val_{key}"):
            ax.plot(epochs, getattr(history, f"val_{key}"), marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_images(
    images: torch.Tensor, titles: Sequence[str] | None = None, ncols: int = 8, scale: float = 1.2
) -> plt.Figure:
    """A grid of images given as a (N, C, H, W) or (N, H, W) tensor with values in [0, 1]."""
    images = images.detach().cpu()
    if images.dim() == 4:
        images = images.permute(0, 2, 3, 1)  # to (N, H, W, C) for imshow
    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * scale, nrows * scale), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        image = images[i].squeeze(-1) if images[i].shape[-1] == 1 else images[i]
        ax.imshow(image.numpy(), cmap="gray" if image.dim() == 2 else None, vmin=0, vmax=1)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    return fig


# Text labels for the icons of matplotlib's player, whose icon font would come from a CDN; the buttons keep
# matplotlib's title and aria-label ("Next frame", ...).
PLAYER_BUTTON_LABELS = {
    "fa fa-minus": "\u2212",
    "fa fa-fast-backward": "\u21e4",
    "fa fa-step-backward": "\u2039",
    "fa fa-play fa-flip-horizontal": "\u25c0\ufe0e",
    "fa fa-pause": "\u275a\u275a",
    "fa fa-play": "\u25b6\ufe0e",
    "fa fa-step-forward": "\u203a",
    "fa fa-fast-forward": "\u21e5",
    "fa fa-plus": "+",
}


def without_icon_font(player_html: str) -> str:
    """``to_jshtml`` output without the font-awesome stylesheet link, its icons replaced by text labels."""
    html = re.sub(r'<link rel="stylesheet"\s+href="[^"]*font-awesome[^"]*">', "", player_html)
    html = re.sub(r'<i class="([^"]*)"></i>', lambda icon: PLAYER_BUTTON_LABELS.get(icon.group(1), icon.group(0)), html)
    if "font-awesome" in html or 'class="fa ' in html:
        raise ValueError("matplotlib's player template changed: it still needs the font-awesome stylesheet")
    return html


def frame_player(draw: DrawFn, values: Sequence, figsize: tuple[float, float] = (6, 3.5), interval: int = 600):
    """Pre-render ``draw(fig, value)`` for every value as a JavaScript player (no kernel, no external CSS)."""
    from IPython.display import HTML

    fig = plt.figure(figsize=figsize)

    def render(i: int):
        fig.clear()
        draw(fig, values[i])
        return []

    player = animation.FuncAnimation(fig, render, frames=len(values), interval=interval)
    html = without_icon_font(player.to_jshtml(default_mode="once"))
    plt.close(fig)
    return HTML(html)


def static_figures_requested() -> bool:
    return os.environ.get(STATIC_ENV_VAR, "") == "1"


def interactive_figure(
    draw: DrawFn,
    values: Sequence,
    description: str = "value",
    figsize: tuple[float, float] = (6, 3.5),
    controls: dict[str, Sequence] | None = None,
) -> None:
    """Show ``draw`` with ipywidgets in a live kernel, and as a frame player over ``values`` in the book.

    Without ``controls`` one slider steps through ``values``. With ``controls`` (name -> options)
    there is one slider per control and ``draw`` receives the tuple of their current options, in
    the order of ``controls``; ``values`` are then the tuples the book's player shows.
    """
    import ipywidgets as widgets
    from IPython.display import display

    def redraw(**chosen: Any) -> None:
        fig = plt.figure(figsize=figsize)
        draw(fig, tuple(chosen[name] for name in controls) if controls else values[chosen["index"]])
        plt.show()

    if controls:
        sliders = {
            name: widgets.SelectionSlider(options=list(options), value=values[0][i], description=name)
            for i, (name, options) in enumerate(controls.items())
        }
        header = widgets.HBox(list(sliders.values()))
    else:
        slider = widgets.IntSlider(value=0, min=0, max=len(values) - 1, description=description)
        label = widgets.Label(str(values[0]))
        slider.observe(lambda change: setattr(label, "value", str(values[change["new"]])), names="value")
        sliders, header = {"index": slider}, widgets.HBox([slider, label])
    output = widgets.interactive_output(redraw, sliders)
    display(widgets.VBox([header, output]))
    if static_figures_requested():
        display(frame_player(draw, values, figsize=figsize))
