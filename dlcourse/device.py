"""Where tensors live: the device a notebook should use, and what is installed."""

from __future__ import annotations

import platform
import sys

import torch


def get_device(prefer: str | None = None) -> torch.device:
    """The device to compute on: CUDA when present, else Apple's MPS, else the CPU.

    ``prefer`` forces a device by name ("cpu", "cuda", "cuda:1", ...).
    """
    if prefer is not None:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def limit_cpu_threads(at_most: int = 2) -> int:
    """Use at most ``at_most`` CPU threads (fewer if ``OMP_NUM_THREADS`` says so); returns the number used.

    The course's networks are small: beyond two threads synchronisation costs more than it saves.
    Results depend on the thread count (float sums are reordered), so chapters report it.
    """
    threads = max(1, min(at_most, torch.get_num_threads()))
    torch.set_num_threads(threads)
    return threads


def environment_report() -> dict[str, str]:
    """Versions and hardware as a dict of strings (printed by the setup lab)."""
    import matplotlib
    import numpy
    import sklearn

    device = get_device()
    report = {
        "python": sys.version.split()[0],
        "platform": platform.platform(terse=True),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "matplotlib": matplotlib.__version__,
        "scikit-learn": sklearn.__version__,
        "device": str(device),
        "on_colab": str("google.colab" in sys.modules),
    }
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(device)
    return report
