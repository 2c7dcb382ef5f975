"""``Hooks``: the one object through which a sampling run talks back to its caller.

Every field is optional. ``progress`` gets ``Progress`` reports (tokens per level, encode/decode
chunks); ``cancel`` is checked between model calls; ``level_done(level)`` fires once every candidate
has finished a level; ``preview(level, audio)`` gets a quick decode of every candidate (audio
``(n_candidates, frames, 1)`` float32, the take's stretch only) as soon as the top level is sampled.
The CLI passes tqdm bars as ``progress``; the daemon's backend turns all four into job events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from common.progress import CancelToken, Progress, ProgressFn


@dataclass(frozen=True)
class Hooks:
    progress: ProgressFn | None = None
    cancel: CancelToken | None = None
    level_done: Callable[[int], None] | None = None
    preview: Callable[[int, np.ndarray], None] | None = None

    def report(self, item: Progress) -> None:
        """Check for cancellation, then pass ``item`` on (the VQ-VAE reports between chunks but takes no token)."""
        self.check()
        if self.progress is not None:
            self.progress(item)

    def check(self) -> None:
        if self.cancel is not None:
            self.cancel.raise_if_cancelled()


NO_HOOKS = Hooks()
