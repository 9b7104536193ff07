"""An encoder-decoder MLP with two bottleneck layers (the setting of arXiv 2501.09659)."""

from __future__ import annotations

from typing import Any

import torch
from overtone import ConfigError
from torch import nn

from overtone_torch.models.mlp import ACTIVATIONS, check_activation_and_scale
from overtone_torch.models.spec import check_input_spec


class BottleneckAutoencoder(nn.Module):
    """``x -> encoder -> bottleneck1 -> bottleneck2 -> decoder -> features`` (vector inputs).

    Bu, Kol and Liu (arXiv 2501.09659) follow the weight matrices of the bottleneck layers of
    "a simple 2-bottleneck-layered auto-encoder"; the layer widths and nonlinearity are not
    in the text at hand, so this shape is overtone's choice::

        h0 = act(encoder(x))        (width units)
        b1 = act(bottleneck1(h0))   (bottleneck units: the first bottleneck layer)
        b2 = act(bottleneck2(b1))   (bottleneck units: the second bottleneck layer)
        f  = act(decoder(b2))       (width units: the features)

    The loss owns the output layer (``mse`` maps the features back to the ``dim`` inputs for a
    reconstruction task), so the weights to follow are ``model.bottleneck1.weight``
    (``bottleneck x width``, into the first bottleneck) and ``model.bottleneck2.weight``
    (``bottleneck x bottleneck``, between the two). With ``d_out`` other than ``width`` a
    linear map to ``d_out`` follows. Weights start as ``N(0, init_scale^2 / fan_in)``, biases
    at zero, as in :class:`~overtone_torch.models.mlp.MLP`.
    """

    def __init__(self, *, input_spec: dict[str, Any], d_out: int | None = None, width: int = 64,
                 bottleneck: int = 8, activation: str = "tanh", init_scale: float = 1.0) -> None:
        super().__init__()
        d_out = width if d_out is None else d_out
        check_input_spec("bottleneck-autoencoder", input_spec, ("vector",), ("pooled",), "mlp")
        if width < 1 or bottleneck < 1 or d_out < 1:
            raise ConfigError(f"[model] bottleneck-autoencoder needs width, bottleneck, d_out >= 1 "
                              f"(got width={width}, bottleneck={bottleneck}, d_out={d_out})")
        if bottleneck > width:
            raise ConfigError(f"[model] bottleneck = {bottleneck} is wider than width = {width}; a bottleneck "
                              f"is the narrowest layer (set bottleneck <= width)")
        check_activation_and_scale(activation, init_scale)
        self.encoder = nn.Linear(input_spec["dim"], width)
        self.bottleneck1 = nn.Linear(width, bottleneck)
        self.bottleneck2 = nn.Linear(bottleneck, bottleneck)
        self.decoder = nn.Linear(bottleneck, width)
        self.act = ACTIVATIONS[activation]()
        self.project = nn.Linear(width, d_out) if d_out != width else None
        self.d_out = self.d_features = d_out
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    module.weight.normal_(0.0, init_scale / module.in_features**0.5)
                    module.bias.zero_()

    def codes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The activations of the two bottleneck layers, each ``(B, bottleneck)``."""
        b1 = self.act(self.bottleneck1(self.act(self.encoder(x))))
        return b1, self.act(self.bottleneck2(b1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(B, d_out)`` of vectors ``(B, dim)``."""
        features = self.act(self.decoder(self.codes(x)[1]))
        return features if self.project is None else self.project(features)
