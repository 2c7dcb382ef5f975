"""An exponential moving average of the trained parameters: the weights that are sampled and saved.

``ParameterEMA(named, decay)`` keeps a float32 copy of each parameter in ``named`` (name -> parameter) and
after every optimiser step moves it towards the live value: ``ema <- decay * ema + (1 - decay) * p``
(``lerp_``). ``applied()`` swaps the averages into the parameters for sampling, evaluation or saving and
puts the live weights back afterwards. Jukebox swaps its EMA in the same way (spec 7).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import torch
from torch import Tensor, nn


class ParameterEMA:
    """The EMA of named parameters; ``decay`` in [0, 1) (the trainer does not make one for decay 0)."""

    def __init__(self, named: Mapping[str, nn.Parameter], decay: float) -> None:
        self.decay = decay
        self.params = dict(named)
        self.shadow = {k: p.detach().float().clone() for k, p in self.params.items()}

    @torch.no_grad()
    def update(self) -> None:
        for name, p in self.params.items():
            self.shadow[name].lerp_(p.detach().float(), 1.0 - self.decay)

    def state_dict(self) -> dict[str, Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        if set(state) != set(self.shadow):
            missing, extra = sorted(set(self.shadow) - set(state)), sorted(set(state) - set(self.shadow))
            raise KeyError(f"EMA state does not fit: missing {missing[:5]}, unexpected {extra[:5]}")
        for name, value in state.items():
            self.shadow[name] = value.detach().float().clone().to(self.shadow[name].device)

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """The averaged weights in the parameters for the body; the live ones are restored after."""
        live = {k: p.detach().clone() for k, p in self.params.items()}
        try:
            with torch.no_grad():
                for name, p in self.params.items():
                    p.copy_(self.shadow[name].to(p.dtype))
            yield
        finally:
            with torch.no_grad():
                for name, p in self.params.items():
                    p.copy_(live[name])
