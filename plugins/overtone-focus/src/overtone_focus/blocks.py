"""Grouping of optimizer tensors for the multi-tensor paths: by step/device/dtype, then by cache block.

An element-wise optimizer step is a chain of passes over memory. Run on whole 124M-parameter
lists, every pass streams gigabytes through RAM and every temporary is a fresh allocation of
hundreds of megabytes (page faults included). Cut into blocks that fit the CPU cache, the same
chain of ``torch._foreach_*`` calls touches RAM about once per tensor per step. The cut never
changes a result: each element goes through the same operations in the same order, and block
edges fall on multiples of :data:`CPU_BLOCK` elements.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

#: Elements per block on CPU (1 MiB of float32 per tensor; six such tensors fit in a 16 MiB L3).
CPU_BLOCK = 1 << 18


def block_size_for(device: torch.device) -> int | None:
    """The block length for tensors on ``device``: :data:`CPU_BLOCK` on CPU, None (no cut) elsewhere.

    On CUDA the foreach kernels already stream each tensor once per call and launch overhead,
    not cache size, is what a cut would change, so lists are left whole.
    """
    return CPU_BLOCK if device.type == "cpu" else None


def blocks(lists: Sequence[list[torch.Tensor]], size: int | None) -> Iterator[list[list[torch.Tensor]]]:
    """Yield the parallel tensor ``lists`` as blocks of flat views of about ``size`` elements.

    ``lists[k][i]`` must have the same shape for every ``k``. Each yielded block holds one list
    per input list; tensors smaller than ``size`` are packed together, larger ones are split into
    ``size``-element pieces (the last piece shorter). Tensors that are not all contiguous are
    passed whole. ``size=None`` yields the lists unchanged as one block.
    """
    if size is None:
        yield [list(tensors) for tensors in lists]
        return
    current: list[list[torch.Tensor]] = [[] for _ in lists]
    filled = 0
    for tensors in zip(*lists):
        if all(t.is_contiguous() for t in tensors):
            pieces = [t.view(-1).split(size) for t in tensors]
        else:
            pieces = [(t,) for t in tensors]
        for parts in zip(*pieces):
            for out, part in zip(current, parts):
                out.append(part)
            filled += parts[0].numel()
            if filled >= size:
                yield current
                current, filled = [[] for _ in lists], 0
    if current[0]:
        yield current


def bucket_key(p: torch.Tensor, step: int) -> tuple[int, torch.device, torch.dtype]:
    """Tensors are updated together only with the same step count, device and dtype."""
    return step, p.device, p.dtype
