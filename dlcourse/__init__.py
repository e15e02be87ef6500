"""Helper package shared by the course's chapters and labs.

Everything a chapter or lab needs more than once lives here, in one place:
device selection, seeding, the quick mode, data, the training loop, plots and
the visible checks that print a tolerance next to each result.
"""

from dlcourse.checks import check_close, check_true
from dlcourse.config import is_quick_mode, quick_or_full
from dlcourse.data import DataSplits, dataset_for_this_run, load_dataset, load_digits, make_loaders
from dlcourse.device import environment_report, get_device, limit_cpu_threads
from dlcourse.models import small_cnn
from dlcourse.plot import frame_player, interactive_figure, plot_history, show_images
from dlcourse.seed import seed_everything
from dlcourse.train import History, accuracy, accuracy_under_attack, evaluate, train, train_epoch

__version__ = "0.1.0"

__all__ = [
    "DataSplits",
    "History",
    "accuracy",
    "accuracy_under_attack",
    "check_close",
    "check_true",
    "dataset_for_this_run",
    "environment_report",
    "evaluate",
    "frame_player",
    "get_device",
    "interactive_figure",
    "is_quick_mode",
    "limit_cpu_threads",
    "load_dataset",
    "load_digits",
    "make_loaders",
    "plot_history",
    "quick_or_full",
    "seed_everything",
    "show_images",
    "small_cnn",
    "train",
    "train_epoch",
]
