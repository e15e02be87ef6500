"""Surviving mutants of lab02_init's reference answers that are equivalent to it, and why."""

SAME_DEVICE = (
    "the contract gives one call's gradients one device (and one dtype), so every per-parameter norm already "
    "lives on the first gradient's device and the .to(...) moves nothing"
)

EQUIVALENT = {
    "clip_grad_norm:9:13 `p.grad.detach()` -> `p.grad`": (
        "gradients from an ordinary backward pass carry no autograd history, so detach() changes nothing; the "
        "contract does not promise gradients from backward(create_graph=True)"
    ),
    "clip_grad_norm:14:34 `g.abs().max().to(grads[0].device)` -> `g.abs().max()`": SAME_DEVICE,
    "clip_grad_norm:16:29 `torch.linalg.vector_norm(g, norm_type).to(grads[0].device)` -> "
    "`torch.linalg.vector_norm(g, norm_type)`": SAME_DEVICE,
    "clip_grad_norm:14:57 `0` -> `-1`": (
        "grads[-1].device instead of grads[0].device: all gradients of one call share a device, so the last "
        "one's is the first one's (and with one gradient they are the same tensor)"
    ),
    "clip_grad_norm:16:77 `0` -> `-1`": (
        "grads[-1].device instead of grads[0].device: all gradients of one call share a device, so the last "
        "one's is the first one's (and with one gradient they are the same tensor)"
    ),
    "clip_grad_norm:20:15 `scale.to(g.device, g.dtype)` -> `scale`": (
        "scale is a 0-dim tensor computed from the gradients, so it already has their device and dtype (one of "
        "each per call, as the contract says); g.mul_(scale) then equals g.mul_(scale.to(g.device, g.dtype))"
    ),
    "activation_variances:6:4 `with torch.no_grad(): for layer in model: x = layer(x) if...` -> "
    "`for layer in model: x = layer(x) if isinstance(layer, nn....`": (
        "without no_grad the forward pass records a graph, but .item() turns every variance into a float, "
        "nothing calls backward, so no parameter gets a .grad and the graph is freed when the function returns: "
        "the floats, the model and x are the same"
    ),
}
