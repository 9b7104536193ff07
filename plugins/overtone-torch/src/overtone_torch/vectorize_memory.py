"""How much memory one member of a vectorized pack needs, so that ``--pack-memory`` can size packs.

The estimate for one member, in bytes, is

    P s (3 + k) + A + X

with ``P s`` the bytes of its parameters (``P`` numbers of ``s`` bytes), 3 copies of them (the
stacked parameter, its gradient, and the member's own module that evaluation and probes copy its
slice into), ``k`` optimizer state tensors per parameter (:data:`STATE_COPIES`), ``A`` the bytes
autograd saves for the backward pass in one forward of a training batch through model and loss
(counted with :func:`torch.autograd.graph.saved_tensors_hooks`; parameters and views of them
are not counted), and ``X`` the batch itself. The model is built and run on the meta device
(shapes only, no memory, no arithmetic); a model whose kernels have no meta implementation is
run once for real on the CPU instead (one member, one batch).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

#: Optimizer state tensors per parameter: exp_avg and exp_avg_sq (Adam, AdamW), the momentum
#: buffer (SGD, Signum), exp_avg and the parameter average (FOCUS).
STATE_COPIES = {"adamw": 2, "adam": 2, "sgd": 1, "focus": 2, "signum": 1}


def member_bytes(config: Mapping[str, Any], registry: Any) -> int:
    """The estimated bytes one member of ``config``'s pack holds while it trains (module docstring)."""
    from overtone_torch.build import TrainNet, create_model_and_loss, create_task

    task = create_task(config, registry, config["run"]["seed"])
    batch = task.sample_batch("train", config["train"]["batch_size"], torch.Generator().manual_seed(0))
    with torch.random.fork_rng(devices=[]):  # building a model draws from the global generator
        try:
            with torch.device("meta"):
                net = TrainNet(*create_model_and_loss(config, registry, task))
            saved = saved_bytes(net, *batch)
        except (NotImplementedError, RuntimeError):
            net = TrainNet(*create_model_and_loss(config, registry, task))
            saved = saved_bytes(net, *batch)
    parameters = sum(p.numel() * p.element_size() for p in net.parameters())
    copies = 3 + STATE_COPIES.get(config["optimizer"]["name"], 2)
    return parameters * copies + saved + sum(t.numel() * t.element_size() for t in batch)


def saved_bytes(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """Bytes of the tensors autograd saves in ``net(x, y)`` (moved to ``net``'s device) for the
    backward pass, and of the loss; parameters and views of them are not counted (they exist
    anyway), and a tensor saved by two operations (or with a view of it) counts once."""
    device = next(net.parameters()).device
    own = {id(p) for p in net.parameters()}
    seen: dict[int, torch.Tensor] = {}  # held, so that no id is reused while counting

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        base = tensor if tensor._base is None else tensor._base
        if id(base) not in own:
            seen.setdefault(id(base), base)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = net(x.to(device), y.to(device))
    return sum(t.numel() * t.element_size() for t in seen.values()) + loss.numel() * loss.element_size()
