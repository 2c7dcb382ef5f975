"""Conditioner networks for MIDI, stems and the host's beat grid (issue 9), attached beside a prior.

A ``FeatureConditioner`` turns per-token feature frames (N, T, F) (from ``conditioning/``) into (N, T, W)
that is added to the prior's ``x_cond`` through a zero-initialised output projection, so attaching an
untrained conditioner leaves every output of the prior bit-identical. A ``ConditionerSet`` holds the
conditioners of one prior level, applies condition dropout while training (for classifier-free guidance)
and is saved in the model directory as components of its own (``model.conditioners.store``), apart from
the prior's weights.
"""

from model.conditioners.config import ConditionerConfig
from model.conditioners.network import ConditionerSet, ConditionInput, FeatureConditioner, freeze_except

__all__ = ["ConditionInput", "ConditionerConfig", "ConditionerSet", "FeatureConditioner", "freeze_except"]
