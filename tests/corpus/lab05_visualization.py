"""lab05_visualization: realistic mistakes (each caught by the named test cell) and correct alternatives.

Most entries change one line of the reference answer (``edit``); the rest are written out. No graded
cell uses another answer (only the experiment cells chain them, and the grader leaves those out),
so each mistake loses points in its own test cell only. Many of them pass the visible test and are
caught by the hidden tests of the same cell: a mode mistake shows only on models that differ in
train and eval mode, a stride, a fill, a channel or a transposed map only on settings the visible
cell does not try, a missing ``try``/``finally`` only on a model whose forward raises, a tensor
made on the CPU only on a (simulated) GPU.
"""

from tests.submissions import WrongImplementation as Wrong
from tests.submissions import reference_answers, reference_editor

LAB = "lab05_visualization"
# Each test cell tests one answer only (tests/test_lab_namespaces.py checks it), so entries of different answer
# cells are graded together, several to a notebook (tests/grading.py).
TESTED_BY = {
    "layer_activations": ("test_layer_activations",),
    "saliency_map": ("test_saliency_map",),
    "activation_maximization": ("test_activation_maximization",),
    "class_visualization": ("test_class_visualization",),
    "nearest_neighbors": ("test_nearest_neighbors",),
    "occlusion_map": ("test_occlusion_map",),
    "questions": ("test_q1", "test_q2", "test_q3", "test_q4", "test_q5"),
}
REFERENCE = reference_answers(LAB)
edit = reference_editor(LAB)

ACTIVATIONS, SALIENCY = ("test_layer_activations",), ("test_saliency_map",)
MAXIMIZATION, CLASS_VIS = ("test_activation_maximization",), ("test_class_visualization",)
NEIGHBOURS, OCCLUSION = ("test_nearest_neighbors",), ("test_occlusion_map",)
Q1, Q2, Q3, Q4, Q5 = ("test_q1",), ("test_q2",), ("test_q3",), ("test_q4",), ("test_q5",)

# layer_activations
KEEP = "output.detach().clone()"
RUN_HOOKED = """    handle = layer.register_forward_hook(keep_output)
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
"""
# saliency_map
CLONE_AND_RUN = "        image = x.detach().clone().requires_grad_(True)\n        logits = model(image)\n"
CLASSES = "        classes = torch.as_tensor(target, device=logits.device).expand(len(x))\n"
SCORE = "        score = logits.gather(1, classes.view(-1, 1)).sum()  # images do not interact in eval mode\n"
SALIENCY_RETURN = "    return gradient.abs().amax(dim=1)"
# activation_maximization and class_visualization
STEP = "            image = (image.detach() + lr * gradient).clamp(0, 1)\n"
CHANNEL_MEAN = 'captured["output"][0, channel].mean()'
PENALTY = "- weight_decay * (image**2).sum()"
SEEDED_START = "torch.rand(shape, generator=torch.Generator().manual_seed(seed))"
LOGIT = "model(image.unsqueeze(0))[0, target]"
# nearest_neighbors
PICK = "    return distances.topk(k, dim=1, largest=False).indices"
# occlusion_map
POSITIONS = "        rows, cols = (height - patch) // stride + 1, (width - patch) // stride + 1\n"
TARGETS = "        classes = torch.as_tensor(target, device=x.device).expand(n).view(-1, 1)\n"
SQUARE = "occluded[:, :, u * stride:u * stride + patch, v * stride:v * stride + patch] = fill"
DROP = "drops.append(clean - model(occluded).softmax(dim=1).gather(1, classes)[:, 0])"
LOOPS = "            for u in range(rows):\n                for v in range(cols):\n"

CORPUS = [
    # --- layer_activations
    # detach() shares the output's memory: the in-place ReLU after the layer clips what was returned
    edit("activations_not_cloned", "layer_activations", KEEP, "output.detach()", ACTIVATIONS),
    Wrong(
        "activations_keep_the_graph",
        "layer_activations",
        REFERENCE["layer_activations"]
        .replace(KEEP, "output.clone()")
        .replace("        with torch.no_grad():\n            model(x)\n", "        model(x)\n"),
        ACTIVATIONS,
    ),
    edit(
        "activations_hook_never_removed",
        "layer_activations",
        RUN_HOOKED,
        "    layer.register_forward_hook(keep_output)\n    with torch.no_grad():\n        model(x)\n",
        ACTIVATIONS,
    ),
    # the visible test never makes the forward pass raise: only the hidden tests' broken model shows it
    edit(
        "activations_hook_kept_when_the_forward_raises",
        "layer_activations",
        RUN_HOOKED,
        "    handle = layer.register_forward_hook(keep_output)\n    with torch.no_grad():\n        model(x)\n"
        "    handle.remove()\n",
        ACTIVATIONS,
    ),
    # the visible model has no layer that behaves differently in train mode
    edit(
        "activations_in_eval_mode",
        "layer_activations",
        RUN_HOOKED,
        """    was_training = model.training
    model.eval()  # inspecting, not training
    handle = layer.register_forward_hook(keep_output)
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
        model.train(was_training)
""",
        ACTIVATIONS,
    ),
    edit("activations_of_the_input", "layer_activations", KEEP, "inputs[0].detach().clone()", ACTIVATIONS),
    # right for the visible nn.Sequential; a forward that is not a chain of children (or a nested layer) fails
    Wrong(
        "activations_by_walking_the_children",
        "layer_activations",
        """
def layer_activations(model, layer, x):
    out = x
    with torch.no_grad():
        for module in model.children():
            out = module(out)
            if module is layer:
                return out.detach().clone()
    return out.detach().clone()
""",
        ACTIVATIONS,
    ),
    edit("activations_as_a_list", "layer_activations", "    return captured[0]", "    return captured", ACTIVATIONS),
    # moved to the CPU for plotting: only the hidden tests' (simulated) GPU sees it
    edit("activations_moved_to_the_cpu", "layer_activations", KEEP, "output.detach().clone().cpu()", ACTIVATIONS),
    # --- saliency_map
    edit("saliency_of_the_loss", "saliency_map", SCORE, "        score = F.cross_entropy(logits, classes)\n", SALIENCY),
    edit(
        "saliency_of_the_probability",
        "saliency_map",
        SCORE,
        "        score = logits.softmax(dim=1).gather(1, classes.view(-1, 1)).sum()\n",
        SALIENCY,
    ),
    edit(
        "saliency_of_the_log_probability",
        "saliency_map",
        SCORE,
        "        score = F.log_softmax(logits, dim=1).gather(1, classes.view(-1, 1)).sum()\n",
        SALIENCY,
    ),
    edit("saliency_without_abs", "saliency_map", SALIENCY_RETURN, "    return gradient.amax(dim=1)", SALIENCY),
    edit(
        "saliency_mean_over_channels",
        "saliency_map",
        SALIENCY_RETURN,
        "    return gradient.abs().mean(dim=1)",
        SALIENCY,
    ),
    # an int target gives one logit per image; a tensor target picks N logits for every image
    edit(
        "saliency_logits_indexed_with_the_target",
        "saliency_map",
        CLASSES + SCORE,
        "        score = logits[:, target].sum()\n",
        SALIENCY,
    ),
    edit(
        "saliency_mean_over_the_batch",
        "saliency_map",
        SCORE,
        "        score = logits.gather(1, classes.view(-1, 1)).mean()\n",
        SALIENCY,
    ),
    # an int target becomes a CPU tensor: only the hidden tests' (simulated) GPU sees it
    edit(
        "saliency_int_target_made_on_the_cpu",
        "saliency_map",
        CLASSES,
        "        classes = torch.as_tensor(target).expand(len(x))\n",
        SALIENCY,
    ),
    # the visible linear model is the same in train and eval mode
    edit("saliency_in_train_mode", "saliency_map", "    model.eval()\n", "", SALIENCY),
    Wrong(
        "saliency_mode_not_restored",
        "saliency_map",
        """
def saliency_map(model, x, target):
    model.eval()
    image = x.detach().clone().requires_grad_(True)
    logits = model(image)
    classes = torch.as_tensor(target, device=logits.device).expand(len(x))
    score = logits.gather(1, classes.view(-1, 1)).sum()
    (gradient,) = torch.autograd.grad(score, image)
    return gradient.abs().amax(dim=1)
""",
        SALIENCY,
    ),
    # the values are right; the caller's x is left requiring grad (the hidden tests look at x)
    Wrong(
        "saliency_gradient_of_the_callers_x",
        "saliency_map",
        REFERENCE["saliency_map"]
        .replace(CLONE_AND_RUN, "        x.requires_grad_(True)\n        logits = model(x)\n")
        .replace("torch.autograd.grad(score, image)", "torch.autograd.grad(score, x)"),
        SALIENCY,
    ),
    # CS231n's set-up freezes the network once; inside the function it changes the caller's model
    edit(
        "saliency_parameters_frozen",
        "saliency_map",
        "    was_training = model.training\n",
        "    for param in model.parameters():\n        param.requires_grad = False\n"
        "    was_training = model.training\n",
        SALIENCY,
    ),
    edit("saliency_per_channel", "saliency_map", SALIENCY_RETURN, "    return gradient.abs()", SALIENCY),
    edit(
        "saliency_in_float32",
        "saliency_map",
        SALIENCY_RETURN,
        "    return gradient.abs().amax(dim=1).float()",
        SALIENCY,
    ),
    # --- activation_maximization
    edit(
        "maximization_descent",
        "activation_maximization",
        STEP,
        "            image = (image.detach() - lr * gradient).clamp(0, 1)\n",
        MAXIMIZATION,
    ),
    # on the visible (linear) objective the end clamp reaches the same optimum; the hidden few-step runs differ
    Wrong(
        "maximization_clamped_only_at_the_end",
        "activation_maximization",
        REFERENCE["activation_maximization"]
        .replace(STEP, "            image = image.detach() + lr * gradient\n")
        .replace("    return image.detach()", "    return image.detach().clamp(0, 1)"),
        MAXIMIZATION,
    ),
    # minimises the activation (the sign of a loss) while climbing
    edit(
        "maximization_activation_negated",
        "activation_maximization",
        CHANNEL_MEAN,
        '-captured["output"][0, channel].mean()',
        MAXIMIZATION,
    ),
    edit(
        "maximization_penalty_added",
        "activation_maximization",
        PENALTY,
        "+ weight_decay * (image**2).sum()",
        MAXIMIZATION,
    ),
    edit(
        "maximization_norm_not_squared",
        "activation_maximization",
        PENALTY,
        "- weight_decay * image.norm()",
        MAXIMIZATION,
    ),
    edit(
        "maximization_channel_summed",
        "activation_maximization",
        CHANNEL_MEAN,
        'captured["output"][0, channel].sum()',
        MAXIMIZATION,
    ),
    # fine on feature maps; the hidden tests also ask for a unit of a flat (1, F) output
    edit(
        "maximization_assumes_a_feature_map",
        "activation_maximization",
        CHANNEL_MEAN,
        'captured["output"][0, channel, :, :].mean()',
        MAXIMIZATION,
    ),
    edit(
        "maximization_normalised_step",
        "activation_maximization",
        STEP,
        "            image = (image.detach() + lr * gradient / gradient.norm()).clamp(0, 1)\n",
        MAXIMIZATION,
    ),
    # the optimizer's weight_decay adds weight_decay * I to the gradient: half the penalty's 2 * weight_decay * I
    Wrong(
        "maximization_sgd_weight_decay",
        "activation_maximization",
        """
def activation_maximization(model, layer, channel, shape, steps=100, lr=0.1, weight_decay=1e-4, seed=0):
    parameter = next(model.parameters())
    start = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
    image = start.to(parameter.device, parameter.dtype).requires_grad_(True)
    optimizer = torch.optim.SGD([image], lr=lr, weight_decay=weight_decay)
    captured = {}
    handle = layer.register_forward_hook(lambda module, inputs, output: captured.update(output=output))
    was_training = model.training
    model.eval()
    try:
        for _ in range(steps):
            optimizer.zero_grad()
            model(image.unsqueeze(0))
            loss = -captured["output"][0, channel].mean()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                image.clamp_(0, 1)
    finally:
        handle.remove()
        model.train(was_training)
    return image.detach()
""",
        MAXIMIZATION,
    ),
    Wrong(
        "maximization_adam",
        "activation_maximization",
        """
def activation_maximization(model, layer, channel, shape, steps=100, lr=0.1, weight_decay=1e-4, seed=0):
    parameter = next(model.parameters())
    start = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
    image = start.to(parameter.device, parameter.dtype).requires_grad_(True)
    optimizer = torch.optim.Adam([image], lr=lr)
    captured = {}
    handle = layer.register_forward_hook(lambda module, inputs, output: captured.update(output=output))
    was_training = model.training
    model.eval()
    try:
        for _ in range(steps):
            optimizer.zero_grad()
            model(image.unsqueeze(0))
            loss = -(captured["output"][0, channel].mean() - weight_decay * (image**2).sum())
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                image.clamp_(0, 1)
    finally:
        handle.remove()
        model.train(was_training)
    return image.detach()
""",
        MAXIMIZATION,
    ),
    edit("maximization_seed_ignored", "activation_maximization", SEEDED_START, "torch.rand(shape)", MAXIMIZATION),
    # right dtype, but the start stays on the CPU: only the hidden tests' (simulated) GPU sees it
    edit(
        "maximization_start_left_on_the_cpu",
        "activation_maximization",
        "start.to(parameter.device, parameter.dtype)",
        "start.to(dtype=parameter.dtype)",
        MAXIMIZATION,
    ),
    # steps=0 still returns the start, and 60 steps are as converged as 59
    edit(
        "maximization_one_step_fewer",
        "activation_maximization",
        "for _ in range(steps):",
        "for _ in range(steps - 1):",
        MAXIMIZATION,
    ),
    edit(
        "maximization_hook_left_registered",
        "activation_maximization",
        "        handle.remove()\n",
        "",
        MAXIMIZATION,
    ),
    edit("maximization_in_train_mode", "activation_maximization", "    model.eval()\n", "", MAXIMIZATION),
    # --- class_visualization
    edit(
        "class_vis_of_the_probability",
        "class_visualization",
        LOGIT,
        "model(image.unsqueeze(0)).softmax(dim=1)[0, target]",
        CLASS_VIS,
    ),
    edit(
        "class_vis_of_the_negative_loss",
        "class_visualization",
        LOGIT,
        "-F.cross_entropy(model(image.unsqueeze(0)), torch.tensor([target], device=image.device))",
        CLASS_VIS,
    ),
    edit("class_vis_in_train_mode", "class_visualization", "    model.eval()\n", "", CLASS_VIS),
    Wrong(
        "class_vis_mode_not_restored",
        "class_visualization",
        """
def class_visualization(model, target, shape, steps=100, lr=0.1, weight_decay=1e-4, seed=0):
    parameter = next(model.parameters())
    image = torch.rand(shape, generator=torch.Generator().manual_seed(seed)).to(parameter.device, parameter.dtype)
    model.eval()
    for _ in range(steps):
        image.requires_grad_(True)
        objective = model(image.unsqueeze(0))[0, target] - weight_decay * (image**2).sum()
        (gradient,) = torch.autograd.grad(objective, image)
        image = (image.detach() + lr * gradient).clamp(0, 1)
    return image.detach()
""",
        CLASS_VIS,
    ),
    # maximize=True climbs, but weight_decay= still adds only weight_decay * I
    Wrong(
        "class_vis_sgd_maximize_with_weight_decay",
        "class_visualization",
        """
def class_visualization(model, target, shape, steps=100, lr=0.1, weight_decay=1e-4, seed=0):
    parameter = next(model.parameters())
    image = torch.rand(shape, generator=torch.Generator().manual_seed(seed)).to(parameter.device, parameter.dtype)
    image.requires_grad_(True)
    optimizer = torch.optim.SGD([image], lr=lr, weight_decay=weight_decay, maximize=True)
    was_training = model.training
    model.eval()
    try:
        for _ in range(steps):
            optimizer.zero_grad()
            model(image.unsqueeze(0))[0, target].backward()
            optimizer.step()
            with torch.no_grad():
                image.clamp_(0, 1)
    finally:
        model.train(was_training)
    return image.detach()
""",
        CLASS_VIS,
    ),
    edit(
        "class_vis_not_clamped",
        "class_visualization",
        STEP,
        "            image = image.detach() + lr * gradient\n",
        CLASS_VIS,
    ),
    # 80 visible steps forget the start; the hidden few-step runs do not
    edit("class_vis_normal_start", "class_visualization", "torch.rand(shape,", "torch.randn(shape,", CLASS_VIS),
    edit("class_vis_one_step_more", "class_visualization", "range(steps)", "range(steps + 1)", CLASS_VIS),
    # the start stays float32: the float64 model refuses it
    edit(
        "class_vis_start_in_float32",
        "class_visualization",
        ".to(parameter.device, parameter.dtype)",
        ".to(parameter.device)",
        CLASS_VIS,
    ),
    # updated through .data: the values are right, but the image returned still requires grad
    Wrong(
        "class_vis_returns_a_leaf_that_requires_grad",
        "class_visualization",
        """
def class_visualization(model, target, shape, steps=100, lr=0.1, weight_decay=1e-4, seed=0):
    parameter = next(model.parameters())
    image = torch.rand(shape, generator=torch.Generator().manual_seed(seed)).to(parameter.device, parameter.dtype)
    image.requires_grad_(True)
    was_training = model.training
    model.eval()
    try:
        for _ in range(steps):
            objective = model(image.unsqueeze(0))[0, target] - weight_decay * (image**2).sum()
            (gradient,) = torch.autograd.grad(objective, image)
            image.data = (image.data + lr * gradient).clamp(0, 1)
    finally:
        model.train(was_training)
    return image
""",
        CLASS_VIS,
    ),
    # --- nearest_neighbors
    Wrong(
        "neighbours_by_dot_product",
        "nearest_neighbors",
        """
def nearest_neighbors(train_features, query_features, k):
    similarity = query_features @ train_features.T
    return similarity.topk(k, dim=1).indices
""",
        NEIGHBOURS,
    ),
    Wrong(
        "neighbours_by_cosine_similarity",
        "nearest_neighbors",
        """
def nearest_neighbors(train_features, query_features, k):
    similarity = F.normalize(query_features, dim=1) @ F.normalize(train_features, dim=1).T
    return similarity.topk(k, dim=1).indices
""",
        NEIGHBOURS,
    ),
    edit(
        "neighbours_farthest_first",
        "nearest_neighbors",
        PICK,
        "    return distances.topk(k, dim=1).indices",
        NEIGHBOURS,
    ),
    # (N, Q) distances ranked over the training rows: a (k, Q) answer, the transpose of the right one
    Wrong(
        "neighbours_topk_over_dim_0",
        "nearest_neighbors",
        """
def nearest_neighbors(train_features, query_features, k):
    distances = torch.cdist(train_features, query_features)  # (N, Q)
    return distances.topk(k, dim=0, largest=False).indices
""",
        NEIGHBOURS,
    ),
    # drops the nearest row, as if every query were one of the training rows
    edit(
        "neighbours_skip_the_nearest",
        "nearest_neighbors",
        PICK,
        "    return distances.topk(k + 1, dim=1, largest=False).indices[:, 1:]",
        NEIGHBOURS,
    ),
    edit(
        "neighbours_distances_returned",
        "nearest_neighbors",
        PICK,
        "    return distances.topk(k, dim=1, largest=False).values",
        NEIGHBOURS,
    ),
    edit(
        "neighbours_argsort_descending",
        "nearest_neighbors",
        PICK,
        "    return distances.argsort(dim=1, descending=True)[:, :k]",
        NEIGHBOURS,
    ),
    # torch.zeros makes a float32 result
    Wrong(
        "neighbours_float_indices",
        "nearest_neighbors",
        """
def nearest_neighbors(train_features, query_features, k):
    distances = torch.cdist(query_features, train_features)
    result = torch.zeros(len(query_features), k)
    for i in range(len(query_features)):
        result[i] = distances[i].argsort()[:k]
    return result
""",
        NEIGHBOURS,
    ),
    # right neighbours, but 600,000 distances one by one are too slow for the hidden tests' large case
    Wrong(
        "neighbours_loop_over_pairs",
        "nearest_neighbors",
        """
def nearest_neighbors(train_features, query_features, k):
    result = []
    for query in query_features:
        distances = torch.stack([torch.dist(query, row) for row in train_features])
        result.append(distances.topk(k, largest=False).indices)
    return torch.stack(result)
""",
        NEIGHBOURS,
    ),
    Wrong(
        "neighbours_expansion_with_a_plus",
        "nearest_neighbors",
        """
def nearest_neighbors(train_features, query_features, k):
    squared = (
        (query_features**2).sum(dim=1, keepdim=True)
        + 2 * query_features @ train_features.T
        + (train_features**2).sum(dim=1)
    )
    return squared.topk(k, dim=1, largest=False).indices
""",
        NEIGHBOURS,
    ),
    # --- occlusion_map
    edit("occlusion_of_the_logit", "occlusion_map", ".softmax(dim=1)", "", OCCLUSION),
    edit("occlusion_of_the_log_probability", "occlusion_map", ".softmax(dim=1)", ".log_softmax(dim=1)", OCCLUSION),
    edit(
        "occlusion_occluded_minus_clean",
        "occlusion_map",
        DROP,
        "drops.append(model(occluded).softmax(dim=1).gather(1, classes)[:, 0] - clean)",
        OCCLUSION,
    ),
    # the visible image has one channel
    edit(
        "occlusion_first_channel_only",
        "occlusion_map",
        SQUARE,
        "occluded[:, 0, u * stride:u * stride + patch, v * stride:v * stride + patch] = fill",
        OCCLUSION,
    ),
    # the visible test uses the defaults fill=0 and stride=1
    edit(
        "occlusion_fill_ignored",
        "occlusion_map",
        SQUARE,
        "occluded[:, :, u * stride:u * stride + patch, v * stride:v * stride + patch] = 0",
        OCCLUSION,
    ),
    edit(
        "occlusion_stride_ignored_in_the_square",
        "occlusion_map",
        SQUARE,
        "occluded[:, :, u:u + patch, v:v + patch] = fill",
        OCCLUSION,
    ),
    edit(
        "occlusion_last_position_missed",
        "occlusion_map",
        POSITIONS,
        "        rows, cols = (height - patch) // stride, (width - patch) // stride\n",
        OCCLUSION,
    ),
    # loops swapped: the visible map has one row, where the order does not matter
    edit(
        "occlusion_rows_and_columns_swapped",
        "occlusion_map",
        LOOPS,
        "            for v in range(cols):\n                for u in range(rows):\n",
        OCCLUSION,
    ),
    # the visible image is predicted as its target
    edit(
        "occlusion_of_the_predicted_class",
        "occlusion_map",
        TARGETS,
        "        classes = model(x).argmax(dim=1, keepdim=True)\n",
        OCCLUSION,
    ),
    edit("occlusion_in_train_mode", "occlusion_map", "    model.eval()\n", "", OCCLUSION),
    # the values are right, but x was changed in place for a while (its version counter moved)
    edit(
        "occlusion_in_place_and_restored",
        "occlusion_map",
        "                    occluded = x.detach().clone()\n"
        f"                    {SQUARE}\n"
        f"                    {DROP}\n",
        "                    square = (slice(None), slice(None), slice(u * stride, u * stride + patch),\n"
        "                              slice(v * stride, v * stride + patch))\n"
        "                    saved = x[square].clone()\n"
        "                    x[square] = fill\n"
        "                    drops.append(clean - model(x).softmax(dim=1).gather(1, classes)[:, 0])\n"
        "                    x[square] = saved\n",
        OCCLUSION,
    ),
    # an int target becomes a CPU tensor: only the hidden tests' (simulated) GPU sees it
    edit(
        "occlusion_targets_made_on_the_cpu",
        "occlusion_map",
        TARGETS,
        "        classes = torch.as_tensor(target).expand(n).view(-1, 1)\n",
        OCCLUSION,
    ),
    # right for the visible int target; a tensor target picks N probabilities per image
    Wrong(
        "occlusion_probabilities_indexed_with_the_target",
        "occlusion_map",
        """
def occlusion_map(model, x, target, patch=2, stride=1, fill=0.0):
    was_training = model.training
    model.eval()
    try:
        n, _, height, width = x.shape
        rows, cols = (height - patch) // stride + 1, (width - patch) // stride + 1
        with torch.no_grad():
            clean = model(x).softmax(dim=1)[:, target]
            result = torch.zeros(n, rows, cols, dtype=x.dtype, device=x.device)
            for u in range(rows):
                for v in range(cols):
                    occluded = x.clone()
                    occluded[:, :, u * stride:u * stride + patch, v * stride:v * stride + patch] = fill
                    result[:, u, v] = clean - model(occluded).softmax(dim=1)[:, target]
    finally:
        model.train(was_training)
    return result
""",
        OCCLUSION,
    ),
    # --- questions
    edit(
        "q1_without_the_clean_pass",
        "questions",
        "q1_answer = positions * positions + 1",
        "q1_answer = positions * positions",
        Q1,
    ),
    edit("q1_positions_as_size_over_stride", "questions", "positions = (32 - 4) // 2 + 1", "positions = 32 // 2", Q1),
    edit(
        "q2_not_clamped",
        "questions",
        "(g / (2 * 0.5)).clamp(0, 1).tolist()",
        "(g / (2 * 0.5)).tolist()",
        Q2,
    ),
    edit("q2_penalty_gradient_without_the_2", "questions", "(g / (2 * 0.5))", "(g / 0.5)", Q2),
    edit("q3_strokes_of_each_image", "questions", 'q3_answer = "c"', 'q3_answer = "a"', Q3),
    edit("q4_learned_nothing", "questions", 'q4_answer = "a"', 'q4_answer = "b"', Q4),
    edit("q3_clean_image_strokes_of_the_8", "questions", 'q3_answer = "c"', 'q3_answer = "d"', Q3),
    edit("q4_random_network_confirms", "questions", 'q4_answer = "a"', 'q4_answer = "c"', Q4),
    edit("q5_convolutions_only", "questions", "q5_answer = 18", "q5_answer = 7", Q5),
    edit("q5_pools_add_no_extent", "questions", "q5_answer = 18", "q5_answer = 1 + 2 + 2 * 2 + 2 * 4", Q5),
    edit("q5_strides_ignored", "questions", "q5_answer = 18", "q5_answer = 1 + 2 + 1 + 2 + 1 + 2", Q5),
    edit("q5_stopped_at_the_second_convolution", "questions", "q5_answer = 18", "q5_answer = 8", Q5),
    edit("q5_as_a_letter", "questions", "q5_answer = 18", 'q5_answer = "18"', Q5),
]

ALTERNATIVES = [
    # --- layer_activations
    # the hook stops the forward pass with a private exception once it has the output
    Wrong(
        "activations_forward_stopped_at_the_layer",
        "layer_activations",
        """
class _Captured(Exception):
    def __init__(self, output):
        super().__init__("layer output captured")
        self.output = output


def layer_activations(model, layer, x):
    def stop(module, inputs, output):
        raise _Captured(output.detach().clone())

    handle = layer.register_forward_hook(stop)
    try:
        with torch.no_grad():
            model(x)
    except _Captured as captured:
        return captured.output
    finally:
        handle.remove()
    raise RuntimeError("the layer did not run in the model's forward pass")
""",
        (),
    ),
    edit(
        "activations_under_inference_mode",
        "layer_activations",
        "        with torch.no_grad():\n",
        "        with torch.inference_mode():\n",
        (),
    ),
    # in the style of pytorch-grad-cam's ActivationsAndGradients, reduced to the forward hook
    Wrong(
        "activations_recorder_class",
        "layer_activations",
        """
class ActivationRecorder:
    def __init__(self, target_layer):
        self.activations = []
        self.handle = target_layer.register_forward_hook(self.save_activation)

    def save_activation(self, module, input, output):
        self.activations.append(output.clone().detach())

    def release(self):
        self.handle.remove()


def layer_activations(model, layer, x):
    recorder = ActivationRecorder(layer)
    try:
        model(x)
    finally:
        recorder.release()
    return recorder.activations[0]
""",
        (),
    ),
    # --- saliency_map
    # CS231n's compute_saliency_maps, inside the lab's contract (a copy of x, the mode restored, int targets)
    Wrong(
        "saliency_cs231n_style",
        "saliency_map",
        """
def saliency_map(model, x, target):
    was_training = model.training
    model.eval()
    try:
        X = x.clone().detach()
        X.requires_grad_()
        if isinstance(target, int):
            y = torch.full((X.shape[0],), target, dtype=torch.long, device=X.device)
        else:
            y = target
        scores = model(X)
        scores = scores.gather(1, y.view(-1, 1)).squeeze()
        scores.backward(torch.ones_like(scores))
        saliency, _ = torch.max(X.grad.data.abs(), dim=1)
    finally:
        model.train(was_training)
    return saliency
""",
        (),
    ),
    Wrong(
        "saliency_one_image_at_a_time",
        "saliency_map",
        """
def saliency_map(model, x, target):
    was_training = model.training
    model.eval()
    maps = []
    try:
        for n in range(x.shape[0]):
            image = x[n : n + 1].detach().clone().requires_grad_(True)
            label = target if isinstance(target, int) else int(target[n])
            (grad,) = torch.autograd.grad(model(image)[0, label], image)
            maps.append(grad[0].abs().max(dim=0).values)
    finally:
        model.train(was_training)
    return torch.stack(maps)
""",
        (),
    ),
    Wrong(
        "saliency_functional_vjp",
        "saliency_map",
        """
def saliency_map(model, x, target):
    was_training = model.training
    model.eval()
    try:
        n = x.shape[0]
        rows = torch.arange(n, device=x.device)
        classes = target if isinstance(target, torch.Tensor) else torch.full_like(rows, target)

        def selected(images):
            return model(images)[rows, classes]

        ones = torch.ones(n, dtype=x.dtype, device=x.device)
        _, grad = torch.autograd.functional.vjp(selected, x.detach().clone(), ones)
    finally:
        model.train(was_training)
    return grad.abs().amax(dim=1)
""",
        (),
    ),
    # --- activation_maximization
    # plain SGD on the negated objective, the penalty in the loss (no weight_decay argument)
    Wrong(
        "maximization_sgd_on_the_negated_objective",
        "activation_maximization",
        """
def activation_maximization(model, layer, channel, shape, steps=100, lr=0.1, weight_decay=1e-4, seed=0):
    p = next(model.parameters())
    image = torch.rand(shape, generator=torch.Generator().manual_seed(seed)).to(p.device, p.dtype)
    image.requires_grad_(True)
    optimizer = torch.optim.SGD([image], lr=lr)
    activations = {}
    handle = layer.register_forward_hook(lambda m, i, o: activations.__setitem__("a", o))
    was_training = model.training
    model.eval()
    try:
        for _ in range(steps):
            optimizer.zero_grad()
            model(image[None])
            loss = -(activations["a"][0, channel].mean() - weight_decay * image.pow(2).sum())
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                image.clamp_(0, 1)
    finally:
        handle.remove()
        model.train(was_training)
    return image.detach().clone()
""",
        (),
    ),
    # Lucent-like: a hook object that keeps the features, the loss minimised by hand
    Wrong(
        "maximization_lucent_like",
        "activation_maximization",
        """
class ModuleHook:
    def __init__(self, module):
        self.hook = module.register_forward_hook(self.hook_fn)
        self.features = None

    def hook_fn(self, module, input, output):
        self.features = output

    def close(self):
        self.hook.remove()


def activation_maximization(model, layer, channel, shape, steps=100, lr=0.1, weight_decay=1e-4, seed=0):
    param = next(model.parameters())
    image = torch.rand(shape, generator=torch.Generator().manual_seed(seed)).to(param.device, param.dtype)
    hook = ModuleHook(layer)
    was_training = model.training
    model.eval()
    try:
        for _ in range(steps):
            image = image.detach().requires_grad_(True)
            model(image.unsqueeze(0))
            loss = -hook.features[:, channel].mean() + weight_decay * (image**2).sum()
            loss.backward()
            with torch.no_grad():
                image = torch.clamp(image - lr * image.grad, 0.0, 1.0)
    finally:
        hook.close()
        model.train(was_training)
    return image.detach()
""",
        (),
    ),
    # --- class_visualization
    Wrong(
        "class_vis_sgd_maximize",
        "class_visualization",
        """
def class_visualization(model, target, shape, steps=100, lr=0.1, weight_decay=1e-4, seed=0):
    parameter = next(model.parameters())
    image = torch.rand(shape, generator=torch.Generator().manual_seed(seed)).to(parameter.device, parameter.dtype)
    image.requires_grad_(True)
    optimizer = torch.optim.SGD([image], lr=lr, maximize=True)
    was_training = model.training
    model.eval()
    try:
        for _ in range(steps):
            optimizer.zero_grad()
            objective = model(image.unsqueeze(0))[0, target] - weight_decay * (image**2).sum()
            objective.backward()
            optimizer.step()
            with torch.no_grad():
                image.clamp_(0, 1)
    finally:
        model.train(was_training)
    return image.detach()
""",
        (),
    ),
    # the start drawn in the model's dtype: the same seed still gives the same image
    edit(
        "maximization_start_drawn_in_the_models_dtype",
        "activation_maximization",
        "    start = torch.rand(shape, generator=torch.Generator().manual_seed(seed))\n"
        "    image = start.to(parameter.device, parameter.dtype)\n",
        "    image = torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=parameter.dtype)\n"
        "    image = image.to(parameter.device)\n",
        (),
    ),
    edit(
        "class_vis_start_drawn_in_the_models_dtype",
        "class_visualization",
        "torch.rand(shape, generator=torch.Generator().manual_seed(seed)).to(parameter.device, parameter.dtype)",
        "torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=parameter.dtype).to(parameter.device)",
        (),
    ),
    # --- nearest_neighbors
    Wrong(
        "neighbours_expansion_and_argsort",
        "nearest_neighbors",
        """
def nearest_neighbors(train_features, query_features, k):
    squared = (
        (query_features**2).sum(dim=1, keepdim=True)
        - 2 * query_features @ train_features.T
        + (train_features**2).sum(dim=1)
    )
    return squared.clamp_min(0).argsort(dim=1)[:, :k]
""",
        (),
    ),
    # ||q||^2 is the same for every training row of a query: it does not change the ranking
    Wrong(
        "neighbours_without_the_query_norm",
        "nearest_neighbors",
        """
def nearest_neighbors(train_features, query_features, k):
    ranking = (train_features**2).sum(dim=1) - 2 * query_features @ train_features.T
    return torch.topk(ranking, k, dim=1, largest=False).indices
""",
        (),
    ),
    Wrong(
        "neighbours_loop_over_queries",
        "nearest_neighbors",
        """
def nearest_neighbors(train_features, query_features, k):
    rows = []
    for query in query_features:
        distances = (train_features - query).norm(dim=1)
        rows.append(torch.topk(distances, k, largest=False).indices)
    return torch.stack(rows)
""",
        (),
    ),
    # --- occlusion_map
    # every occluded copy of every image in one forward pass
    Wrong(
        "occlusion_one_batched_forward",
        "occlusion_map",
        """
def occlusion_map(model, x, target, patch=2, stride=1, fill=0.0):
    was_training = model.training
    model.eval()
    try:
        n, c, h, w = x.shape
        tops = range(0, h - patch + 1, stride)
        lefts = range(0, w - patch + 1, stride)
        copies = [x.detach()]
        for top in tops:
            for left in lefts:
                copy = x.detach().clone()
                copy[..., top : top + patch, left : left + patch] = fill
                copies.append(copy)
        with torch.no_grad():
            probs = model(torch.cat(copies)).softmax(dim=1).view(len(copies), n, -1)
        if isinstance(target, int):
            target = torch.full((n,), target, dtype=torch.long, device=x.device)
        picked = probs[:, torch.arange(n, device=x.device), target]  # (1 + positions, n)
        drops = picked[0] - picked[1:]
    finally:
        model.train(was_training)
    return drops.T.reshape(n, len(tops), len(lefts))
""",
        (),
    ),
    # a float mask per position: x * (1 - mask) + fill * mask
    Wrong(
        "occlusion_float_masks",
        "occlusion_map",
        """
def occlusion_map(model, x, target, patch=2, stride=1, fill=0.0):
    was_training = model.training
    model.eval()
    n, _, height, width = x.shape
    rows = torch.arange(n, device=x.device)
    classes = target if isinstance(target, torch.Tensor) else torch.full_like(rows, target)
    out_h, out_w = (height - patch) // stride + 1, (width - patch) // stride + 1
    result = x.new_zeros(n, out_h, out_w)
    try:
        with torch.no_grad():
            base = F.softmax(model(x), dim=1)[rows, classes]
            for i in range(out_h):
                for j in range(out_w):
                    mask = torch.zeros(height, width, dtype=x.dtype, device=x.device)
                    mask[i * stride : i * stride + patch, j * stride : j * stride + patch] = 1
                    occluded = x * (1 - mask) + fill * mask
                    result[:, i, j] = base - F.softmax(model(occluded), dim=1)[rows, classes]
    finally:
        model.train(was_training)
    return result
""",
        (),
    ),
    edit(
        "occlusion_under_inference_mode",
        "occlusion_map",
        "        with torch.no_grad():\n",
        "        with torch.inference_mode():\n",
        (),
    ),
    # --- questions
    edit("q2_as_a_tensor", "questions", "(g / (2 * 0.5)).clamp(0, 1).tolist()", "(g / (2 * 0.5)).clamp(0, 1)", ()),
    Wrong(
        "questions_counted_and_typed",
        "questions",
        """
import numpy as np

# one pass on the clean image, then one per position of the patch: 15 x 15 of them
q1_answer = len(range(0, 32 - 4 + 1, 2)) ** 2 + 1
# each pixel on its own: g / (2 * lambda), clipped to [0, 1]
q2_answer = np.array([[0.6, 0.0], [1.0, 0.1]])
q3_answer = "C"
q4_answer = " a"
# receptive field r and jump j: a layer with kernel k and stride s gives r + (k - 1) * j and j * s
r, j = 1, 1
for k, s in [(3, 1), (2, 2), (3, 1), (2, 2), (3, 1)]:
    r, j = r + (k - 1) * j, j * s
q5_answer = float(r)
""",
        (),
    ),
]
