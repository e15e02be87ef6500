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


def test_check_close_accepts_numbers_and_other_dtypes():
    dlcourse.check_close("float", 0.5, torch.tensor(0.5, dtype=torch.float64))
    dlcourse.check_close("ints", torch.tensor([1, 2]), torch.tensor([1.0, 2.0]))


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


def correct_attack(model, x, y, eps):
    was_training = model.training
    model.eval()
    x_adv = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(model(x_adv), y), x_adv)
    model.train(was_training)
    return (x + eps * grad.sign()).clamp(0, 1).detach()


def attack_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 3))


def test_check_attack_contract_accepts_a_correct_attack():
    x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1])
    result = checks.check_attack_contract("attack", correct_attack, attack_model(), x, y, eps=0.1)
    assert result.shape == x.shape


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda m, x, y, eps: correct_attack(m, x, y, eps).requires_grad_(True), "detach"),
        (lambda m, x, y, eps: x.add_(0.0), "new tensor"),
        (lambda m, x, y, eps: (x + 2 * eps).clamp(0, 1), "eps-ball"),
        (lambda m, x, y, eps: x + eps, "outside \\[0, 1\\]"),
        (lambda m, x, y, eps: (m(x), x.clone())[1], "training mode during the attack"),
        (lambda m, x, y, eps: (m.eval(), correct_attack(m, x, y, eps))[1], "restore"),
        (
            lambda m, x, y, eps: x.float().clone() if x.dtype != torch.float32 else x.double().clamp(0, 1),
            "but the result is torch.float64",
        ),
        (
            lambda m, x, y, eps: x.clone().requires_grad_(True).detach() if x.requires_grad_(True) is not None else x,
            "requires_grad",
        ),
    ],
)
def test_check_attack_contract_rejects_broken_attacks(wrong, message):
    x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1])
    with pytest.raises(AssertionError, match=message):
        checks.check_attack_contract("attack", wrong, attack_model(), x, y, eps=0.1)


def test_check_recurrent_cell_accepts_torch_and_catches_a_wrong_nonlinearity():
    from dlcourse.checks import check_recurrent_cell

    torch.manual_seed(0)
    for cell_type, pair in [(nn.GRUCell, False), (nn.LSTMCell, True)]:
        check_recurrent_cell(cell_type.__name__, cell_type(3, 4).double(), cell_type(3, 4).double(), pair_state=pair)
    with pytest.raises(AssertionError, match="next state"):
        check_recurrent_cell("tanh", nn.RNNCell(3, 4).double(), nn.RNNCell(3, 4, nonlinearity="relu").double())
    with pytest.raises(AssertionError, match="state_dict must hold"):
        check_recurrent_cell("GRU as RNN", nn.GRUCell(3, 4), nn.RNNCell(3, 4))


def test_check_uniform_init_catches_gaussian_weights():
    from dlcourse.checks import check_uniform_init

    check_uniform_init("torch's GRUCell", nn.GRUCell(5, 64), 64)
    cell = nn.GRUCell(5, 64)
    with torch.no_grad():
        cell.weight_hh.normal_(0, 0.01)
    with pytest.raises(AssertionError, match="weight_hh"):
        check_uniform_init("narrow", cell, 64)


@pytest.mark.parametrize("seed", range(5))
def test_check_init_passes_torch_initialisers_for_any_seed(seed):
    shape, gain = (64, 32, 3, 3), nn.init.calculate_gain("relu")
    std = gain / checks.fans_of(shape)[0] ** 0.5
    checks.check_init("kaiming_normal_", nn.init.kaiming_normal_, shape, std, "normal", seed=seed, nonlinearity="relu")
    checks.check_init(
        "kaiming_uniform_", nn.init.kaiming_uniform_, shape, std, "uniform", seed=seed, nonlinearity="relu"
    )
    std = (2 / sum(checks.fans_of((300, 500)))) ** 0.5
    checks.check_init("xavier_normal_", nn.init.xavier_normal_, (300, 500), std, "normal", seed=seed)
    checks.check_init("xavier_uniform_", nn.init.xavier_uniform_, (300, 500), std, "uniform", seed=seed)


def test_check_init_names_the_mistake():
    shape = (64, 32, 3, 3)
    mistakes = checks.kaiming_mistakes(shape, 2**0.5, "fan_in", "normal")
    std = (2 / (32 * 9)) ** 0.5

    def fan_out_used(tensor):
        return nn.init.kaiming_normal_(tensor, mode="fan_out", nonlinearity="relu")

    with pytest.raises(AssertionError, match="asks for fan_in, but the other fan"):
        checks.check_init("fan_out", fan_out_used, shape, std, "normal", mistakes)

    def uniform_with_the_right_std(tensor):
        return nn.init.kaiming_uniform_(tensor, nonlinearity="relu")

    with pytest.raises(AssertionError, match="normal distribution"):
        checks.check_init("uniform", uniform_with_the_right_std, shape, std, "normal", mistakes)

    def new_tensor(tensor):
        return torch.randn(tensor.shape) * std

    with pytest.raises(AssertionError, match="in place"):
        checks.check_init("copy", new_tensor, shape, std, "normal", mistakes)


def test_mistake_tables_leave_out_mistakes_that_change_nothing():
    # with gain 1 a missing gain is no mistake; on a linear weight the receptive field is 1
    assert not any("gain is missing" in d for d in checks.xavier_mistakes((30, 20), 1.0, "normal"))
    assert not any("receptive field" in d for d in checks.kaiming_mistakes((30, 20), 2.0, "fan_in", "normal"))
    assert any("receptive field" in d for d in checks.kaiming_mistakes((30, 20, 3), 2.0, "fan_in", "uniform"))


@pytest.mark.parametrize("shape", [(16, 4), (6, 3, 5, 5)])
@pytest.mark.parametrize("training", [True, False])
def test_check_batch_norm_accepts_torch(shape, training):
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64)
    vectors = [torch.rand(shape[1], dtype=torch.float64) + 0.5 for _ in range(4)]
    checks.check_batch_norm("torch", torch.nn.functional.batch_norm, x, *vectors, training=training)


def batch_norm_normalising_with(var_of):
    """A batch_norm without running statistics whose variance is ``var_of(x, dims)``."""

    def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
        dims = [0] + list(range(2, x.dim()))
        mean = x.mean(dim=dims, keepdim=True)
        return (x - mean) / torch.sqrt(var_of(x, dims) + eps)

    return batch_norm


def test_check_batch_norm_names_the_unbiased_variance_and_detached_statistics():
    x = torch.randn(8, 3, dtype=torch.float64)
    unbiased = batch_norm_normalising_with(lambda x, dims: x.var(dim=dims, keepdim=True))
    with pytest.raises(AssertionError, match="unbiased variance"):
        checks.check_batch_norm("unbiased", unbiased, x, training=True)
    detached = batch_norm_normalising_with(lambda x, dims: x.detach().var(dim=dims, keepdim=True, unbiased=False))
    with pytest.raises(AssertionError, match="gradient"):
        checks.check_batch_norm("detached variance", detached, x, training=True)


def test_check_batch_norm_module_accepts_torch_and_rejects_a_keras_momentum():
    torch.manual_seed(0)
    checks.check_batch_norm_module("torch 1d", nn.BatchNorm1d(3).double(), nn.BatchNorm1d(3).double(), (8, 3))
    checks.check_batch_norm_module(
        "torch 2d", nn.BatchNorm2d(3, momentum=None), nn.BatchNorm2d(3, momentum=None), (4, 3, 2, 2)
    )
    with pytest.raises(AssertionError, match="running_mean: momentum=0.99 is Keras' convention"):
        checks.check_batch_norm_module("keras", nn.BatchNorm1d(3, momentum=0.99), nn.BatchNorm1d(3), (8, 3))
    with pytest.raises(AssertionError, match="state_dict layout"):
        checks.check_batch_norm_module(
            "untracked", nn.BatchNorm1d(3, track_running_stats=False), nn.BatchNorm1d(3), (8, 3)
        )
