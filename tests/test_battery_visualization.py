"""Hidden tests of lab05_visualization (autograder/battery/visualization.py): correct answers in other styles
pass, known mistakes fail with a message that names them. The answers here run in this process; the corpus
(tests/corpus/lab05_visualization.py) grades others through the student's kernel."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from autograder.battery import visualization

# ------------------------------------------------------------------ correct answers, in other styles than the reference


class Stop(Exception):
    pass


def layer_activations(model, layer, x):
    """Stops the forward pass at the layer (the rest of the model never runs)."""
    found = {}

    def hook(module, inputs, output):
        found["output"] = output.detach().clone()
        raise Stop

    handle = layer.register_forward_hook(hook)
    try:
        with torch.no_grad():
            model(x)
    except Stop:
        pass
    finally:
        handle.remove()
    return found["output"]


def saliency_map(model, x, target):
    """loss.backward() on a clone, one image at a time."""
    was_training = model.training
    model.eval()
    maps = []
    for n in range(x.shape[0]):
        image = x[n : n + 1].clone().detach().requires_grad_()
        t = target if isinstance(target, int) else int(target[n])
        model(image)[0, t].backward()
        maps.append(image.grad[0].abs().max(dim=0).values)
    model.train(was_training)
    return torch.stack(maps)


def start_image(model, shape, seed):
    parameter = next(model.parameters())
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=parameter.dtype).to(parameter.device)


def activation_maximization(model, layer, channel, shape, steps=100, lr=0.1, weight_decay=1e-4, seed=0):
    """An SGD optimizer on the negated objective, the start drawn in the model's dtype directly."""
    image = start_image(model, shape, seed).requires_grad_(True)
    optimizer = torch.optim.SGD([image], lr=lr)
    store = []
    handle = layer.register_forward_hook(lambda m, i, o: store.append(o))
    was_training = model.training
    model.eval()
    try:
        for _ in range(steps):
            store.clear()
            optimizer.zero_grad()
            model(image[None])
            loss = -(store[0][0, channel].mean() - weight_decay * image.pow(2).sum())
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                image.clamp_(0, 1)
    finally:
        handle.remove()
        model.train(was_training)
    return image.detach()


def class_visualization(model, target, shape, steps=100, lr=0.1, weight_decay=1e-4, seed=0):
    parameter = next(model.parameters())
    image = torch.rand(shape, generator=torch.Generator().manual_seed(seed)).to(parameter)
    image.requires_grad_(True)
    optimizer = torch.optim.SGD([image], lr=lr, maximize=True)
    was_training = model.training
    model.eval()
    for _ in range(steps):
        optimizer.zero_grad()
        (model(image.unsqueeze(0))[0, target] - weight_decay * (image * image).sum()).backward()
        optimizer.step()
        with torch.no_grad():
            image.clamp_(0, 1)
    model.train(was_training)
    return image.detach()


def nearest_neighbors(train_features, query_features, k):
    """The expansion |a|^2 - 2 a.b + |b|^2 and argsort."""
    squared = (
        (query_features**2).sum(1, keepdim=True) - 2 * query_features @ train_features.T + (train_features**2).sum(1)
    )
    return squared.argsort(dim=1)[:, :k]


def occlusion_map(model, x, target, patch=2, stride=1, fill=0.0):
    """Every occluded copy in one forward pass."""
    was_training = model.training
    model.eval()
    n, c, h, w = x.shape
    rows, cols = (h - patch) // stride + 1, (w - patch) // stride + 1
    t = torch.full((n,), target, device=x.device) if isinstance(target, int) else target
    copies = x.detach().unsqueeze(1).repeat(1, rows * cols, 1, 1, 1)
    for index in range(rows * cols):
        r, q = divmod(index, cols)
        copies[:, index, :, r * stride : r * stride + patch, q * stride : q * stride + patch] = fill
    with torch.no_grad():
        clean = F.softmax(model(x), dim=1)[torch.arange(n), t]
        occluded = F.softmax(model(copies.flatten(0, 1)), dim=1).view(n, rows * cols, -1)
        drop = clean[:, None] - occluded[torch.arange(n), :, t]
    model.train(was_training)
    return drop.view(n, rows, cols)


CORRECT = {
    "layer_activations": layer_activations,
    "saliency_map": saliency_map,
    "activation_maximization": activation_maximization,
    "class_visualization": class_visualization,
    "nearest_neighbors": nearest_neighbors,
    "occlusion_map": occlusion_map,
}


def grade(name: str, function) -> None:
    getattr(visualization, f"check_{name}")({name: function, "device": torch.device("cpu")})


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_answers_in_other_styles_pass(name):
    grade(name, CORRECT[name])


# ------------------------------------------------------------------ known mistakes


def no_clone(model, layer, x):
    kept = []
    handle = layer.register_forward_hook(lambda m, i, o: kept.append(o.detach()))
    with torch.no_grad():
        model(x)
    handle.remove()
    return kept[0]


def hook_kept_on_error(model, layer, x):
    kept = []
    handle = layer.register_forward_hook(lambda m, i, o: kept.append(o.detach().clone()))
    with torch.no_grad():
        model(x)
    handle.remove()
    return kept[0]


def clears_hooks(model, layer, x):
    kept = []
    layer.register_forward_hook(lambda m, i, o: kept.append(o.detach().clone()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        layer._forward_hooks.clear()
    return kept[0]


def evaluates(model, layer, x):
    was_training = model.training
    model.eval()
    try:
        return layer_activations(model, layer, x)
    finally:
        model.train(was_training)


def evaluates_for_good(model, layer, x):
    model.eval()
    return layer_activations(model, layer, x)


def children_walk(model, layer, x):
    with torch.no_grad():
        for child in model.children():
            x = child(x)
            if child is layer:
                return x.clone()
    return x


def saliency_of_loss(model, x, target):
    was_training = model.training
    model.eval()
    image = x.detach().clone().requires_grad_(True)
    t = torch.as_tensor(target).expand(len(x))
    (grad,) = torch.autograd.grad(F.cross_entropy(model(image), t, reduction="sum"), image)
    model.train(was_training)
    return grad.abs().amax(dim=1)


def saliency_mean_channels(model, x, target):
    return saliency_map(model, x, target) if x.shape[1] == 1 else _mean_channels(model, x, target)


def _mean_channels(model, x, target):
    was_training = model.training
    model.eval()
    image = x.detach().clone().requires_grad_(True)
    t = torch.as_tensor(target).expand(len(x))
    (grad,) = torch.autograd.grad(model(image).gather(1, t.view(-1, 1)).sum(), image)
    model.train(was_training)
    return grad.abs().mean(dim=1)


def saliency_index_by_tensor(model, x, target):
    was_training = model.training
    model.eval()
    image = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(image)[:, target].sum(), image)
    model.train(was_training)
    return grad.abs().amax(dim=1)


def saliency_in_train_mode(model, x, target):
    image = x.detach().clone().requires_grad_(True)
    t = torch.as_tensor(target).expand(len(x))
    (grad,) = torch.autograd.grad(model(image).gather(1, t.view(-1, 1)).sum(), image)
    return grad.abs().amax(dim=1)


def saliency_on_callers_x(model, x, target):
    was_training = model.training
    model.eval()
    x.requires_grad_(True)
    t = torch.as_tensor(target).expand(len(x))
    (grad,) = torch.autograd.grad(model(x).gather(1, t.view(-1, 1)).sum(), x)
    model.train(was_training)
    return grad.abs().amax(dim=1)


def ascent_with(**change):
    """activation_maximization with one mistake."""

    def answer(model, layer, channel, shape, steps=100, lr=0.1, weight_decay=1e-4, seed=0):
        parameter = next(model.parameters())
        image = torch.rand(shape, generator=torch.Generator().manual_seed(seed)).to(parameter)
        if change.get("global_rng"):
            image = torch.rand(shape).to(parameter)
        store = []
        handle = layer.register_forward_hook(lambda m, i, o: store.append(o))
        was_training = model.training
        if not change.get("train_mode"):
            model.eval()
        for _ in range(steps + change.get("extra_steps", 0)):
            store.clear()
            image.requires_grad_(True)
            model(image[None])
            activation = store[0][0, channel]
            activation = activation.sum() if change.get("sum") else activation.mean()
            penalty = weight_decay * (image**2).sum() * change.get("penalty_scale", 1.0)
            (grad,) = torch.autograd.grad(activation - penalty, image)
            step = -lr * grad if change.get("descent") else lr * grad
            image = image.detach() + step
            if not change.get("no_clamp"):
                image = image.clamp(0, 1)
        if not change.get("keep_hook"):
            handle.remove()
        model.train(was_training)
        return image.detach()

    return answer


def class_ascent_of_probability(model, target, shape, steps=100, lr=0.1, weight_decay=1e-4, seed=0):
    parameter = next(model.parameters())
    image = torch.rand(shape, generator=torch.Generator().manual_seed(seed)).to(parameter)
    was_training = model.training
    model.eval()
    for _ in range(steps):
        image.requires_grad_(True)
        objective = model(image[None]).softmax(dim=1)[0, target] - weight_decay * (image**2).sum()
        (grad,) = torch.autograd.grad(objective, image)
        image = (image.detach() + lr * grad).clamp(0, 1)
    model.train(was_training)
    return image.detach()


def neighbours_by_dot_product(train_features, query_features, k):
    return (query_features @ train_features.T).topk(k, dim=1).indices


def neighbours_farthest(train_features, query_features, k):
    return torch.cdist(query_features, train_features).topk(k, dim=1).indices


def neighbours_by_pairs(train_features, query_features, k):
    distances = torch.empty(len(query_features), len(train_features), dtype=query_features.dtype)
    for i in range(len(query_features)):
        for j in range(len(train_features)):
            distances[i, j] = (query_features[i] - train_features[j]).norm()
    return distances.topk(k, dim=1, largest=False).indices


def occlusion_with(**change):
    def answer(model, x, target, patch=2, stride=1, fill=0.0):
        was_training = model.training
        if not change.get("train_mode"):
            model.eval()
        n, _, h, w = x.shape
        step = 1 if change.get("ignore_stride") else stride
        rows, cols = (h - patch) // step + 1, (w - patch) // step + 1
        t = torch.as_tensor(target, device=x.device).expand(n).view(-1, 1)
        score = (lambda z: z) if change.get("logits") else (lambda z: z.softmax(dim=1))
        with torch.no_grad():
            clean = score(model(x)).gather(1, t)[:, 0]
            out = torch.zeros(n, rows, cols, dtype=x.dtype)
            for u in range(rows):
                for v in range(cols):
                    occluded = x if change.get("in_place") else x.clone()
                    saved = occluded[:, :, u * step : u * step + patch, v * step : v * step + patch].clone()
                    channels = slice(0, 1) if change.get("one_channel") else slice(None)
                    occluded[:, channels, u * step : u * step + patch, v * step : v * step + patch] = fill
                    drop = clean - score(model(occluded)).gather(1, t)[:, 0]
                    out[:, u, v] = -drop if change.get("sign") else drop
                    if change.get("in_place"):
                        occluded[:, :, u * step : u * step + patch, v * step : v * step + patch] = saved
        model.train(was_training)
        return out

    return answer


MISTAKES = [
    ("layer_activations", no_clone, "in place"),
    ("layer_activations", hook_kept_on_error, "hook"),
    ("layer_activations", evaluates, "mode it is in"),
    ("layer_activations", clears_hooks, "removed a hook that was registered"),
    ("layer_activations", evaluates_for_good, "left model in eval mode"),
    ("layer_activations", children_walk, "layer_activations"),
    ("saliency_map", saliency_of_loss, "not the loss"),
    ("saliency_map", saliency_mean_channels, "not the mean"),
    ("saliency_map", saliency_index_by_tensor, "its own class"),
    ("saliency_map", saliency_in_train_mode, "eval mode"),
    ("saliency_map", saliency_on_callers_x, "requires_grad"),
    ("activation_maximization", ascent_with(descent=True), "climb the gradient"),
    ("activation_maximization", ascent_with(no_clamp=True), "clamp"),
    ("activation_maximization", ascent_with(penalty_scale=0.5), "the sum of squares"),
    ("activation_maximization", ascent_with(penalty_scale=-1.0), "subtract the penalty"),
    ("activation_maximization", ascent_with(sum=True), "not their sum"),
    ("activation_maximization", ascent_with(train_mode=True), "eval mode"),
    ("activation_maximization", ascent_with(extra_steps=1), "one more"),
    ("activation_maximization", ascent_with(keep_hook=True), "hooks"),
    ("activation_maximization", ascent_with(global_rng=True), "seed"),
    ("class_visualization", class_ascent_of_probability, "not the probability"),
    ("nearest_neighbors", neighbours_by_dot_product, "dot product"),
    ("nearest_neighbors", neighbours_farthest, "smallest distances"),
    ("nearest_neighbors", neighbours_by_pairs, "loop over pairs"),
    ("occlusion_map", occlusion_with(logits=True), "not its logit"),
    ("occlusion_map", occlusion_with(sign=True), "clean probability minus"),
    ("occlusion_map", occlusion_with(one_channel=True), "every channel"),
    ("occlusion_map", occlusion_with(train_mode=True), "eval mode"),
    ("occlusion_map", occlusion_with(in_place=True), "in place"),
    ("occlusion_map", occlusion_with(ignore_stride=True), "shape"),
]


@pytest.mark.parametrize(("name", "answer", "message"), MISTAKES, ids=[f"{m[0]}-{i}" for i, m in enumerate(MISTAKES)])
def test_known_mistakes_fail_with_a_message_that_names_them(name, answer, message):
    with pytest.raises(AssertionError, match=message):
        grade(name, answer)


def test_a_missing_answer_is_named():
    with pytest.raises(AssertionError, match="`saliency_map` is not defined"):
        visualization.check_saliency_map({})
