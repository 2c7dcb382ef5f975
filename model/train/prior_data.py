"""Training windows for one prior level: pieces of VQ-VAE codes cut into random ``n_ctx`` windows.

A ``PriorTrainItem`` is one piece as the data pipeline hands it over, in memory: its codes at every level
the prior reads, its labels (ids, not names) and optionally its MIDI/stems/tempo (``JobConditions``).
``PriorWindows`` draws batches: a piece chosen with probability proportional to its number of window
starts (so every window of the data set is equally likely), a start in tokens of the level (a multiple
of ``cond_downsample`` for an upsampler, so the level above covers the same span exactly), and for that
window the codes, the level-above codes, the label vector exactly as sampling builds it
(``SongLabels.for_window``; the lyric window by time when the piece has word times) and the conditioners'
inputs. Every batch comes from a generator seeded by ``(seed, stream, step)``: a resumed run draws the
same windows without any saved generator state, and each DDP rank takes its own ``stream``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from common.errors import InputError
from conditioning.labels import EMPTY_GENRE, SongLabels
from conditioning.lyrics import clean_lyrics, timed_lyric_window, tokenize, vocab_for
from model.conditioners.config import ConditionerConfig
from model.conditioners.network import ConditionInput
from model.conditioners.window import LevelConditions, LevelFeatures
from model.prior.prior_config import PriorConfig
from model.sampling.lengths import Geometry
from model.sampling.params import SamplingParams
from model.sampling.setup import label_set_for
from model.tasks.conditions import NO_CONDITIONS, JobConditions, level_conditions

Word = tuple[str, float, float]  # (text, start_s, end_s) in the piece's own time


@dataclass(frozen=True)
class PriorTrainItem:
    """One piece. ``codes``: level -> (T_level,) int64 codes (the prior's level, and the level above for an
    upsampler); ``total_length``: the piece's length in samples (the total-length label); ``genre_ids``: at
    most ``max_bow_genre_size`` ids; ``words``: timed lyrics, used instead of the linear spread of
    ``lyrics`` when given; ``conditions``: MIDI/stems/tempo placed so the piece's sample 0 is at project
    time ``conditions.take_start_s``; ``features``: level -> condition name -> precomputed frames over the
    whole piece (for example ``stem_codes`` features the pipeline encoded), used before ``conditions``."""

    codes: Mapping[int, np.ndarray]
    total_length: int
    artist_id: int = 0
    genre_ids: tuple[int, ...] = ()
    lyrics: str = ""
    words: tuple[Word, ...] = ()
    conditions: JobConditions = NO_CONDITIONS
    features: Mapping[int, Mapping[str, LevelFeatures]] = field(default_factory=dict)


@dataclass(frozen=True)
class PriorBatch:
    """One batch of windows. ``codes`` (N, n_ctx) int64; ``labels`` (N, n_y) int64 or None; ``upper``
    (N, n_ctx // cond_downsample) int64 or None; ``conditions``: name -> ConditionInput (N, n_ctx, F), a row
    without that condition all zeros with coverage 0; ``windows``: (item index, start token) per row."""

    codes: Tensor
    labels: Tensor | None
    upper: Tensor | None
    conditions: Mapping[str, ConditionInput]
    windows: tuple[tuple[int, int], ...]

    def to(self, device: torch.device) -> PriorBatch:
        def move(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device)

        inputs = {k: ConditionInput(v.features.to(device), v.coverage.to(device)) for k, v in self.conditions.items()}
        return PriorBatch(self.codes.to(device), move(self.labels), move(self.upper), inputs, self.windows)

    @property
    def tokens(self) -> int:
        return int(self.codes.numel())


class PriorWindows:
    """Random training windows of one prior level over ``items`` (see the module docstring)."""

    def __init__(
        self, config: PriorConfig, items: Sequence[PriorTrainItem], conditioners: Sequence[ConditionerConfig] = (),
        *, seed: int = 0,
    ) -> None:  # fmt: skip
        self.config, self.seed = config, seed
        self.items = list(items)
        self.conditioners = tuple(c for c in conditioners if c.level == config.level)
        if not self.items:
            raise InputError("training needs at least one piece (no training items were given)")
        self._step = config.cond_downsample if config.is_upsampler else 1
        self._starts = np.array([self._n_starts(i, item) for i, item in enumerate(self.items)], dtype=np.float64)
        if self._starts.sum() == 0:
            longest = max(len(item.codes.get(config.level, ())) for item in self.items)
            raise InputError(
                f"training the level-{config.level} prior needs pieces of at least n_ctx = {config.n_ctx} codes "
                f"of level {config.level}; the longest has {longest}"
            )
        self._weights = self._starts / self._starts.sum()
        self._labels = [self._song_labels(i, item) for i, item in enumerate(self.items)]
        self._features: dict[int, Mapping[str, LevelFeatures]] = {}

    # ---- drawing --------------------------------------------------------------------------------------
    def batch(self, step: int, batch_size: int, stream: int = 0) -> PriorBatch:
        """The batch of ``step`` (the same for the same seed, stream and step)."""
        rng = np.random.default_rng([self.seed, stream, step])
        picks = rng.choice(len(self.items), size=batch_size, p=self._weights)
        windows = tuple((int(i), int(rng.integers(0, self._starts[i])) * self._step) for i in picks)
        return self.windows(windows)

    def windows(self, windows: Sequence[tuple[int, int]]) -> PriorBatch:
        """The batch of the given (item index, start token) windows."""
        c = self.config
        codes = np.stack([self._codes(i, c.level, start, c.n_ctx) for i, start in windows])  # (N, n_ctx)
        upper = None
        if c.is_upsampler:
            r = c.cond_downsample
            upper = torch.from_numpy(np.stack([self._codes(i, c.level + 1, s // r, c.n_ctx // r) for i, s in windows]))
        labels = torch.stack([self.labels(i, start) for i, start in windows]) if c.labels.enabled else None
        return PriorBatch(torch.from_numpy(codes), labels, upper, self._conditions(windows), tuple(windows))

    def labels(self, index: int, start: int) -> Tensor:
        """The label vector (n_y,) of the window of item ``index`` at token ``start``: ``for_window`` as in
        sampling, with the lyric window taken by time when the piece has word times."""
        c, item, song = self.config, self.items[index], self._labels[index]
        y = song.for_window(start, c.hop_length, c.n_ctx).y.clone()  # (n_y,)
        if item.words and c.lyrics.n_tokens:
            sr = c.labels.sample_rate
            window = timed_lyric_window(
                item.words, vocab_for(song.label_set.version), c.lyrics.n_tokens,
                start * c.hop_length / sr, c.sample_length / sr,
            )  # fmt: skip
            y[c.n_labels :] = torch.tensor(window.tokens, dtype=torch.int64)
        return y

    # ---- pieces ---------------------------------------------------------------------------------------
    def _n_starts(self, index: int, item: PriorTrainItem) -> int:
        c = self.config
        needed = (c.level, c.level + 1) if c.is_upsampler else (c.level,)
        for level in needed:
            codes = item.codes.get(level)
            if codes is None or codes.ndim != 1 or codes.dtype.kind not in "iu":
                raise InputError(f"training item {index}: needs the level-{level} codes as a 1-D integer array")
            bins = c.n_bins
            if codes.size and (int(codes.min()) < 0 or int(codes.max()) >= bins):
                raise InputError(f"training item {index}: level-{level} codes must lie in [0, {bins - 1}]")
        t = len(item.codes[c.level])
        if c.is_upsampler:  # the level above must cover every window
            t = min(t, len(item.codes[c.level + 1]) * c.cond_downsample)
        return max(0, (t - c.n_ctx) // self._step + 1)

    def _song_labels(self, index: int, item: PriorTrainItem) -> SongLabels:
        c = self.config
        ls = label_set_for(c)
        g = c.labels.max_bow_genre_size
        genres, artists = c.labels.y_bins
        where = f"training item {index}"
        if not 0 <= item.artist_id < artists:
            raise InputError(f"{where}: artist id {item.artist_id} is outside this prior's 0..{artists - 1}")
        if len(item.genre_ids) > g or any(not 0 <= x < genres for x in item.genre_ids):
            raise InputError(f"{where}: genre ids {list(item.genre_ids)} must be at most {g} ids in 0..{genres - 1}")
        try:
            ls.check_total_length(item.total_length)
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
        vocab = vocab_for(ls.version)
        lyrics = clean_lyrics(item.lyrics, vocab)
        song = SongLabels(
            label_set=ls, total_length=item.total_length, offset=0, artist_id=item.artist_id,
            genre_ids=tuple(item.genre_ids) + (EMPTY_GENRE,) * (g - len(item.genre_ids)),
            lyrics=lyrics, full_tokens=tuple(tokenize(lyrics, vocab)),
        )  # fmt: skip
        if c.labels.enabled and self._starts[index] > 0:  # every window's labels are valid (time-signal range)
            last = (int(self._starts[index]) - 1) * self._step
            try:
                song.for_window(last, c.hop_length, c.n_ctx)
            except InputError as exc:
                raise InputError(f"{where}: {exc}") from None
        return song

    def _codes(self, index: int, level: int, start: int, length: int) -> np.ndarray:
        return self.items[index].codes[level][start : start + length].astype(np.int64)

    # ---- conditions -----------------------------------------------------------------------------------
    def _piece_features(self, index: int) -> Mapping[str, LevelFeatures]:
        """Every conditioner's frames over the whole piece at this level, computed once per piece."""
        if index not in self._features:
            c, item = self.config, self.items[index]
            given = dict(item.features.get(c.level, {}))
            rest = tuple(k for k in self.conditioners if k.name not in given)
            if rest and item.conditions.names:
                geometry = Geometry(c.labels.sample_rate, tuple(c.geometry.hop_length(lv) for lv in range(c.levels)),
                                    (0,) * c.levels)  # fmt: skip
                length = len(item.codes[c.level]) * c.hop_length
                found = level_conditions(item.conditions, geometry, {c.level: rest}, (c.level,), start=0,
                                         sample_length=length, params=SamplingParams())  # fmt: skip
                if c.level in found:
                    given.update(found[c.level].features)
            self._features[index] = given
        return self._features[index]

    def _conditions(self, windows: Sequence[tuple[int, int]]) -> dict[str, ConditionInput]:
        n_ctx, out = self.config.n_ctx, {}
        pieces = [self._piece_features(i) for i, _ in windows]
        for k in self.conditioners:
            if not any(k.name in p for p in pieces):
                continue
            features = np.zeros((len(windows), n_ctx, k.n_features), dtype=np.float32)  # (N, n_ctx, F)
            coverage = np.zeros((len(windows), n_ctx), dtype=np.float32)  # (N, n_ctx)
            for row, ((_, start), piece) in enumerate(zip(windows, pieces, strict=True)):
                if k.name in piece:
                    w = LevelConditions({k.name: piece[k.name]}).window(start, n_ctx, 1).inputs[k.name]
                    features[row], coverage[row] = w.features[0].numpy(), w.coverage[0].numpy()
            out[k.name] = ConditionInput(torch.from_numpy(features), torch.from_numpy(coverage))
        return out

    # ---- identity -------------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """A hash of what the windows are drawn from (codes, labels, lyrics), to refuse resuming on other data."""
        h = hashlib.sha256()
        c = self.config
        for item in self.items:
            for level in sorted(lv for lv in item.codes if lv in (c.level, c.level + 1)):
                h.update(f"{level}:".encode())
                h.update(np.ascontiguousarray(item.codes[level], dtype=np.int64).tobytes())
            h.update(repr((item.total_length, item.artist_id, tuple(item.genre_ids), item.lyrics, item.words)).encode())
            h.update(repr(item.conditions.names).encode())
        return h.hexdigest()
