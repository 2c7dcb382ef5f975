"""``ConditionerConfig``: what one conditioner network takes and how big it is (JSON in the model directory)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from common.errors import ConfigError

KINDS = ("midi", "stem", "grid", "stem_codes")
CODES_SUFFIX = "_codes"  # a stem_codes conditioner is named after its stem: drums_codes reads stem drums
_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True)
class ConditionerConfig:
    """One conditioner of one prior level.

    ``name``: what a job calls the condition (``midi``, ``grid``, or a stem's label such as ``drums``);
    ``kind``: which features it reads (``midi``, ``stem``, ``grid``, or ``stem_codes``: the codebook vectors
    of the stem's own VQ-VAE codes at this level, F = the VQ-VAE's emb_width); ``n_features``: F of its
    input frames;
    ``width``: the prior's transformer width W; ``hidden``: the network's own width; ``kernel``: the
    temporal convolution's size (odd, in tokens); ``dropout``: the probability, while training, that the
    whole condition is dropped for one example (classifier-free guidance needs the unconditioned case).
    """

    name: str
    kind: str
    n_features: int
    width: int
    level: int
    hidden: int = 128
    kernel: int = 5
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ConfigError(f"conditioner name {self.name!r}: use 1-32 lower-case letters, digits or '_'")
        if self.kind not in KINDS:
            raise ConfigError(f"conditioner {self.name}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.kind == "stem_codes":
            if not self.name.endswith(CODES_SUFFIX) or self.name == CODES_SUFFIX.lstrip("_"):
                raise ConfigError(
                    f"conditioner {self.name}: a stem_codes conditioner is named <stem label>{CODES_SUFFIX} "
                    "(drums_codes reads the VQ-VAE codes of the stem labelled drums)"
                )
        elif self.name.endswith(CODES_SUFFIX):
            raise ConfigError(f"conditioner {self.name}: names ending in {CODES_SUFFIX} are for stem_codes conditioners")
        elif (self.kind in ("midi", "grid") or self.name in ("midi", "grid")) and self.name != self.kind:
            raise ConfigError(
                f"conditioner {self.name}: a {self.kind} conditioner is named {self.kind!r}, and only it "
                "(a stem conditioner is named after its stem's label, such as 'drums')"
            )
        for field, value in (("n_features", self.n_features), ("width", self.width), ("hidden", self.hidden)):
            if not 1 <= value <= 65536:
                raise ConfigError(f"conditioner {self.name}: {field} = {value} is outside 1..65536")
        if self.kernel < 1 or self.kernel % 2 == 0 or self.kernel > 63:
            raise ConfigError(f"conditioner {self.name}: kernel = {self.kernel} must be odd and at most 63")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"conditioner {self.name}: dropout = {self.dropout} must lie in [0, 1)")
        if not 0 <= self.level <= 7:
            raise ConfigError(f"conditioner {self.name}: level = {self.level} is outside 0..7")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConditionerConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"conditioner config: unknown field(s) {unknown}")
        try:
            return cls(**d)
        except TypeError as exc:
            raise ConfigError(f"conditioner config: {exc}") from None
