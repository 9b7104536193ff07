"""Without a CUDA device, Triton's kernels run in its CPU interpreter; Triton reads
``TRITON_INTERPRET`` when it is first imported, so it is set here, before any test module."""

import importlib.util
import os

if importlib.util.find_spec("triton") is not None:
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")
