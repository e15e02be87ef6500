"""Surviving mutants of lab05_visualization's reference answers that are equivalent to it, and why."""

BATCH_OF_ONE = "the ascent's batch holds one image, so index -1 of the batch dimension is index 0"
GATHER_COLUMN = "gather(1, classes) returns an (N, 1) tensor, so column -1 is column 0"
# Q1 = ((32 - 4) // 2 + 1) ** 2 + 1 = 226; the floor division absorbs a change of one in the image or patch size.
Q1_STILL_226 = "q1_answer, the only graded output these edits touch, is still 226: "
# Q2 = clip(g / (2 * 0.5), 0, 1) with g = (0.6, -0.3, 2.0, 0.1): the clamp absorbs changes of the clamped entries.
Q2_STILL = "q2_answer, the only graded output these edits touch, is still [0.6, 0.0, 1.0, 0.1]: "

EQUIVALENT = {
    "layer_activations:10:24 `output.detach()` -> `output`": (
        "the forward pass runs under torch.no_grad(), so the hooked output has no graph and its clone is already "
        "detached"
    ),
    "layer_activations:14:8 `with torch.no_grad(): model(x)` -> `model(x)`": (
        "the hook stores output.detach().clone(), so the result carries no graph whether or not the forward pass "
        "records one, and the values are the same"
    ),
    "layer_activations:18:20 `0` -> `-1`": (
        "the hook runs once per forward pass (the contract's layer is called once), so the list holds one output"
    ),
    "saliency_map:8:16 `x.detach().clone()` -> `x.detach()`": (
        "requires_grad_ on the detached alias sets the flag of the alias only, never of the caller's x, and "
        "autograd.grad fills no .grad, so x is untouched and the gradient is the same"
    ),
    "saliency_map:8:16 `x.detach()` -> `x`": (
        "x.clone() is a new tensor (a non-leaf when x requires grad): the gradient is taken with respect to the "
        "clone by autograd.grad, which fills no .grad of x, so x and the result are as in the reference"
    ),
    "activation_maximization:26:43 `0` -> `-1`": BATCH_OF_ONE,
    "activation_maximization:28:21 `image.detach()` -> `image`": (
        "the update then keeps the previous steps' graph, but the gradient with respect to the current image and "
        "every value are the same; the result is detached on return"
    ),
    "activation_maximization:32:11 `image.detach()` -> `image`": (
        "after the loop the image is (image.detach() + lr * gradient).clamp(0, 1), computed outside any graph "
        "(the gradient from autograd.grad carries none), so it already does not require grad; with steps=0 it is "
        "the start, which never required grad"
    ),
    "class_visualization:20:50 `0` -> `-1`": BATCH_OF_ONE,
    "class_visualization:22:21 `image.detach()` -> `image`": (
        "the update keeps the previous steps' graph, but the gradient with respect to the current image and every "
        "value are the same; the result is detached on return"
    ),
    "class_visualization:25:11 `image.detach()` -> `image`": (
        "after the loop the image is computed outside any graph, so it already does not require grad (see "
        "activation_maximization)"
    ),
    "nearest_neighbors:8:11 `distances.topk(k, dim=1, largest=False)` -> `distances.topk(k, largest=False)`": (
        "topk's default dim is the last, which is dim 1 of the (Q, N) distance matrix"
    ),
    "occlusion_map:18:8 `with torch.no_grad(): clean = model(x).softmax(dim=1).gat...` -> "
    "`clean = model(x).softmax(dim=1).gather(1, classes)[:, 0];...`": (
        "without no_grad the map carries a graph to the parameters, but the contract promises only its values, "
        "shape, dtype and device, which are the same, and nothing is written to any .grad"
    ),
    "occlusion_map:19:66 `0` -> `-1`": GATHER_COLUMN,
    "occlusion_map:23:31 `x.detach()` -> `x`": (
        "x.clone() is a new tensor with x's values; writing the patch into it (under no_grad) leaves x untouched"
    ),
    "occlusion_map:25:94 `0` -> `-1`": GATHER_COLUMN,
    "questions:3:12 `(32 - 4) // 2` -> `(32 - 4) / 2`": Q1_STILL_226 + "28 / 2 = 14.0 exactly, and 226.0 is the number",
    "questions:3:13 `32` -> `33`": Q1_STILL_226 + "(33 - 4) // 2 = 14",
    "questions:3:18 `4` -> `3`": Q1_STILL_226 + "(32 - 3) // 2 = 14",
    "questions:5:24 `0.3` -> `0.6`": Q2_STILL + "-0.6 / 1 clamps to 0 as -0.3 does",
    "questions:5:24 `0.3` -> `0.15`": Q2_STILL + "-0.15 / 1 clamps to 0 as -0.3 does",
    "questions:5:29 `2.0` -> `4.0`": Q2_STILL + "4.0 / 1 clamps to 1 as 2.0 does",
    "questions:5:29 `2.0` -> `1.0`": Q2_STILL + "1.0 / 1 is 1 as the clamped 2.0 is",
    "questions:6:12 `(g / (2 * 0.5)).clamp(0, 1).tolist()` -> `(g / (2 * 0.5)).clamp(0, 1)`": (
        Q2_STILL + "a tensor of the four values is an accepted form of the answer"
    ),
    "questions:6:13 `g / (2 * 0.5)` -> `g * (2 * 0.5)`": Q2_STILL + "dividing and multiplying by 2 * 0.5 = 1 agree",
}
