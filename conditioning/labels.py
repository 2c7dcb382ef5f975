"""Song metadata → Jukebox's int64 label vector ``y``, and its per-window rewrite.

Layout of ``y`` (one row per song)::

    [total_length, offset, sample_length, artist_id, genre_id × G, lyric_token × n_tokens]

lengths in samples; G = ``max_bow_genre_size`` (5 for v2, 1 for v3; unused genre slots are −1).
Building labels is CPU-side and pure: id tables are loaded by the caller (:func:`conditioning.ids.load_id_table`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from common.errors import InputError

from .ids import IdTable, LabelVersion
from .lyrics import LyricWindow, clean_lyrics, relevant_lyric_tokens, tokenize, vocab_for

EMPTY_GENRE = -1
MAX_BLEND = 8  # names in one weighted artist or genre


def parse_blend(text: str, kind: str = "artist") -> tuple[tuple[str, float], ...]:
    """A weighted blend of names: ``"the beatles=0.6; queen=0.4"`` -> ((name, weight), ...) with the weights
    scaled to sum to 1. A text without ``=`` is one name of weight 1 (no listed artist or genre holds ``=``,
    and id lists split on ``;``, so neither can be part of a name)."""
    if "=" not in text:
        return ((text, 1.0),)
    items = [item.strip() for item in text.split(";") if item.strip()]
    if not 1 <= len(items) <= MAX_BLEND:
        raise InputError(f"{kind} blend {text[:80]!r}: give 1 to {MAX_BLEND} NAME=WEIGHT items separated by ';'")
    out: list[tuple[str, float]] = []
    for item in items:
        name, sep, weight = item.rpartition("=")
        name = name.strip()
        try:
            w = float(weight)
        except ValueError:
            w = float("nan")
        if not sep or not name or not (w > 0 and w < float("inf")):
            raise InputError(
                f"{kind} blend item {item[:60]!r} is not NAME=WEIGHT with a positive weight "
                f"(for example 'the beatles=0.6; queen=0.4')"
            )
        out.append((name, w))
    names = [n.lower() for n, _ in out]
    if len(set(names)) != len(names):
        raise InputError(f"{kind} blend {text[:80]!r} names one {kind} twice: give each once")
    total = sum(w for _, w in out)
    return tuple((n, w / total) for n, w in out)


@dataclass(frozen=True)
class LabelSet:
    """What one prior's labels look like.

    version: id/vocab set ("v2" or "v3"); max_bow_genre_size: genre slots G; n_tokens: lyric tokens per window
    (0 = no lyrics); n_ctx, hop: the prior's window in tokens and samples per token (window = n_ctx·hop samples);
    min_duration / max_duration: allowed song length in seconds for priors with a time signal (None = unchecked).
    """

    version: LabelVersion
    max_bow_genre_size: int
    n_tokens: int
    n_ctx: int
    hop: int
    sr: int = 44100
    min_duration: float | None = None
    max_duration: float | None = None

    @property
    def sample_length(self) -> int:
        """Samples covered by one window of this prior."""
        return self.n_ctx * self.hop

    @property
    def width(self) -> int:
        """Length of ``y``: 4 + G + n_tokens."""
        return 4 + self.max_bow_genre_size + self.n_tokens

    def check_total_length(self, total_length: int) -> None:
        """Raise :class:`InputError` unless ``total_length`` lies in ``[min_duration, max_duration)`` seconds."""
        if self.min_duration is None or self.max_duration is None:
            if total_length <= 0:
                raise InputError(f"total length must be positive, got {total_length} samples")
            return
        lo, hi = self.min_duration * self.sr, self.max_duration * self.sr
        allowed = f"allowed range {self.min_duration:g}–{self.max_duration:g} s"
        seconds = total_length / self.sr
        if total_length < lo:
            raise InputError(
                f"total length {seconds:.1f} s is below this prior's minimum of {self.min_duration:g} s; {allowed}"
            )
        if total_length >= hi:
            raise InputError(
                f"total length {seconds:.1f} s is not below this prior's maximum of {self.max_duration:g} s; {allowed}"
            )


# The label sets of the released Jukebox priors (spec §3.1).
JUKEBOX_LABEL_SETS: dict[str, LabelSet] = {
    "upsampler_level_0": LabelSet("v2", 5, 0, n_ctx=8192, hop=8),
    "upsampler_level_1": LabelSet("v2", 5, 0, n_ctx=8192, hop=32),
    "5b": LabelSet("v2", 5, 0, n_ctx=8192, hop=128, min_duration=60.0, max_duration=600.0),
    "5b_lyrics": LabelSet("v2", 5, 512, n_ctx=8192, hop=128, min_duration=23.8, max_duration=600.0),
    "1b_lyrics": LabelSet("v3", 1, 384, n_ctx=6144, hop=128, min_duration=17.84, max_duration=600.0),
}


@dataclass(frozen=True)
class Metadata:
    """What a musician says about a song. Lengths are in samples at the model's rate."""

    artist: str
    genre: str
    lyrics: str = ""
    total_length: int = 0
    offset: int = 0


@dataclass(frozen=True)
class SongLabels:
    """A song's labels for one prior: ids, the full lyric token list and any lookup warnings."""

    label_set: LabelSet
    total_length: int
    offset: int
    artist_id: int
    genre_ids: tuple[int, ...]  # exactly G entries, −1 = empty slot
    lyrics: str  # cleaned lyrics
    full_tokens: tuple[int, ...]
    warnings: tuple[str, ...] = ()
    blend: tuple[tuple[int, tuple[int, ...], float], ...] = ()  # (artist_id, genre_ids, weight); () = no blend

    def lyric_window(self, offset: int, duration: int) -> LyricWindow:
        """The lyric tokens seen by a window of ``duration`` samples at ``offset``."""
        return relevant_lyric_tokens(self.full_tokens, self.label_set.n_tokens, self.total_length, offset, duration)

    def for_window(self, start_token: int, hop: int | None = None, n_ctx: int | None = None) -> WindowLabels:
        """``y`` for the sampling window that starts at token ``start_token`` of this prior's level.

        Like Jukebox's ``get_y``: sample_length = n_ctx·hop, offset = song offset + start_token·hop, and the
        lyric window is recomputed from the full lyrics. ``hop``/``n_ctx`` default to the label set's.
        """
        hop = self.label_set.hop if hop is None else hop
        n_ctx = self.label_set.n_ctx if n_ctx is None else n_ctx
        if start_token < 0:
            raise InputError(f"window start {start_token} tokens must be >= 0")
        return self._vector(self.offset + start_token * hop, n_ctx * hop)

    def _vector(self, offset: int, sample_length: int) -> WindowLabels:
        ls = self.label_set
        if ls.min_duration is not None and ls.max_duration is not None:
            _check_window(offset, sample_length, self.total_length, ls.sr, ls.max_duration)
        window = self.lyric_window(offset, sample_length)
        values = [self.total_length, offset, sample_length, self.artist_id, *self.genre_ids, *window.tokens]
        y = torch.tensor(values, dtype=torch.int64)  # (4 + G + n_tokens,)
        if not self.blend:
            return WindowLabels(y=y, lyric_indices=tuple(window.indices))
        variants = y.repeat(len(self.blend), 1)  # (K, 4 + G + n_tokens): the same but for artist and genres
        for k, (artist, genres, _) in enumerate(self.blend):
            variants[k, 3] = artist
            variants[k, 4 : 4 + len(genres)] = torch.tensor(genres, dtype=torch.int64)
        weights = torch.tensor([w for _, _, w in self.blend], dtype=torch.float32)  # (K,)
        return WindowLabels(y=y, lyric_indices=tuple(window.indices), variants=variants, weights=weights)


@dataclass(frozen=True)
class WindowLabels:
    """``y`` for one window and the index in the full lyrics of each lyric token (−1 = padding)."""

    y: torch.Tensor  # (4 + G + n_tokens,) int64 (a blend's first artist and genre)
    lyric_indices: tuple[int, ...]
    variants: torch.Tensor | None = None  # (K, 4 + G + n_tokens) int64: one row per blended artist x genre
    weights: torch.Tensor | None = None  # (K,) float32, summing to 1: the prior mixes the rows' embeddings


def _check_window(offset: int, sample_length: int, total_length: int, sr: int, max_duration: float) -> None:
    # The time embeddings need 0 <= offset < total_length and offset + sample_length <= max_duration.
    if not 0 <= offset < total_length:
        raise InputError(
            f"window at {offset / sr:.2f} s starts outside the song of {total_length / sr:.2f} s; "
            "make the total length longer than the audio you generate"
        )
    if offset + sample_length > max_duration * sr:
        raise InputError(
            f"window ending at {(offset + sample_length) / sr:.2f} s is past this prior's maximum of "
            f"{max_duration:g} s"
        )


def song_labels(
    meta: Metadata, label_set: LabelSet, artists: IdTable, genres: IdTable, *, strict: bool = True
) -> SongLabels:
    """Look up ids, clean and tokenise lyrics, and validate lengths for one song.

    strict: unknown artists/genres raise :class:`InputError` with close matches; otherwise they map to 0 and
    the warning is returned in ``SongLabels.warnings``.
    """
    for table, kind in ((artists, "artist"), (genres, "genre")):
        if table.kind != kind or table.version != label_set.version:
            raise InputError(
                f"{table.source} is a {table.version} {table.kind} list but this prior needs "
                f"the {label_set.version} {kind} list"
            )
    label_set.check_total_length(meta.total_length)
    if not 0 <= meta.offset < meta.total_length:
        raise InputError(f"offset {meta.offset} samples must lie inside the song: 0..{meta.total_length - 1}")
    size = label_set.max_bow_genre_size
    artist_blend = [(artists.lookup(name, strict=strict), w) for name, w in parse_blend(meta.artist, "artist")]
    genre_blend = []
    for name, w in parse_blend(meta.genre, "genre"):
        genre = genres.lookup(name, strict=strict)
        if len(genre.ids) > size:
            raise InputError(
                f"genre {name!r} has {len(genre.ids)} words ({', '.join(genre.keys)}); this prior takes at most {size}"
            )
        genre_blend.append((genre, genre.ids + (EMPTY_GENRE,) * (size - len(genre.ids)), w))
    artist, genre_ids = artist_blend[0][0], genre_blend[0][1]
    blend: tuple[tuple[int, tuple[int, ...], float], ...] = ()
    if len(artist_blend) > 1 or len(genre_blend) > 1:  # the embeddings add up, so each pair gets wa * wg
        blend = tuple((a.ids[0], g_ids, wa * wg) for a, wa in artist_blend for _, g_ids, wg in genre_blend)
    warnings = tuple(w for a, _ in artist_blend for w in a.warnings) + tuple(w for g, _, _ in genre_blend for w in g.warnings)
    vocab = vocab_for(label_set.version)
    lyrics = clean_lyrics(meta.lyrics, vocab)
    tokens = tuple(tokenize(lyrics, vocab))
    return SongLabels(
        label_set=label_set,
        total_length=meta.total_length,
        offset=meta.offset,
        artist_id=artist.ids[0],
        genre_ids=genre_ids,
        lyrics=lyrics,
        full_tokens=tokens,
        warnings=warnings,
        blend=blend,
    )
