"""How much memory one member of a vectorized pack needs, so that ``--pack-memory`` can size packs.

The estimate for one member, in bytes, is

    b = P s (2 + k) + S + 2 X + 2 D + h S

- ``P s``: the bytes of its parameters (``P`` numbers of ``s`` bytes), held twice outside the
  training step (the stacked parameter and the member's own module that evaluation, probes and
  checkpoints copy its slice into), and ``k`` optimizer state tensors per parameter
  (:data:`STATE_COPIES`);
- ``S``: the peak of the live tensor bytes one member adds to the pack's training step (the
  stacked forward through ``vmap``, the backward with the activations' gradients, and the
  parameters' gradients): the step of a pack of 1 and of 2 members is traced on the meta device
  (shapes only, no memory, no arithmetic; on the CPU for real when a kernel has no meta
  implementation) and every tensor an operation returns is counted from its creation until it
  is freed (:class:`LiveBytes`), storage by storage; ``S`` is the difference of the two peaks;
- ``X``: the training batch, held twice (the member's sampled batch and its slice of the stacked one);
- ``D``: the task's tensors (its data splits), held twice (the task the sweep's validation built,
  which the member's engine keeps, and the pack's own);
- ``h S``: allocator slack, :data:`SLACK` of the step's peak: memory the C allocator keeps after
  the step's activations are freed (glibc returns a freed block to the system only from the top
  of its heap), measured as part of the resident memory.

``h`` was chosen against the resident memory per member (the slope of ``ru_maxrss`` from 1 to 9
members) of six packs: MLPs at batch 384, 512 and 3764, a wider MLP, and one-layer transformers
with ``d_model`` 32 and 128; with ``h = 0.25`` the estimate is 0.72-1.09x of the measured slope
(docs/torch-engine.md gives the table). The slack grows with the size of the stacked
activations (0.1-1.0 S over these packs): a single ``h`` is a compromise.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Mapping
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

#: Optimizer state tensors per parameter: exp_avg and exp_avg_sq (Adam, AdamW), the momentum
#: buffer (SGD, Signum), exp_avg and the parameter average (FOCUS).
STATE_COPIES = {"adamw": 2, "adam": 2, "sgd": 1, "focus": 2, "signum": 1}
#: Allocator slack as a share of the training step's peak (module docstring).
SLACK = 0.25


def member_bytes(config: Mapping[str, Any], registry: Any) -> int:
    """The estimated bytes one member of ``config``'s pack holds while it trains (module docstring)."""
    from overtone_torch.build import create_task

    task = create_task(config, registry, config["run"]["seed"])
    batch = task.sample_batch("train", config["train"]["batch_size"], torch.Generator().manual_seed(0))
    with torch.random.fork_rng(devices=[]):  # building a model draws from the global generator
        try:
            parameters, step = _member_step(config, registry, task, batch, "meta")
        except (NotImplementedError, RuntimeError):
            parameters, step = _member_step(config, registry, task, batch, "cpu")
    copies = 2 + STATE_COPIES.get(config["optimizer"]["name"], 2)
    data = 2 * (tensor_bytes(batch) + tensor_bytes(task))
    return int(parameters * copies + step * (1 + SLACK) + data)


def _member_step(config: Mapping[str, Any], registry: Any, task: Any, batch: tuple[torch.Tensor, torch.Tensor],
                 device: str) -> tuple[int, int]:
    """One member's parameter bytes and the peak live bytes it adds to the pack's training step
    (that of 2 members less that of 1), built and run on ``device``."""
    from overtone_torch.build import TrainNet, create_model_and_loss
    from overtone_torch.vectorize import stacked_loss

    peaks = []
    for members in (1, 2):
        with torch.device(device):
            nets = [TrainNet(*create_model_and_loss(config, registry, task)) for _ in range(members)]
        template = copy.deepcopy(nets[0]).to("meta")
        params, buffers, values, loss = stacked_loss(nets, template)
        x = torch.stack([batch[0]] * members).to(device)
        y = torch.stack([batch[1]] * members).to(device)
        with LiveBytes() as live:
            loss(params, buffers, x, y, values).sum().backward()
        peaks.append(live.peak)
    parameters = sum(p.numel() * p.element_size() for p in nets[0].parameters())
    return parameters, peaks[1] - peaks[0]


class LiveBytes(TorchDispatchMode):
    """Within the ``with`` block, the bytes of the tensors operations return that are alive at
    once: each storage counts from the operation that returns it until its last tensor is
    freed. ``peak`` is the most at any time (on any device, the meta device included)."""

    def __init__(self) -> None:
        super().__init__()
        self.tensors: dict[int, int] = {}  # storage -> how many live tensors use it
        self.sizes: dict[int, int] = {}
        self.now = 0
        self.peak = 0

    def _free(self, key: int) -> None:
        self.tensors[key] -= 1
        if not self.tensors[key]:
            del self.tensors[key]
            self.now -= self.sizes.pop(key)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = tensor.untyped_storage()
            key = storage._cdata
            if key not in self.tensors:
                self.tensors[key] = 0
                self.sizes[key] = storage.nbytes()
                self.now += self.sizes[key]
                self.peak = max(self.peak, self.now)
            self.tensors[key] += 1
            weakref.finalize(tensor, self._free, key)
        return out


def tensor_bytes(obj: Any) -> int:
    """Bytes of the distinct tensor storages in ``obj``: a tensor, or the tensors among its
    items (tuples, lists, dicts) or attributes, two levels deep (a task's data splits)."""
    seen: dict[int, int] = {}

    def visit(value: Any, depth: int) -> None:
        if isinstance(value, torch.Tensor):
            storage = value.untyped_storage()
            seen[storage._cdata] = storage.nbytes()
        elif depth < 2 and isinstance(value, (list, tuple)):
            for item in value:
                visit(item, depth + 1)
        elif depth < 2 and isinstance(value, Mapping):
            for item in value.values():
                visit(item, depth + 1)
        elif depth < 1 and hasattr(value, "__dict__"):
            for item in vars(value).values():
                visit(item, depth + 1)

    visit(obj, 0)
    return sum(seen.values())
