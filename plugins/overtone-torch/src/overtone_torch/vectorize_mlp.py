"""A pack of MLPs with a cross-entropy head, stepped by batched matrix products written out by hand.

For a pack whose members are :class:`~overtone_torch.models.mlp.MLP` s (no normalisation,
ReLU or tanh, no tied head) under :class:`~overtone_torch.losses.cross_entropy.CrossEntropyLoss`
(no ``chunk_size``), :class:`BatchedMLPStep` computes every member's training loss and its
gradients without autograd or ``vmap``, with ``torch.baddbmm`` / ``torch.bmm`` over the member
dim into buffers it allocates once and reuses at every step. For member ``m`` (batch ``B``,
kept targets ``K``, classes ``V``, smoothing ``s``):

- forward: ``A_0 = [E[x_1], ..., E[x_T]]`` (token inputs; vectors enter as they are);
  ``A_{l+1} = act(A_l W_l^T + b_l)`` for the hidden layers, without ``act`` for a final linear map;
  scores ``S = A_L W^T + b``;
- loss (as ``torch.nn.functional.cross_entropy`` with ``label_smoothing = s``): with
  ``lse = log sum_j exp S_j``, ``(1/K) sum_kept [(1 - s)(lse - S_y) + s (lse - mean_j S_j)]``;
- backward: ``dS = (softmax(S) - (1 - s) e_y - s / V) / K`` on kept rows (0 elsewhere);
  ``dW = dS^T A_L``, ``db = sum_rows dS``, ``dA_L = dS W``; through each layer
  ``dZ = dA * act'`` (ReLU: ``A > 0``; tanh: ``1 - A^2``), ``dW_l = dZ^T A_l``,
  ``db_l = sum_rows dZ``, ``dA_l = dZ W_l``; the embedding's gradient sums ``dA_0``'s rows
  into the rows of the tokens they came from (``index_add_``).

The members are stepped a few at a time (:data:`CHUNK_BYTES` of activations per chunk), so that
a chunk's forward and backward run on activations still in the CPU's cache. The arithmetic is
that of the member's solo step (autograd of ``TrainNet``) up to the order of floating-point
sums. Anything else (other models, losses, batch norm, GELU, tied heads) takes the ``vmap`` path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

#: Bytes of activations one chunk of members holds in a step (its forward and backward run
#: while they are in the cache; 1 MB of L2 and 32 MB of shared L3 per core on the benchmark's CPU).
CHUNK_BYTES = 8 << 20
IGNORE = -100


@dataclass(frozen=True)
class Layer:
    """One linear map of the trunk: its stacked parameters' names and the activation after it."""

    weight: str
    bias: str | None
    activation: str | None  # "relu", "tanh" or None (the final linear map)


def batched_mlp_step(nets: Sequence[torch.nn.Module], params: Mapping[str, torch.Tensor]) -> BatchedMLPStep | None:
    """The hand-written step of a pack of ``nets`` (TrainNets of one architecture, stacked as
    ``params``), or None when the pack is not an MLP and cross-entropy pack it can step."""
    from overtone_torch.losses.cross_entropy import CrossEntropyLoss
    from overtone_torch.models.mlp import MLP

    net = nets[0]
    model, loss = net.model, net.loss
    if type(model) is not MLP or type(loss) is not CrossEntropyLoss or loss.chunk_size:
        return None
    if model.tie_weights or any(p.dtype not in (torch.float32, torch.float64) for p in params.values()):
        return None
    layers: list[Layer] = []
    for i, module in enumerate(model.layers):
        if isinstance(module, torch.nn.Linear) and module.bias is not None:
            layers.append(Layer(f"model.layers.{i}.weight", f"model.layers.{i}.bias", None))
        elif type(module) in (torch.nn.ReLU, torch.nn.Tanh) and layers and layers[-1].activation is None:
            layers[-1] = Layer(layers[-1].weight, layers[-1].bias, "relu" if type(module) is torch.nn.ReLU else "tanh")
        else:
            return None
    embedding = "model.token_embedding.weight" if model.token_embedding is not None else None
    head_bias = "loss.bias" if loss.bias is not None else None
    names = {embedding, "loss.weight", head_bias} | {n for layer in layers for n in (layer.weight, layer.bias)}
    if names - {None} != set(params):
        return None
    return BatchedMLPStep(embedding, layers, "loss.weight", head_bias)


class BatchedMLPStep:
    """``step(params, x, y, smoothing)``: every member's loss ``(M,)`` and its gradients in
    ``p.grad`` of each stacked parameter (module docstring). ``x``: ``(M, B, T)`` token ids or
    ``(M, B, dim)`` vectors; ``y``: ``(M, B)`` class ids (``-100``: ignored); ``smoothing``: ``(M,)``."""

    def __init__(self, embedding: str | None, layers: Sequence[Layer], head: str, head_bias: str | None) -> None:
        self.embedding, self.layers, self.head, self.head_bias = embedding, list(layers), head, head_bias
        self.key: tuple[Any, ...] | None = None
        self.buffers: dict[str, Any] = {}
        self.grads: dict[str, torch.Tensor] = {}

    def _prepare(self, params: Mapping[str, torch.Tensor], x: torch.Tensor) -> int:
        """Allocate the gradients and one chunk's activations (once per batch shape); return the chunk size."""
        members, batch = x.shape[:2]
        like = params[self.head]
        key = (tuple(x.shape), like.dtype, like.device)
        if key != self.key:
            widths = [params[layer.weight].shape[1] for layer in self.layers]
            d_in = params[self.layers[0].weight].shape[2]
            n_classes = params[self.head].shape[1]
            per_member = batch * (2 * d_in + 2 * sum(widths) + n_classes) * like.element_size()
            chunk = max(1, min(members, CHUNK_BYTES // max(per_member, 1)))
            empty = {"dtype": like.dtype, "device": like.device}
            self.buffers = {
                "inputs": torch.empty(chunk, batch, d_in, **empty),
                "outputs": [torch.empty(chunk, batch, w, **empty) for w in widths],
                "scores": torch.empty(chunk, batch, n_classes, **empty),
                "grad_inputs": [torch.empty(chunk, batch, d_in, **empty)]
                + [torch.empty(chunk, batch, w, **empty) for w in widths[:-1]],
                "grad_last": torch.empty(chunk, batch, widths[-1], **empty),
                "chunk": chunk,
            }
            self.grads = {name: torch.empty_like(p) for name, p in params.items()}
            self.key = key
        return self.buffers["chunk"]

    @torch.no_grad()
    def __call__(self, params: Mapping[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                 smoothing: torch.Tensor) -> torch.Tensor:
        chunk = self._prepare(params, x)
        members = x.shape[0]
        losses = torch.empty(members, dtype=params[self.head].dtype, device=x.device)
        for start in range(0, members, chunk):
            part = slice(start, min(start + chunk, members))
            losses[part] = self._chunk(params, x[part], y[part], smoothing[part], part)
        for name, p in params.items():
            p.grad = self.grads[name]
        return losses

    @torch.no_grad()
    def evaluate(self, params: Mapping[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, smoothing: torch.Tensor,
                 rows: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every member's summed loss (float64), correct predictions (``argmax S == y``) and kept
        targets over its examples ``x[m]`` ``(M, N, ...)``, ``y[m]`` ``(M, N)``: the forward
        and loss above, ``rows`` examples of a few members at a time; each ``(M,)``."""
        members, n = y.shape
        chunk = max(1, min(members, CHUNK_BYTES // max(self._row_bytes(params) * rows, 1)))
        total = torch.zeros(members, dtype=torch.float64, device=y.device)
        correct = torch.zeros(members, dtype=torch.int64, device=y.device)
        for start in range(0, members, chunk):
            part = slice(start, min(start + chunk, members))
            p = {name: t.detach()[part] for name, t in params.items()}
            for first in range(0, n, rows):
                block = slice(first, first + rows)
                scores = self._scores(p, x[part, block])
                keep = y[part, block] != IGNORE
                target = torch.where(keep, y[part, block], 0).unsqueeze(-1)
                s = smoothing[part].to(scores.dtype).unsqueeze(1)
                correct[part] += ((scores.argmax(-1) == target.squeeze(-1)) & keep).sum(1)
                scores.sub_(scores.amax(-1, keepdim=True))  # as in the step: one exp pass
                picked, mean = scores.gather(-1, target).squeeze(-1), scores.mean(-1)
                log_total = scores.exp_().sum(-1).log_()
                per_target = (1 - s) * (log_total - picked) + s * (log_total - mean)
                total[part] += (per_target.double() * keep).sum(1)
        return total, correct, (y != IGNORE).sum(1)

    def _row_bytes(self, params: Mapping[str, torch.Tensor]) -> int:
        """Bytes of one example's activations in :meth:`evaluate`."""
        widths = [params[layer.weight].shape[1] for layer in self.layers]
        return (params[self.layers[0].weight].shape[2] + sum(widths) + params[self.head].shape[1]) \
            * params[self.head].element_size()

    def _scores(self, p: Mapping[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Scores ``(m, rows, classes)`` of the members' parameters ``p`` on their inputs ``x``."""
        m = x.shape[0]
        if self.embedding is not None:
            table = p[self.embedding]
            vocab, dim = table.shape[1:]
            rows = (x + torch.arange(m, device=x.device).view(m, 1, 1) * vocab).reshape(-1)
            a = table.reshape(m * vocab, dim).index_select(0, rows).view(m, x.shape[1], -1)
        else:
            a = x.to(p[self.head].dtype)
        for layer in self.layers:
            a = torch.baddbmm(p[layer.bias].unsqueeze(1), a, p[layer.weight].transpose(1, 2))
            if layer.activation == "relu":
                a.clamp_min_(0)
            elif layer.activation == "tanh":
                a.tanh_()
        if self.head_bias is not None:
            return torch.baddbmm(p[self.head_bias].unsqueeze(1), a, p[self.head].transpose(1, 2))
        return torch.bmm(a, p[self.head].transpose(1, 2))

    def _chunk(self, params: Mapping[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
               smoothing: torch.Tensor, part: slice) -> torch.Tensor:
        """Loss ``(m,)`` of the members in ``part``; their gradients into :attr:`grads`."""
        m = x.shape[0]
        buf = self.buffers
        p = {name: t.detach()[part] for name, t in params.items()}
        g = {name: t[part] for name, t in self.grads.items()}
        # -- forward
        if self.embedding is not None:
            table = p[self.embedding]  # (m, vocab, dim)
            vocab, dim = table.shape[1:]
            rows = (x + torch.arange(m, device=x.device).view(m, 1, 1) * vocab).reshape(-1)
            inputs = buf["inputs"][:m]
            torch.index_select(table.reshape(m * vocab, dim), 0, rows, out=inputs.view(-1, dim))
        else:
            inputs = x.to(p[self.head].dtype)
        acts = [inputs]
        for layer, out in zip(self.layers, buf["outputs"]):
            z = out[:m]
            torch.baddbmm(p[layer.bias].unsqueeze(1), acts[-1], p[layer.weight].transpose(1, 2), out=z)
            if layer.activation == "relu":
                z.clamp_min_(0)
            elif layer.activation == "tanh":
                z.tanh_()
            acts.append(z)
        scores = buf["scores"][:m]
        if self.head_bias is not None:
            torch.baddbmm(p[self.head_bias].unsqueeze(1), acts[-1], p[self.head].transpose(1, 2), out=scores)
        else:
            torch.bmm(acts[-1], p[self.head].transpose(1, 2), out=scores)
        # -- loss
        keep = y != IGNORE
        target = torch.where(keep, y, 0).unsqueeze(-1)
        count = keep.sum(1).clamp_min(1).to(scores.dtype)  # (m,)
        s = smoothing.to(scores.dtype).view(m, 1)
        scores.sub_(scores.amax(-1, keepdim=True))  # shifted by each row's largest score, as log_softmax
        picked, mean = scores.gather(-1, target).squeeze(-1), scores.mean(-1)
        total = scores.exp_().sum(-1)  # scores now hold exp(S - max)
        log_total = total.log()  # lse - max
        per_target = (1 - s) * (log_total - picked) + s * (log_total - mean)
        loss = (per_target * keep).sum(1) / count
        # -- backward: scores become dS
        n_classes = scores.shape[-1]
        scores.div_(total.unsqueeze(-1))  # softmax(S)
        scores.scatter_add_(-1, target, (s - 1).unsqueeze(-1).expand(m, target.shape[1], 1).contiguous())
        scores.sub_((s / n_classes).unsqueeze(-1))
        scores.mul_((keep / count.unsqueeze(1)).unsqueeze(-1))
        torch.bmm(scores.transpose(1, 2), acts[-1], out=g[self.head])
        if self.head_bias is not None:
            torch.sum(scores, 1, out=g[self.head_bias])
        grad = buf["grad_last"][:m]
        torch.bmm(scores, p[self.head], out=grad)
        for i in range(len(self.layers) - 1, -1, -1):
            layer, out = self.layers[i], acts[i + 1]
            if layer.activation == "relu":  # as autograd's ReLU: no gradient where the output is 0
                torch.ops.aten.threshold_backward.grad_input(grad, out, 0, grad_input=grad)
            elif layer.activation == "tanh":
                grad.mul_(1 - out * out)
            torch.bmm(grad.transpose(1, 2), acts[i], out=g[layer.weight])
            torch.sum(grad, 1, out=g[layer.bias])
            if i == 0 and self.embedding is None:
                break
            below = buf["grad_inputs"][i][:m]
            torch.bmm(grad, p[layer.weight], out=below)
            grad = below
        if self.embedding is not None:
            table = g[self.embedding]
            table.zero_()
            table.view(m * vocab, dim).index_add_(0, rows, grad.reshape(-1, dim))
        return loss
