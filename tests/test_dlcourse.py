"""Unit tests of the helper package every chapter and lab imports."""

import sys
import types

import matplotlib
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import dlcourse
from dlcourse import checks, config, data, plot

matplotlib.use("Agg")


# --- quick mode -------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("0", False), ("", False), ("no", False)])
def test_quick_mode_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("DLCOURSE_QUICK", value)
    assert config.is_quick_mode() is expected
    assert config.quick_or_full("quick", "full") == ("quick" if expected else "full")


def test_quick_mode_off_when_unset(monkeypatch):
    monkeypatch.delenv("DLCOURSE_QUICK", raising=False)
    assert not dlcourse.is_quick_mode()


# --- seeding and devices ----------------------------------------------------------------


def test_seed_everything_makes_torch_numpy_and_python_repeatable():
    import random

    import numpy as np

    def draw():
        return torch.rand(3).tolist(), np.random.rand(2).tolist(), random.random()

    dlcourse.seed_everything(7)
    first = draw()
    dlcourse.seed_everything(7)
    assert draw() == first
    dlcourse.seed_everything(8)
    assert draw() != first


def test_seed_everything_returns_a_seeded_generator():
    a = torch.rand(4, generator=dlcourse.seed_everything(3))
    b = torch.rand(4, generator=dlcourse.seed_everything(3))
    assert torch.equal(a, b)


def test_get_device_is_cuda_exactly_when_available():
    device = dlcourse.get_device()
    assert device.type == ("cuda" if torch.cuda.is_available() else device.type)
    if not torch.cuda.is_available():
        assert device.type in {"cpu", "mps"}
    assert dlcourse.get_device("cpu") == torch.device("cpu")


def test_environment_report_names_versions_and_device():
    report = dlcourse.environment_report()
    assert report["torch"] == torch.__version__
    assert report["device"] == str(dlcourse.get_device())
    assert {"python", "numpy", "matplotlib", "scikit-learn", "on_colab"} <= set(report)


# --- data -------------------------------------------------------------------------------


def test_digits_are_scaled_images_with_fixed_disjoint_splits():
    splits = dlcourse.load_digits()
    assert splits.sizes() == {"train": 1197, "val": 300, "test": 300}
    assert splits.image_shape == (1, 8, 8) and splits.num_classes == 10
    x, y = splits.train.tensors
    assert x.shape == (1197, 1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert set(y.tolist()) == set(range(10))
    again = dlcourse.load_digits()
    assert torch.equal(again.test.tensors[0], splits.test.tensors[0])  # the same split every time
    rows = {
        tuple(row.flatten().tolist()) + (int(label),)
        for part in (splits.train, splits.val, splits.test)
        for row, label in zip(*part.tensors, strict=False)
    }
    assert len(rows) >= 1797 - 5  # no example appears in two splits (a few digits are exact duplicates)


def test_split_indices_partition_and_reject_impossible_sizes():
    train, val, test = data.split_indices(100, 10, 20)
    assert sorted(train.tolist() + val.tolist() + test.tolist()) == list(range(100))
    assert (len(train), len(val), len(test)) == (70, 10, 20)
    with pytest.raises(ValueError, match="cannot hold out"):
        data.split_indices(10, 5, 5)


def test_load_dataset_by_name():
    assert dlcourse.load_dataset("digits").name == "digits"
    with pytest.raises(ValueError, match="unknown dataset"):
        dlcourse.load_dataset("imagenet")


def test_torchvision_datasets_explain_how_to_work_offline(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import fails as on a machine without it
    with pytest.raises(ImportError, match="load_dataset\\('digits'\\)"):
        dlcourse.load_dataset("mnist")


def test_torchvision_datasets_are_split_with_a_held_out_validation_set(monkeypatch):
    class FakeMNIST(TensorDataset):
        def __init__(self, root, train, download, transform):
            n = 600 if train else 100
            super().__init__(torch.rand(n, 1, 28, 28), torch.randint(0, 10, (n,)))

    fake = types.SimpleNamespace(
        datasets=types.SimpleNamespace(MNIST=FakeMNIST), transforms=types.SimpleNamespace(ToTensor=lambda: None)
    )
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    splits = data.load_torchvision("mnist", n_val=50)
    assert splits.sizes() == {"train": 550, "val": 50, "test": 100}
    assert not set(splits.train.indices) & set(splits.val.indices)
    assert splits.image_shape == (1, 28, 28)


def test_make_loaders_shuffle_only_training_and_repeatably():
    splits = dlcourse.load_digits()
    first = next(iter(dlcourse.make_loaders(splits, batch_size=32)["train"]))[1]
    second = next(iter(dlcourse.make_loaders(splits, batch_size=32)["train"]))[1]
    assert torch.equal(first, second)
    val_labels = torch.cat([y for _, y in dlcourse.make_loaders(splits)["val"]])
    assert torch.equal(val_labels, splits.val.tensors[1])


# --- training ---------------------------------------------------------------------------


def tiny_problem():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 2, generator=gen)
    y = (x[:, 0] + x[:, 1] > 0).long()
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, generator=gen)
    return loader


def test_train_learns_a_separable_problem_and_records_history():
    dlcourse.seed_everything(0)
    loader = tiny_problem()
    model = nn.Linear(2, 2)
    history = dlcourse.train(
        model,
        loader,
        torch.optim.SGD(model.parameters(), lr=0.5),
        epochs=5,
        val_loader=loader,
        device=torch.device("cpu"),
        progress=False,
    )
    assert len(history.train_loss) == len(history.val_acc) == 5
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.val_acc[-1] > 0.95
    assert set(history.last()) == {"train_loss", "train_acc", "val_loss", "val_acc"}


def test_evaluate_restores_the_training_mode_and_does_not_change_weights():
    loader = tiny_problem()
    model = nn.Sequential(nn.Linear(2, 8), nn.Dropout(0.5), nn.Linear(8, 2))
    before = [p.clone() for p in model.parameters()]
    model.train()
    loss, acc = dlcourse.evaluate(model, loader, device=torch.device("cpu"))
    assert model.training and 0.0 <= acc <= 1.0 and loss > 0
    model.eval()
    dlcourse.evaluate(model, loader, device=torch.device("cpu"))
    assert not model.training
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=False))


def test_train_epoch_clips_gradients_when_asked():
    loader = tiny_problem()
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    dlcourse.train_epoch(model, loader, optimizer, device=torch.device("cpu"), max_norm=1e-3, progress=False)
    total = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
    assert total <= 1e-3 + 1e-7


def test_accuracy():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert dlcourse.accuracy(logits, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)


def test_progress_bars_are_off_in_quick_mode(monkeypatch):
    from dlcourse.train import show_progress

    monkeypatch.setenv("DLCOURSE_QUICK", "1")
    assert show_progress(None) is False and show_progress(True) is True
    monkeypatch.setenv("DLCOURSE_QUICK", "0")
    assert show_progress(None) is True


# --- visible checks ---------------------------------------------------------------------


def test_check_close_prints_error_and_tolerance(capsys):
    error = dlcourse.check_close("sum", torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 1e-8]))
    assert error < 1e-7
    assert "sum: max |error| = " in capsys.readouterr().out


@pytest.mark.parametrize(
    "actual, expected, message",
    [
        (torch.zeros(2, 3), torch.zeros(3, 2), "shape \\(2, 3\\) but expected \\(3, 2\\)"),
        (None, torch.zeros(1), "forget to `return`"),
        (torch.tensor([float("nan")]), torch.zeros(1), "NaN"),
        (torch.ones(2), torch.zeros(2), "differs from the expected value by up to 1"),
        ("text", torch.zeros(1), "expected a tensor"),
    ],
)
def test_check_close_failures_say_what_is_wrong(actual, expected, message):
    with pytest.raises(AssertionError, match=message):
        dlcourse.check_close("x", actual, expected)


def test_check_close_accepts_numbers_and_requires_the_expected_dtype():
    dlcourse.check_close("float", 0.5, torch.tensor(0.5, dtype=torch.float64))
    with pytest.raises(AssertionError, match="dtype torch.int64 but expected torch.float32"):
        dlcourse.check_close("ints", torch.tensor([1, 2]), torch.tensor([1.0, 2.0]))


def test_check_close_compares_python_numbers_in_float64():
    # through float32, 1 + 1e-8 would round to 1 and pass a 1e-12 tolerance
    with pytest.raises(AssertionError, match="differs"):
        dlcourse.check_close("float64", 1 + 1e-8, 1.0, atol=1e-12, rtol=0)
    dlcourse.check_close("float64", 1 + 1e-13, 1.0, atol=1e-12, rtol=0)


def test_check_true():
    dlcourse.check_true("fine", True, "never shown")
    with pytest.raises(AssertionError, match="broken: fix it"):
        dlcourse.check_true("broken", False, "fix it")


def test_quiet_sends_warnings_and_stderr_away_from_stderr(capsys):
    import warnings

    with checks.quiet():
        warnings.warn("noisy", UserWarning, stacklevel=1)
        print("to stderr", file=sys.stderr)
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "to stderr" in captured.out


# --- plots ------------------------------------------------------------------------------


def test_plot_history_draws_both_curves():
    history = dlcourse.History([1.0, 0.5], [0.5, 0.8], [1.1, 0.6], [0.4, 0.7])
    fig = dlcourse.plot_history(history, title="t")
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2


def test_show_images_accepts_grey_and_colour():
    assert len(dlcourse.show_images(torch.rand(5, 1, 8, 8), titles=list("abcde"), ncols=3).axes) == 6
    assert len(dlcourse.show_images(torch.rand(2, 3, 4, 4)).axes) == 8


def test_frame_player_prerenders_every_value():
    drawn = []

    def draw(fig, value):
        drawn.append(value)
        fig.add_subplot().plot([0, value])

    html = dlcourse.frame_player(draw, [1, 2, 3]).data
    assert set(drawn) == {1, 2, 3}
    assert html.count("data:image/png;base64") >= 3 and 'type="range"' in html


def test_interactive_figure_adds_the_player_only_for_the_book(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    monkeypatch.delenv(plot.STATIC_ENV_VAR, raising=False)
    dlcourse.interactive_figure(lambda fig, v: fig.add_subplot().plot([v]), [0, 1])
    assert len(shown) == 1 and type(shown[0]).__name__ == "VBox"
    monkeypatch.setenv(plot.STATIC_ENV_VAR, "1")
    dlcourse.interactive_figure(lambda fig, v: fig.add_subplot().plot([v]), [0, 1])
    assert len(shown) == 3 and "data:image/png" in shown[2].data


def test_interactive_figure_with_one_slider_per_control(monkeypatch):
    shown, drawn = [], []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    monkeypatch.delenv(plot.STATIC_ENV_VAR, raising=False)
    controls = {"k": [1, 3, 5], "s": [1, 2]}
    dlcourse.interactive_figure(lambda fig, v: drawn.append(v), [(3, 2), (1, 1)], controls=controls)
    (box,) = shown
    sliders = box.children[0].children
    assert [slider.description for slider in sliders] == ["k", "s"] and drawn[-1] == (3, 2)
    sliders[0].value = 5
    assert drawn[-1] == (5, 2)


def test_small_cnn_fits_every_course_image_size():
    for channels, size in [(1, 8), (1, 28), (3, 32)]:
        model = dlcourse.small_cnn(in_channels=channels, num_classes=10)
        assert model(torch.zeros(2, channels, size, size)).shape == (2, 10)


def test_dataset_for_this_run_is_digits_in_quick_mode_or_offline(monkeypatch):
    import importlib.util

    monkeypatch.setenv("DLCOURSE_QUICK", "1")
    assert dlcourse.dataset_for_this_run("mnist") == "digits"
    monkeypatch.setenv("DLCOURSE_QUICK", "0")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert dlcourse.dataset_for_this_run("mnist") == "digits"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    assert dlcourse.dataset_for_this_run("cifar10") == "cifar10"


def test_accuracy_under_attack_applies_the_attack_in_eval_mode():
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.eye(2))
        model[1].bias.zero_()
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1, 0, 1])
    loader = DataLoader(TensorDataset(x, y), batch_size=2)
    modes = []

    def swap_features(model, x, y):
        modes.append(model.training)
        return x.flip(1)

    model.train()
    assert dlcourse.accuracy_under_attack(model, loader, device=torch.device("cpu")) == 1.0
    assert dlcourse.accuracy_under_attack(model, loader, swap_features, device=torch.device("cpu")) == 0.0
    assert modes == [False, False] and model.training
    assert dlcourse.accuracy_under_attack(model, loader, max_examples=2, device=torch.device("cpu")) == 1.0


def test_check_close_names_a_known_mistake():
    with pytest.raises(AssertionError, match="forgot the sign"):
        checks.check_close(
            "x", torch.tensor([2.0]), torch.tensor([1.0]), mistakes={"forgot the sign": torch.tensor([2.0])}
        )
    with pytest.raises(AssertionError, match="differs from the expected value"):
        checks.check_close(
            "x", torch.tensor([3.0]), torch.tensor([1.0]), mistakes={"forgot the sign": torch.tensor([2.0])}
        )


def test_limit_cpu_threads_never_raises_the_count():
    before = torch.get_num_threads()
    try:
        assert dlcourse.limit_cpu_threads(1) == 1 == torch.get_num_threads()
        assert dlcourse.limit_cpu_threads(4) == 1  # the count set above is the ceiling now
    finally:
        torch.set_num_threads(before)
