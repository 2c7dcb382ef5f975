"""Low-rank adapters (LoRA) on a prior's attention projections, trained while the prior's own weights stay frozen.

``attach_lora(prior, LoraConfig(level=2, rank=8))`` swaps the chosen ``Conv1D`` projections of the music
transformer's attention layers (``c_attn``: q|k|v, or the queries of a cross-attention layer; ``c_proj``: the
output) for ``LoraConv1D``, which computes ``x @ w + b + (alpha / rank) * (x @ A.T) @ B.T``. ``B`` (``up``) starts
at zero, so attaching adapters leaves every output of the prior bit-identical, on the full pass, the cached
steps and the compiled step (which traces through the wrapper; make the ``FastStep`` after attaching).

The adapters' weights belong to the returned ``LoraSet``, not to the prior: ``prior.state_dict()`` and
``prior.parameters()`` are exactly the base weights, so the prior loads and saves as before and adapters are
saved apart from it (``model.conditioners.lora_store``). The adapters follow the prior's dtype on the fly but
not its device: attach after placing the prior, or move the ``LoraSet`` with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from common.errors import ConfigError, InputError
from model.prior.attention import FactoredAttention
from model.prior.conv1d import Conv1D
from model.prior.prior import JukeboxPrior

TARGETS = {"qkv": "c_attn", "proj": "c_proj"}  # LoraConfig target -> FactoredAttention attribute


@dataclass(frozen=True)
class LoraConfig:
    """Adapters of one prior level: ``rank`` (1..256) of each update, ``alpha`` (its scale is alpha / rank),
    ``targets`` (``qkv`` and/or ``proj``) and ``layers`` (indices into the music transformer; None: all)."""

    level: int
    rank: int = 8
    alpha: float = 8.0
    targets: tuple[str, ...] = ("qkv", "proj")
    layers: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.level, bool) or not isinstance(self.level, int) or not 0 <= self.level <= 7:
            raise ConfigError(f"adapters: level = {self.level!r} is outside 0..7")
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or not 1 <= self.rank <= 256:
            raise ConfigError(f"adapters: rank = {self.rank!r} must be a whole number in 1..256")
        alpha = self.alpha
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < math.inf:
            raise ConfigError(f"adapters: alpha = {self.alpha!r} must be a positive finite number")
        targets = tuple(self.targets)
        if not targets or len(set(targets)) != len(targets) or not set(targets) <= set(TARGETS):
            raise ConfigError(
                f"adapters: targets {list(targets)} must be one or more of {', '.join(TARGETS)}, each once"
            )
        object.__setattr__(self, "targets", targets)
        if self.layers is not None:
            layers = tuple(self.layers)
            bad = [i for i in layers if isinstance(i, bool) or not isinstance(i, int) or i < 0]
            if not layers or bad or len(set(layers)) != len(layers):
                raise ConfigError(
                    f"adapters: layers {list(layers)} must be distinct layer indices >= 0 (or null: all)"
                )
            object.__setattr__(self, "layers", tuple(sorted(layers)))

    @property
    def scale(self) -> float:
        return float(self.alpha) / self.rank

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["targets"] = list(self.targets)
        d["layers"] = None if self.layers is None else list(self.layers)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LoraConfig:
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"adapter config: unknown field(s) {unknown}")
        values = dict(d)
        for key in ("targets", "layers"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"adapter config: {exc}") from None


class LowRankAdapter(nn.Module):
    """``x (..., n_in) -> scale * (x @ down.T) @ up.T (..., n_out)``: ``down`` is LoRA's A (rank, n_in),
    ``up`` its B (n_out, rank), zero at first. Weights stay in their own dtype and are cast to the input's."""

    def __init__(self, n_in: int, n_out: int, rank: int, scale: float, device: torch.device | None = None):
        super().__init__()
        self.scale = scale
        self.down = nn.Parameter(torch.empty(rank, n_in, device=device))  # (r, n_in)
        self.up = nn.Parameter(torch.zeros(n_out, rank, device=device))  # (n_out, r)
        nn.init.kaiming_uniform_(self.down, a=math.sqrt(5))  # as nn.Linear (and peft) initialise A

    def forward(self, x: Tensor) -> Tensor:
        down: Tensor = self.down
        up: Tensor = self.up
        if down.dtype != x.dtype:
            down, up = down.to(x.dtype), up.to(x.dtype)
        return F.linear(F.linear(x, down), up) * self.scale  # (..., r) -> (..., n_out)

    def delta(self) -> Tensor:
        """The update as a ``Conv1D`` weight (n_in, n_out), float32."""
        return (self.up.float() @ self.down.float()).t() * self.scale


class LoraConv1D(Conv1D):
    """A ``Conv1D`` plus a ``LowRankAdapter``. It holds the very ``w``/``b`` parameters of the layer it
    replaces, under the same names, so the prior's state-dict keys and values do not change; the adapter
    is kept out of the prior's parameters (its ``LoraSet`` owns it)."""

    adapter: LowRankAdapter
    base: Conv1D

    def __init__(self, base: Conv1D, adapter: LowRankAdapter) -> None:
        nn.Module.__init__(self)  # not Conv1D.__init__: no new weights
        self.n_in, self.n_out = base.n_in, base.n_out
        self.w, self.b = base.w, base.b
        self.__dict__["adapter"] = adapter  # plain attributes, not submodules
        self.__dict__["base"] = base

    def forward(self, x: Tensor) -> Tensor:  # (..., n_in) -> (..., n_out)
        return super().forward(x) + self.adapter(x)


class LoraSet(nn.Module):
    """The adapters of one prior level, keyed ``layer<i>_<target>``; what is trained, saved and loaded."""

    def __init__(self, config: LoraConfig, shapes: Mapping[str, tuple[int, int]], device: torch.device) -> None:
        super().__init__()
        self.config = config
        r, scale = config.rank, config.scale
        self.adapters = nn.ModuleDict({k: LowRankAdapter(i, o, r, scale, device) for k, (i, o) in shapes.items()})

    def adapter(self, layer: int, target: str) -> LowRankAdapter:
        return cast(LowRankAdapter, self.adapters[_key(layer, target)])


def _key(layer: int, target: str) -> str:
    return f"layer{layer}_{target}"


def _attentions(prior: JukeboxPrior) -> list[FactoredAttention]:
    return [block.attn for block in prior.prior.transformer.blocks]


def attach_lora(prior: JukeboxPrior, config: LoraConfig, state: Mapping[str, Tensor] | None = None) -> LoraSet:
    """Wrap the projections ``config`` names with fresh adapters (or ``state``'s weights) and return them.

    ``InputError`` when the config does not fit the prior (level, layer indices) or adapters are attached
    already; ``RuntimeError`` from ``load_state_dict`` when ``state`` does not fit. On any error the prior is
    left as it was."""
    attentions = _attentions(prior)
    if config.level != prior.config.level:
        raise InputError(
            f"adapters for level {config.level} cannot attach to the level-{prior.config.level} prior"
        )
    depth = len(attentions)
    layers = range(depth) if config.layers is None else config.layers
    outside = [i for i in layers if i >= depth]
    if outside:
        raise InputError(f"adapter layers {outside} do not exist: this prior has layers 0..{depth - 1}")
    if any(isinstance(getattr(a, attr), LoraConv1D) for a in attentions for attr in TARGETS.values()):
        raise InputError(f"the level-{prior.config.level} prior has adapters attached already")
    shapes = {}
    for i in layers:
        for target in config.targets:
            base = cast(Conv1D, getattr(attentions[i], TARGETS[target]))
            shapes[_key(i, target)] = (base.n_in, base.n_out)
    lora = LoraSet(config, shapes, prior.prior.x_emb.weight.device)
    if state is not None:
        lora.load_state_dict(dict(state), strict=True)
    for i in layers:
        for target in config.targets:
            attr = TARGETS[target]
            setattr(attentions[i], attr, LoraConv1D(getattr(attentions[i], attr), lora.adapter(i, target)))
    return lora


def detach_lora(prior: JukeboxPrior, merge: bool = False) -> None:
    """Put the plain projections back; with ``merge`` their weights first take the adapters' update
    (rounded to the weights' dtype), so the prior keeps what was learned without the extra matmuls."""
    for attention in _attentions(prior):
        for attr in TARGETS.values():
            wrapped = getattr(attention, attr)
            if isinstance(wrapped, LoraConv1D):
                base = wrapped.base
                base.w, base.b = wrapped.w, wrapped.b  # the prior may have been cast since attaching
                if merge:
                    with torch.no_grad():
                        base.w.add_(wrapped.adapter.delta().to(base.w))  # (n_in, n_out)
                setattr(attention, attr, base)
