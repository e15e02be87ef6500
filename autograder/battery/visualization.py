"""Hidden tests of lab 5: hooks, saliency, activation maximization, nearest neighbours and occlusion.

The contract of every function: the model's train/eval mode, its parameters' values and
``requires_grad`` flags and its hooks are left as they were (also after an error), the inputs are
not modified (values, version counter, ``requires_grad``, ``.grad``), and results live on the
input's device with the input's dtype (the model's, for the images the ascents create).
Oracles, in float64 wherever the case allows: a hook on a copy of the model for activations;
|W_target| for linear models and one autograd pass per image (so examples cannot interact) for
saliency; the update written out for the ascents, and their closed-form optimum where the objective
is linear in the image; ``torch.cdist`` without the matrix-product shortcut for neighbours, on data
whose neighbour distances are far from ties; a mask-based loop for occlusion. Models that differ
in train and eval mode (:class:`~autograder.battery.models.TrainEvalGap`, batch norm with dropout)
tell whether an answer switched modes.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, MutableMapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from autograder.battery.compare import assert_close, check_form, group, require, require_gpu_safe, within
from autograder.battery.inputs import holding_grad, images, layouts, normal, seeded
from autograder.battery.models import (
    Fails,
    TrainEvalGap,
    TwoPaths,
    batchnorm_dropout_cnn,
    mode_sensitive_cnn,
    silent_hook,
)
from autograder.battery.snapshot import Snapshot, call_leaving_unchanged
from autograder.battery.student import Student, call, case

FLOAT64, FLOAT32 = torch.float64, torch.float32


def tolerance(dtype: torch.dtype) -> float:
    return 1e-9 if dtype == FLOAT64 else 2e-4


# ------------------------------------------------------------------ the contract every function shares


def with_contract(label: str, function: Callable, model: nn.Module, *args: Any, inputs: dict, **kwargs: Any) -> Any:
    """Call the answer; afterwards the model (modes, hooks, parameters, buffers) and ``inputs`` must be unchanged."""
    return call_leaving_unchanged(label, function, model, *args, inputs={"model": model, **inputs}, **kwargs)


def name_in(model: nn.Module, layer: nn.Module) -> str:
    return next(name for name, module in model.named_modules() if module is layer)


def twin_of(model: nn.Module, training: bool | None = None) -> nn.Module:
    """A copy of the model for oracles (the model the answer gets is never touched), in the given mode."""
    twin = copy.deepcopy(model)
    return twin if training is None else twin.train(training)


def hooked_output(model: nn.Module, layer: nn.Module, x: torch.Tensor, training: bool | None = None) -> torch.Tensor:
    """The output of ``layer`` when a copy of ``model`` (in its own mode, or ``training``) runs on ``x``."""
    twin = twin_of(model, training)
    captured = []
    handle = twin.get_submodule(name_in(model, layer)).register_forward_hook(
        lambda module, inputs, output: captured.append(output.detach().clone())
    )
    with torch.no_grad():
        twin(x.detach())
    handle.remove()
    return captured[0]


def target_list(target: int | torch.Tensor, n: int) -> list[int]:
    return [int(target)] * n if isinstance(target, int) else [int(t) for t in target]


# ------------------------------------------------------------------ layer_activations


def check_layer_activations(namespace: MutableMapping[str, Any]) -> None:
    """layer_activations(model, layer, x): the layer's output in the model's current mode, a detached copy."""
    student = Student(namespace)
    layer_activations = student.function("layer_activations")
    device = student.device

    def activations(label: str, model: nn.Module, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        result = with_contract(label, layer_activations, model, layer, x, inputs={"x": x})
        expected = hooked_output(model, layer, x)
        mistakes = {}
        if model.training:
            mistakes["the model must run in the mode it is in; do not switch it to eval mode"] = hooked_output(
                model, layer, x, training=False
            )
        assert_close(label, result, expected, atol=tolerance(x.dtype), rtol=tolerance(x.dtype), mistakes=mistakes)
        require(
            not result.requires_grad and result.grad_fn is None,
            label,
            "the result carries an autograd graph; return a detached copy (output.detach().clone(), or run the "
            "model under torch.no_grad() and clone)",
        )
        return result

    with group("layer_activations against a hooked copy: every layer of a CNN, train and eval mode, dtypes, sizes"):
        for seed, (dtype, batch, size, training) in enumerate(
            [(FLOAT64, 3, 5, True), (FLOAT64, 1, 4, False), (FLOAT32, 7, 6, True), (FLOAT32, 2, 3, False)]
        ):
            model = mode_sensitive_cnn(2, size, 5, dtype=dtype, device=device, seed=seed).train(training)
            x = images((batch, 2, size, size), seed=10 + seed, dtype=dtype, device=device)
            for index, layer in enumerate(model):
                activations(case("layer_activations", model, f"model[{index}]", x), model, layer, x)
            activations(case("layer_activations", model, "model itself", x), model, model, x)

    with group("layer_activations: a layer nested in a forward that is not a chain, x in every layout"):
        torch.manual_seed(20)
        model = TwoPaths(1, 5, 4).double().to(device).train()
        base = images((4, 1, 5, 5), seed=20, device=device)
        for name in ("body.0.0", "body.0.1", "body", "shortcut", "head"):
            for layout, x in layouts(base):
                label = case("layer_activations", model, f"model.{name}", x) + f" ({layout})"
                activations(label, model, model.get_submodule(name), x)
        x = base.clone().requires_grad_(True)
        activations(case("layer_activations", model, "model.body.0.1", x), model, model.body[0][1], x)
        model.head.register_forward_hook(silent_hook)
        label = case("layer_activations", model, "model.head", base) + " (model.head has a forward hook of its own)"
        activations(label, model, model.head, base)

    with group("layer_activations: a copy that the in-place layers after it cannot change"):
        torch.manual_seed(21)
        model = nn.Sequential(
            nn.Conv2d(1, 3, 3), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(12, 4), nn.Hardtanh(inplace=True)
        ).to(device)
        x = images((5, 1, 4, 4), seed=22, dtype=FLOAT32, device=device)
        for index in (0, 3):
            label = case("layer_activations", model, f"model[{index}]", x)
            result = with_contract(label, layer_activations, model, model[index], x, inputs={"x": x})
            expected = hooked_output(model, model[index], x)
            assert_close(
                label,
                result,
                expected,
                atol=1e-5,
                rtol=1e-5,
                mistakes={
                    f"model[{index + 1}] works in place and changed the tensor you returned: return a copy "
                    "(output.detach().clone()) made inside the hook": F.hardtanh(expected) if index else expected.relu()
                },
            )

    with group("layer_activations: hooks removed when the forward pass raises"):
        torch.manual_seed(23)
        for layers, where in (((Fails(), nn.Linear(3, 2)), 1), ((nn.Linear(3, 2), Fails()), 0)):
            model = nn.Sequential(*layers).to(device)
            x = normal((2, 3), seed=24, dtype=FLOAT32, device=device)
            label = case("layer_activations", model, f"model[{where}]", x) + " (a model whose forward raises)"
            snapshot = Snapshot(model=model, x=x)
            try:
                layer_activations(model, model[where], x)
            except Exception:  # noqa: BLE001, S110 - raising is allowed; what matters is what it left behind
                pass
            snapshot.assert_unchanged(label, grads=False)

    with group("layer_activations on a model and inputs on a (simulated) GPU"):
        model = mode_sensitive_cnn(1, 4, 3, device=device, seed=25)
        x = images((2, 1, 4, 4), seed=26, device=device)
        require_gpu_safe(case("layer_activations", model, "model[1]", x), layer_activations, model, model[1], x)


# ------------------------------------------------------------------ saliency_map


def per_image_gradient(
    model: nn.Module, x: torch.Tensor, targets: list[int], transform: Callable | None = None, summed: bool = False
) -> torch.Tensor:
    """d score_n / d x_n one image at a time on ``model``; with ``summed`` the score is the sum of every
    image's target logit (logits[:, targets] summed over the batch's targets), as a mistake computes it."""
    grads = []
    for n, target in enumerate(targets):
        image = x[n : n + 1].detach().clone().requires_grad_(True)
        logits = model(image)
        logits = transform(logits) if transform is not None else logits
        score = logits[0, targets].sum() if summed else logits[0, target]
        (grad,) = torch.autograd.grad(score, image)
        grads.append(grad[0])
    return torch.stack(grads)


def reference_saliency(model: nn.Module, x: torch.Tensor, targets: list[int]) -> tuple[torch.Tensor, dict]:
    """The saliency of a copy in eval mode, and what the usual mistakes give instead."""
    twin = twin_of(model, training=False)
    grad = per_image_gradient(twin, x, targets)
    mistakes = {
        "take the absolute value of the gradient before the maximum over channels": grad.amax(dim=1),
        "take the maximum over channels, not the mean": grad.abs().mean(dim=1),
        "take the maximum over channels, not the sum": grad.abs().sum(dim=1),
        "differentiate the logit (the score before the softmax), not the softmax probability": per_image_gradient(
            twin, x, targets, lambda z: z.softmax(dim=1)
        )
        .abs()
        .amax(dim=1),
        "differentiate the target's logit, not the loss (or log-softmax)": per_image_gradient(
            twin, x, targets, lambda z: z.log_softmax(dim=1)
        )
        .abs()
        .amax(dim=1),
        "each image's map must use its own class: logits[:, target] with a tensor target picks N logits per image; "
        "use logits.gather(1, target.view(-1, 1)) or logits[torch.arange(N), target]": per_image_gradient(
            twin, x, targets, summed=True
        )
        .abs()
        .amax(dim=1),
        "sum the selected logits over the batch (the mean divides every map by N)": grad.abs().amax(dim=1) / len(x),
    }
    if model.training:
        mistakes["compute the gradient in eval mode (model.eval() first, then restore the mode)"] = (
            per_image_gradient(twin_of(model, training=True), x, targets).abs().amax(dim=1)
        )
    return grad.abs().amax(dim=1), mistakes


def check_saliency_map(namespace: MutableMapping[str, Any]) -> None:
    """saliency_map(model, x, target) = max over channels of |d logit_target / d x|, per image, in eval mode."""
    student = Student(namespace)
    saliency_map = student.function("saliency_map")
    device = student.device

    def saliency(label: str, model: nn.Module, x: torch.Tensor, target, atol: float | None = None) -> torch.Tensor:
        inputs = {"x": x} | ({"target": target} if isinstance(target, torch.Tensor) else {})
        result = with_contract(label, saliency_map, model, x, target, inputs=inputs)
        expected, mistakes = reference_saliency(model, x, target_list(target, len(x)))
        tol = tolerance(x.dtype) if atol is None else atol
        assert_close(label, result, expected.to(x.dtype), atol=tol, rtol=tol, mistakes=mistakes)
        return result

    with group("saliency_map of linear models is |W_target|, max over channels: int and tensor targets, sizes"):
        for seed, (batch, channels, height, width) in enumerate([(1, 1, 4, 4), (5, 3, 3, 5), (2, 2, 6, 1)]):
            torch.manual_seed(seed)
            classes = 4
            model = nn.Sequential(nn.Flatten(), nn.Linear(channels * height * width, classes)).double().to(device)
            x = images((batch, channels, height, width), seed=30 + seed, device=device)
            targets = (torch.arange(batch, device=device) * 3 + seed) % classes
            for target in (targets, int(targets[0]), classes - 1):
                label = case("saliency_map", "linear model", x, target)
                result = saliency(label, model, x, target)
                weights = model[1].weight.detach().view(classes, channels, height, width)
                closed_form = weights.abs().amax(dim=1)[torch.tensor(target_list(target, batch))]
                assert_close(label + " (closed form)", result, closed_form, atol=1e-12)

    with group("saliency_map in eval mode on models that differ in train and eval mode, float64 and float32"):
        for training in (True, False):
            model = mode_sensitive_cnn(3, 5, 6, device=device, seed=40).train(training)
            x = images((4, 3, 5, 5), seed=41, device=device)
            target = torch.tensor([5, 0, 3, 3], device=device)
            saliency(case("saliency_map", model, x, target), model, x, target)
        model = batchnorm_dropout_cnn(2, 6, 10, device=device, seed=42).train()
        x = images((9, 2, 6, 6), seed=43, dtype=FLOAT32, device=device)
        target = torch.arange(9, device=device) % 10
        saliency(case("saliency_map", model, x, target), model, x, target, atol=1e-5)

    with group("saliency_map per image: the same map alone, in any batch, in any order; x in every layout"):
        torch.manual_seed(44)
        model = TwoPaths(2, 4, 5).double().to(device).train()
        x = images((6, 2, 4, 4), seed=44, device=device)
        target = torch.tensor([4, 1, 1, 0, 2, 3], device=device)
        full = saliency(case("saliency_map", model, x, target), model, x, target)
        order = torch.tensor([3, 0, 5, 1, 4, 2], device=device)
        label = case("saliency_map", model, x[order], target[order]) + " (the batch permuted)"
        assert_close(label, call(label, saliency_map, model, x[order], target[order]), full[order], atol=1e-12)
        label = case("saliency_map", model, x[2:3], int(target[2])) + " (one image of the batch alone)"
        assert_close(label, call(label, saliency_map, model, x[2:3], int(target[2])), full[2:3], atol=1e-12)
        for layout, variant in layouts(x):
            label = case("saliency_map", model, variant, target) + f" ({layout})"
            saliency(label, model, variant, target)
        for name, variant in (("requires grad", x.clone().requires_grad_(True)), ("has a .grad", holding_grad(x))):
            label = case("saliency_map", model, variant, target) + f" (x {name})"
            saliency(label, model, variant, target)

    with group("saliency_map with frozen parameters, and on a (simulated) GPU"):
        model = mode_sensitive_cnn(1, 4, 3, device=device, seed=45).requires_grad_(False)
        x = images((3, 1, 4, 4), seed=46, device=device)
        saliency(case("saliency_map", model, x, 2) + " (parameters frozen)", model, x, 2)
        for target in (torch.tensor([0, 2, 1], device=device), 1):
            require_gpu_safe(case("saliency_map", model, x, target), saliency_map, model, x, target)


# ------------------------------------------------------------------ activation_maximization, class_visualization


def starts(shape: tuple[int, ...], seed: int, dtype: torch.dtype, device) -> list[torch.Tensor]:
    """The start the contract names (drawn in float32 on the CPU, then moved), and the same draw made in the
    model's dtype (accepted too: the same seed still gives the same image)."""
    drawn = torch.rand(shape, generator=seeded(seed)).to(device=device, dtype=dtype)
    in_dtype = torch.rand(shape, generator=seeded(seed), dtype=dtype).to(device)
    return [drawn] if dtype == FLOAT32 else [drawn, in_dtype]


def ascent(
    objective: Callable[[torch.Tensor], torch.Tensor],
    start: torch.Tensor,
    steps: int,
    lr: float,
    weight_decay: float,
    *,
    direction: float = 1.0,
    penalty: float = 2.0,
    clamp: str = "every step",
) -> torch.Tensor:
    """I <- clip(I + direction * lr * (grad objective(I) - penalty * weight_decay * I)), ``steps`` times."""
    image = start.detach().clone()
    for _ in range(steps):
        image.requires_grad_(True)
        (grad,) = torch.autograd.grad(objective(image), image)
        image = image.detach() + direction * lr * (grad - penalty * weight_decay * image.detach())
        if clamp == "every step":
            image = image.clamp(0, 1)
    return (image.clamp(0, 1) if clamp == "at the end" else image).detach()


def channel_objective(model: nn.Module, layer: nn.Module, channel: int, statistic: str = "mean", training=False):
    """image -> the mean (or sum) of ``channel`` of ``layer``'s output for the batch of that one image."""
    twin = twin_of(model, training)
    sub = twin.get_submodule(name_in(model, layer))

    def objective(image: torch.Tensor) -> torch.Tensor:
        captured = []
        handle = sub.register_forward_hook(lambda module, inputs, output: captured.append(output))
        try:
            twin(image.unsqueeze(0))
        finally:
            handle.remove()
        values = captured[0][0, channel]
        return values.mean() if statistic == "mean" else values.sum()

    return objective


def logit_objective(model: nn.Module, target: int, transform: Callable | None = None, training=False):
    twin = twin_of(model, training)

    def objective(image: torch.Tensor) -> torch.Tensor:
        logits = twin(image.unsqueeze(0))
        return (transform(logits) if transform is not None else logits)[0, target]

    return objective


def ascent_mistakes(objective, start, steps, lr, weight_decay, wrong_objectives: dict) -> dict:
    """What the usual mistakes of a gradient ascent produce from the contract's start."""

    def run(**change) -> torch.Tensor:
        settings = {"steps": steps, "lr": lr, "weight_decay": weight_decay} | change
        chosen = settings.pop("objective", objective)
        return ascent(chosen, settings.pop("start", start), **settings)

    mistakes = {
        "climb the gradient, I + lr * gradient (this went down it)": run(direction=-1.0),
        "the penalty is weight_decay * ||I||^2, the sum of squares: its gradient is 2 * weight_decay * I (an "
        "optimizer's weight_decay gives only weight_decay * I)": run(penalty=1.0),
        "subtract the penalty from the objective: J(I) = score - weight_decay * ||I||^2": run(penalty=-2.0),
        "clamp the image to [0, 1] after every step": run(clamp="never"),
        "clamp the image to [0, 1] after every step, not only at the end": run(clamp="at the end"),
        f"take exactly steps={steps} steps (this took one more)": run(steps=steps + 1),
        f"take exactly steps={steps} steps (this took one fewer)": run(steps=max(steps - 1, 0)),
        "start from torch.rand(shape, generator=torch.Generator().manual_seed(seed)) (uniform in [0, 1], drawn on "
        "the CPU, then moved)": run(start=torch.zeros_like(start)),
    }
    for diagnosis, wrong in wrong_objectives.items():
        mistakes[diagnosis] = run(objective=wrong)
    return mistakes


def check_ascent(
    label: str,
    answer: Callable,
    model: nn.Module,
    args: tuple,
    kwargs: dict,
    objective: Callable,
    wrong_objectives: dict,
) -> torch.Tensor:
    """Run one ascent under the contract and compare it with the reference from either accepted start."""
    shape, seed = tuple(args[-1]), kwargs.get("seed", 0)
    steps, lr, weight_decay = kwargs.get("steps", 100), kwargs.get("lr", 0.1), kwargs.get("weight_decay", 1e-4)
    parameter = next(model.parameters())
    result = with_contract(label, answer, model, *args, inputs={}, **kwargs)
    check_form(label, result, shape=shape, dtype=parameter.dtype, device=parameter.device)
    require(not result.requires_grad, label, "return the image detached (image.detach())")
    first, *others = starts(shape, seed, parameter.dtype, parameter.device)
    expected = ascent(objective, first, steps, lr, weight_decay)
    tol = tolerance(parameter.dtype)
    for start in others:  # the other accepted start, when the answer took it
        candidate = ascent(objective, start, steps, lr, weight_decay)
        if within(result.detach().double().cpu(), candidate.double().cpu(), tol, tol):
            expected = candidate
    mistakes = ascent_mistakes(objective, first, steps, lr, weight_decay, wrong_objectives)
    assert_close(label, result, expected, atol=tol, rtol=tol, mistakes=mistakes)
    return result


def ascent_cases(device) -> list[tuple[nn.Module, tuple[int, ...]]]:
    """Smooth float64 models with a mode gap before the layers the ascents read, and one image shape each."""
    torch.manual_seed(50)
    gap_first = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1),
        TrainEvalGap(),
        nn.Tanh(),
        nn.Conv2d(3, 4, 3),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(4 * 3 * 4, 5),
    )
    two_paths = TwoPaths(1, 5, 4).double().to(device)
    return [(gap_first.double().to(device).train(), (2, 5, 6)), (two_paths, (1, 5, 5))]


def check_activation_maximization(namespace: MutableMapping[str, Any]) -> None:
    """activation_maximization(model, layer, channel, shape, steps=100, lr=0.1, weight_decay=1e-4, seed=0)."""
    student = Student(namespace)
    answer = student.function("activation_maximization")
    device = student.device

    with group("activation_maximization against the update written out: layers, channels, settings, eval mode"):
        (model, shape), (two_paths, two_shape) = ascent_cases(device)
        cases = [
            (model, model[2], 1, shape, {"steps": 6, "lr": 0.4, "weight_decay": 0.3, "seed": 3}),
            (model, model[4], 3, shape, {"steps": 5, "lr": 0.7, "weight_decay": 0.05, "seed": 4}),
            (model, model[6], 2, shape, {"steps": 4, "lr": 0.5, "weight_decay": 0.2}),  # a flat output: one unit
            (model, model[0], 0, torch.Size(shape), {"steps": 3}),  # defaults for lr and weight_decay
            (two_paths, two_paths.body[0][1], 2, two_shape, {"steps": 5, "lr": 0.6, "weight_decay": 0.1, "seed": 9}),
            (two_paths, two_paths.shortcut, 1, [1, 5, 5], {"steps": 1, "lr": 0.3, "weight_decay": 0.4, "seed": 1}),
        ]
        two_paths.shortcut.register_forward_hook(silent_hook)  # a hook of the caller's, which must stay
        for model_, layer, channel, shape_, kwargs in cases:
            layer_name = name_in(model_, layer)
            label = case("activation_maximization", model_, f"model.{layer_name}", channel, shape_, **kwargs)
            wrong = {
                "the objective is the mean of the channel's activations, not their sum": channel_objective(
                    model_, layer, channel, "sum"
                ),
                "run the model in eval mode (model.eval(), then restore its mode)": channel_objective(
                    model_, layer, channel, training=True
                ),
            }
            check_ascent(
                label,
                answer,
                model_,
                (layer, channel, shape_),
                kwargs,
                channel_objective(model_, layer, channel),
                wrong,
            )

    with group("activation_maximization of one convolution channel reaches clip(g / (2 weight_decay), 0, 1)"):
        for seed, (channels, size, weight_decay) in enumerate([(1, 5, 0.4), (3, 4, 0.25)]):
            torch.manual_seed(60 + seed)
            model = nn.Sequential(nn.Conv2d(channels, 2, 3)).double().to(device)
            probe = torch.zeros(1, channels, size, size, dtype=FLOAT64, device=device, requires_grad=True)
            (g,) = torch.autograd.grad(model(probe)[0, 1].mean(), probe)
            optimum = (g[0] * 20 / (2 * weight_decay)).clamp(0, 1)
            with torch.no_grad():
                model[0].weight.mul_(20)
            label = case(
                "activation_maximization",
                model,
                "model[0]",
                1,
                (channels, size, size),
                steps=80,
                lr=0.5,
                weight_decay=weight_decay,
                seed=seed,
            )
            result = call(
                label,
                answer,
                model,
                model[0],
                1,
                (channels, size, size),
                steps=80,
                lr=0.5,
                weight_decay=weight_decay,
                seed=seed,
            )
            assert_close(label, result, optimum, atol=1e-6)

    check_seeds_and_devices("activation_maximization", answer, device, lambda model: (model[2], 1))


def check_class_visualization(namespace: MutableMapping[str, Any]) -> None:
    """class_visualization(model, target, shape, steps=100, lr=0.1, weight_decay=1e-4, seed=0)."""
    student = Student(namespace)
    answer = student.function("class_visualization")
    device = student.device

    with group("class_visualization against the update written out: classes, settings, eval mode"):
        (model, shape), (two_paths, two_shape) = ascent_cases(device)
        cases = [
            (model, 4, shape, {"steps": 6, "lr": 0.4, "weight_decay": 0.3, "seed": 3}),
            (model, 0, torch.Size(shape), {"steps": 3}),
            (two_paths, 2, two_shape, {"steps": 5, "lr": 0.6, "weight_decay": 0.1, "seed": 9}),
            (two_paths, 3, [1, 5, 5], {"steps": 1, "lr": 0.3, "weight_decay": 0.4, "seed": 1}),
        ]
        for model_, target, shape_, kwargs in cases:
            label = case("class_visualization", model_, target, shape_, **kwargs)
            wrong = {
                "climb the logit (the score before the softmax), not the probability": logit_objective(
                    model_, target, lambda z: z.softmax(dim=1)
                ),
                "climb the logit, not the log-probability (or the negative loss)": logit_objective(
                    model_, target, lambda z: z.log_softmax(dim=1)
                ),
                "run the model in eval mode (model.eval(), then restore its mode)": logit_objective(
                    model_, target, training=True
                ),
            }
            check_ascent(label, answer, model_, (target, shape_), kwargs, logit_objective(model_, target), wrong)

    with group("class_visualization of a linear model reaches clip(W_target / (2 weight_decay), 0, 1)"):
        torch.manual_seed(70)
        model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5)).double().to(device)
        with torch.no_grad():
            model[1].weight.mul_(10)
        optimum = (model[1].weight.detach()[3] / (2 * 0.3)).clamp(0, 1).view(3, 4, 4)
        label = case("class_visualization", model, 3, (3, 4, 4), steps=60, lr=0.5, weight_decay=0.3, seed=5)
        result = call(label, answer, model, 3, (3, 4, 4), steps=60, lr=0.5, weight_decay=0.3, seed=5)
        assert_close(label, result, optimum, atol=1e-6)

    check_seeds_and_devices("class_visualization", answer, device, lambda model: (3,))


def check_seeds_and_devices(name: str, answer: Callable, device, leading: Callable[[nn.Module], tuple]) -> None:
    """The same seed gives the same image, another seed another; float32 models give float32 images; nothing is
    made on the CPU when the model is on a GPU; the model is left as found after every call."""
    with group(f"{name}: seeds, float32, and a model on a (simulated) GPU"):
        (model, shape), _ = ascent_cases(device)
        args = (*leading(model), shape)
        label = case(name, model, *args, steps=2, seed=11)
        first = with_contract(label, answer, model, *args, inputs={}, steps=2, seed=11)
        again = with_contract(label, answer, model, *args, inputs={}, steps=2, seed=11)
        assert_close(label + " (called twice)", again, first, atol=0, mistakes=None)
        other = call(label, answer, model, *args, steps=2, seed=12)
        require(
            not (isinstance(other, torch.Tensor) and torch.equal(other, first)),
            label,
            "another seed must give another start (draw it with the seed argument)",
        )
        model32 = copy.deepcopy(model).float()
        args32 = (*leading(model32), shape)
        label = case(name, model32, *args32, steps=2)
        result = with_contract(label, answer, model32, *args32, inputs={}, steps=2)
        check_form(label, result, shape=shape, dtype=FLOAT32, device=device)
        require_gpu_safe(case(name, model, *args, steps=2), answer, model, *args, steps=2)


# ------------------------------------------------------------------ nearest_neighbors


def reference_neighbors(train: torch.Tensor, query: torch.Tensor, k: int) -> torch.Tensor:
    distances = torch.cdist(query.double(), train.double(), compute_mode="donot_use_mm_for_euclid_dist")
    return distances.topk(k, dim=1, largest=False).indices


def far_from_ties(train: torch.Tensor, query: torch.Tensor, k: int, margin: float) -> bool:
    """Whether the k + 1 nearest distances of every query differ pairwise by more than ``margin`` (relative)."""
    distances = torch.cdist(query.double(), train.double(), compute_mode="donot_use_mm_for_euclid_dist")
    nearest = distances.topk(min(k + 1, train.shape[0]), dim=1, largest=False).values
    gaps = nearest.diff(dim=1)
    return bool((gaps > margin * nearest[:, 1:].clamp_min(1e-12)).all())


def tie_free_features(n: int, q: int, d: int, k: int, seed: int, offset: float, dtype, device, margin: float = 1e-3):
    """Features whose neighbour order is unambiguous in ``dtype``: the k + 1 nearest distances of every query
    differ by more than ``margin`` (relative), on the first draw from ``seed`` on that gives it."""
    for attempt in range(100):
        train = normal((n, d), seed=seed + 1000 * attempt, mean=offset)
        query = normal((q, d), seed=seed + 1000 * attempt + 1, mean=offset)
        if far_from_ties(train, query, k, margin):
            return train.to(device=device, dtype=dtype), query.to(device=device, dtype=dtype)
    raise RuntimeError("no tie-free features found")  # never: the margins used are met within a few draws


def check_nearest_neighbors(namespace: MutableMapping[str, Any]) -> None:
    """nearest_neighbors(train_features, query_features, k): (Q, k) int64 indices, Euclidean, nearest first."""
    student = Student(namespace)
    nearest_neighbors = student.function("nearest_neighbors")
    device = student.device

    def neighbours(label: str, train: torch.Tensor, query: torch.Tensor, k: int) -> torch.Tensor:
        snapshot = Snapshot(train_features=train, query_features=query)
        result = call(label, nearest_neighbors, train, query, k)
        snapshot.assert_unchanged(label)
        expected = reference_neighbors(train, query, k).to(device)
        check_form(label, result, shape=(query.shape[0], k), dtype=torch.int64, device=device)
        dot = (query.double() @ train.double().T).topk(k, dim=1).indices.to(device)
        mistakes = {
            "rank by Euclidean distance, not by dot product (similarity)": dot,
            "nearest first: the k smallest distances (largest=False), in increasing order": torch.cdist(
                query.double(), train.double()
            )
            .topk(k, dim=1)
            .indices.to(device),
            "the k nearest must be listed nearest first (sorted by distance)": expected.flip(1),
        }
        if not torch.equal(result, expected):
            for diagnosis, value in mistakes.items():
                if value.shape == result.shape and torch.equal(result, value):
                    require(False, label, diagnosis)
            wrong = int((result != expected).any(dim=1).sum())
            require(
                False,
                label,
                f"{wrong} of {len(query)} queries got other neighbours (or another order) than the "
                "k nearest by Euclidean distance, nearest first",
            )
        return result

    with group("nearest_neighbors against cdist + topk: sizes, k, offsets, dtypes, layouts"):
        cases = [  # n, q, d, k, offset, dtype
            (20, 5, 3, 4, 0.0, FLOAT64),
            (7, 1, 1, 7, 0.0, FLOAT64),  # k = N, one query, one feature
            (50, 9, 16, 1, 0.0, FLOAT32),
            (33, 12, 5, 6, 1e4, FLOAT64),  # far from the origin: a dot product ranks by the offset
            (40, 40, 8, 3, 3.0, FLOAT32),
        ]
        for seed, (n, q, d, k, offset, dtype) in enumerate(cases):
            train, query = tie_free_features(n, q, d, k, 80 + seed, offset, dtype, device)
            neighbours(case("nearest_neighbors", train, query, k), train, query, k)
        train, query = tie_free_features(30, 6, 4, 5, 90, 0.0, FLOAT64, device)
        for (layout, train_), (_, query_) in zip(layouts(train), layouts(query), strict=True):
            neighbours(case("nearest_neighbors", train_, query_, 5) + f" ({layout})", train_, query_, 5)
        label = case("nearest_neighbors", train, train, 1) + " (the training rows themselves: each is its own nearest)"
        assert_close(label, neighbours(label, train, train, 1)[:, 0], torch.arange(30, device=device), atol=0)
        grad_train = train.clone().requires_grad_(True)
        neighbours(case("nearest_neighbors", grad_train, query, 2), grad_train, query, 2)

    with group("nearest_neighbors computes all distances at once (no Python loop over pairs)"):
        train, query = tie_free_features(3000, 200, 8, 5, 95, 0.0, FLOAT64, device, margin=1e-7)
        label = case("nearest_neighbors", train, query, 5)
        started = time.perf_counter()
        result = call(label, nearest_neighbors, train, query, 5)
        seconds = time.perf_counter() - started
        check_form(label, result, shape=(200, 5), dtype=torch.int64, device=device)
        require(
            torch.equal(result, reference_neighbors(train, query, 5).to(device)),
            label,
            "other neighbours than the 5 nearest by Euclidean distance, nearest first",
        )
        require(
            seconds < 1.5,
            label,
            f"took {seconds:.1f} s for 600,000 pairs; compute the (Q, N) distance matrix in one call (torch.cdist) "
            "instead of a Python loop over pairs",
        )
        require_gpu_safe(label, nearest_neighbors, train[:50], query[:5], 5)


# ------------------------------------------------------------------ occlusion_map


def reference_occlusion(
    model: nn.Module,
    x: torch.Tensor,
    targets: list[int],
    patch: int,
    stride: int,
    fill: float,
    score: Callable[[torch.Tensor], torch.Tensor] = lambda logits: logits.softmax(dim=1),
    channels: slice = slice(None),
) -> torch.Tensor:
    """One masked copy of the whole batch per position, scored by ``score`` (the softmax probability)."""
    n, _, height, width = x.shape
    rows, cols = (height - patch) // stride + 1, (width - patch) // stride + 1
    picked = torch.tensor(targets, device=x.device).view(-1, 1)
    result = torch.empty(n, rows * cols, dtype=x.dtype, device=x.device)
    with torch.no_grad():
        clean = score(model(x)).gather(1, picked)[:, 0]
        for position in range(rows * cols):
            top, left = (position // cols) * stride, (position % cols) * stride
            mask = torch.zeros_like(x, dtype=torch.bool)
            mask[:, channels, top : top + patch, left : left + patch] = True
            result[:, position] = (
                clean - score(model(torch.where(mask, torch.full_like(x, fill), x))).gather(1, picked)[:, 0]
            )
    return result.view(n, rows, cols)


def spatial_model(channels: int, height: int, width: int, classes: int, *, seed: int, device) -> nn.Sequential:
    """Conv -> TrainEvalGap -> Tanh -> Linear on every position: every pixel moves the logits its own way."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(channels, 3, 3, padding=1),
        TrainEvalGap(),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(3 * height * width, classes),
    )
    return model.double().to(device)


def check_occlusion_map(namespace: MutableMapping[str, Any]) -> None:
    """occlusion_map(model, x, target, patch=2, stride=1, fill=0.0): drop of the target's probability per position."""
    student = Student(namespace)
    occlusion_map = student.function("occlusion_map")
    device = student.device

    def occlusion(label: str, model: nn.Module, x: torch.Tensor, target, *args, **kwargs) -> torch.Tensor:
        inputs = {"x": x} | ({"target": target} if isinstance(target, torch.Tensor) else {})
        result = with_contract(label, occlusion_map, model, x, target, *args, inputs=inputs, **kwargs)
        settings = dict(zip(("patch", "stride", "fill"), args, strict=False)) | kwargs
        patch, stride, fill = settings.get("patch", 2), settings.get("stride", 1), settings.get("fill", 0.0)
        targets = target_list(target, len(x))
        twin = twin_of(model, training=False)
        expected = reference_occlusion(twin, x, targets, patch, stride, fill)
        mistakes = {
            "the map is the clean probability minus the occluded one (a drop is positive)": -expected,
            "use the softmax probability of the target, not its logit": reference_occlusion(
                twin, x, targets, patch, stride, fill, score=lambda z: z
            ),
            "use the softmax probability of the target, not its log-probability": reference_occlusion(
                twin, x, targets, patch, stride, fill, score=lambda z: z.log_softmax(dim=1)
            ),
            "set the square to fill in every channel, not only the first": reference_occlusion(
                twin, x, targets, patch, stride, fill, channels=slice(0, 1)
            ),
            "set the square to the value `fill`": reference_occlusion(twin, x, targets, patch, stride, 0.0),
            "use the target's probability, not the predicted class's": reference_occlusion(
                twin, x, twin(x).argmax(dim=1).tolist(), patch, stride, fill
            ),
        }
        if model.training:
            mistakes["run the model in eval mode (model.eval(), then restore its mode)"] = reference_occlusion(
                twin_of(model, training=True), x, targets, patch, stride, fill
            )
        tol = tolerance(x.dtype)
        assert_close(label, result, expected, atol=tol, rtol=tol, mistakes=mistakes)
        return result

    with group("occlusion_map against a mask-based loop: patches, strides, fills, sizes, int and tensor targets"):
        cases = [  # batch, channels, height, width, args, kwargs
            (2, 1, 5, 5, (), {}),
            (1, 3, 4, 6, (3,), {"stride": 2}),
            (3, 2, 7, 5, (), {"patch": 2, "stride": 3, "fill": 0.5}),
            (1, 1, 4, 4, (4, 1, 1.0), {}),  # one position: the whole image
            (2, 3, 6, 3, (), {"patch": 1, "stride": 2, "fill": 1.0}),
        ]
        for seed, (batch, channels, height, width, args, kwargs) in enumerate(cases):
            model = spatial_model(channels, height, width, 4, seed=100 + seed, device=device).train(seed % 2 == 0)
            x = images((batch, channels, height, width), seed=110 + seed, device=device)
            target = (torch.arange(batch, device=device) + seed) % 4
            for chosen in (target, int(target[-1])):
                occlusion(case("occlusion_map", model, x, chosen, *args, **kwargs), model, x, chosen, *args, **kwargs)

    with group("occlusion_map on models that differ in train and eval mode, float32, x in every layout"):
        torch.manual_seed(120)
        model = TwoPaths(2, 5, 6).double().to(device).train()
        base = images((3, 2, 5, 5), seed=120, device=device)
        target = torch.tensor([5, 0, 2], device=device)
        for layout, x in layouts(base):
            occlusion(
                case("occlusion_map", model, x, target, patch=2, stride=2) + f" ({layout})",
                model,
                x,
                target,
                patch=2,
                stride=2,
            )
        x = base.clone().requires_grad_(True)
        occlusion(case("occlusion_map", model, x, target), model, x, target)
        model = batchnorm_dropout_cnn(1, 6, 10, device=device, seed=121).train()
        x = images((4, 1, 6, 6), seed=122, dtype=FLOAT32, device=device)
        occlusion(case("occlusion_map", model, x, 3, patch=3, stride=1), model, x, 3, patch=3, stride=1)
        for target in (3, torch.tensor([1, 0, 9, 3], device=device)):
            require_gpu_safe(case("occlusion_map", model, x, target), occlusion_map, model, x, target)
