"""Tokenizing text and mapping tokens to integer ids: :func:`tokenize` and :class:`Vocab`.

The tokenizer is deliberately simple (lowercase, then a regular expression that keeps runs of
letters/digits and single punctuation marks); any ``Callable[[str], list[str]]`` can replace it.
A :class:`Vocab` is built from the *training* split only, so that evaluation text maps unseen
words to ``<unk>`` exactly as it would in production.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets.errors import DataFormatError
from datasets.jsonfile import save_json

log = logging.getLogger(__name__)

#: Words (letters and digits, with an inner apostrophe as in "don't") or one punctuation mark.
TOKEN_PATTERN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")

PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
_FORMAT = "dataferry.vocab/1"

Tokenizer = Callable[[str], list[str]]


def tokenize(text: str, *, lowercase: bool = True, pattern: re.Pattern[str] | None = None) -> list[str]:
    """Split ``text`` into tokens: lowercase, then words and single punctuation marks.

    Args:
        text: the text to split.
        lowercase: lowercase the text first (the default).
        pattern: a compiled regular expression whose matches are the tokens; defaults to
            :data:`TOKEN_PATTERN`.

    Returns:
        The list of tokens, in order.

    Raises:
        TypeError: ``text`` is not a string.

    Example:
        >>> tokenize("Hello, World! Don't panic.")
        ['hello', ',', 'world', '!', "don't", 'panic', '.']
    """
    if not isinstance(text, str):
        raise TypeError(f"text should be a str, but got {type(text).__name__}: {text!r:.60}")
    if lowercase:
        text = text.lower()
    return (pattern or TOKEN_PATTERN).findall(text)


@dataclass(frozen=True)
class WordTokenizer:
    """A picklable, describable tokenizer: optional lowercasing, then a regular expression.

    ``pattern`` defaults to :data:`TOKEN_PATTERN`: runs of letters and digits (with inner
    apostrophes, "don't") or one punctuation mark, so ``"a|b"`` gives ``["a", "|", "b"]``.
    Word n-grams are not made here: :mod:`datasets.textfeatures` hashes pairs of token ids.

    Args:
        lowercase: lowercase the text first.
        pattern: the regular expression (a string) whose matches are the tokens.

    Example:
        >>> WordTokenizer(lowercase=False, pattern=r"\\S+")("Big  cat!")
        ['Big', 'cat!']
    """

    lowercase: bool = True
    pattern: str = TOKEN_PATTERN.pattern

    def __post_init__(self) -> None:
        try:
            re.compile(self.pattern)
        except re.error as err:
            raise ValueError(f"pattern should be a regular expression, but got "
                             f"pattern={self.pattern!r}: {err}") from err

    def __call__(self, text: str) -> list[str]:
        """Return the tokens of ``text``."""
        return tokenize(text, lowercase=self.lowercase, pattern=_compiled(self.pattern))

    def describe(self) -> dict[str, Any]:
        """Return the settings (for a packed cache's fingerprint and manifest)."""
        return {"lowercase": self.lowercase, "pattern": self.pattern}


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    if pattern not in _PATTERNS:
        _PATTERNS[pattern] = re.compile(pattern)
    return _PATTERNS[pattern]


class Vocab:
    """A two-way mapping between tokens and ids, with ``<pad>`` = 0 and ``<unk>`` = 1.

    Build it with :meth:`build` from the training texts; unknown tokens map to ``<unk>``.
    ``state_dict``/``from_state_dict`` let a training checkpoint carry the vocabulary next to
    the model weights; ``save``/``load`` write and read the same content as JSON.

    Args:
        tokens: the regular tokens, in id order; ids start after the special tokens.
        pad_token: the padding token (id 0).
        unk_token: the unknown-token token (id 1).

    Example:
        >>> vocab = Vocab.build(["a b b", "b c"], min_freq=1)
        >>> vocab.itos
        ['<pad>', '<unk>', 'b', 'a', 'c']
        >>> vocab.encode("b a zebra")
        [2, 3, 1]
    """

    def __init__(
        self, tokens: Iterable[str], *, pad_token: str = PAD_TOKEN, unk_token: str = UNK_TOKEN
    ) -> None:
        if pad_token == unk_token:
            raise ValueError(f"pad_token and unk_token should differ, but both are {pad_token!r}")
        self.pad_token = pad_token
        self.unk_token = unk_token
        self.itos: list[str] = [pad_token, unk_token]
        self.stoi: dict[str, int] = {pad_token: 0, unk_token: 1}
        for token in tokens:
            if token in self.stoi:
                raise ValueError(f"tokens should be unique, but {token!r} appears twice")
            self.stoi[token] = len(self.itos)
            self.itos.append(token)

    @classmethod
    def build(
        cls,
        texts: Iterable[str | Sequence[str]],
        *,
        tokenizer: Tokenizer | None = None,
        min_freq: int = 1,
        max_size: int | None = None,
        pad_token: str = PAD_TOKEN,
        unk_token: str = UNK_TOKEN,
    ) -> Vocab:
        """Count tokens in ``texts`` and keep the frequent ones.

        Tokens are ordered by decreasing frequency, ties broken alphabetically, so the same
        texts always give the same ids.

        Args:
            texts: strings (tokenized with ``tokenizer``) or already tokenized lists.
            tokenizer: splits a string into tokens; defaults to :func:`tokenize`.
            min_freq: keep tokens seen at least this many times.
            max_size: keep at most this many tokens *including* the two special tokens.
            pad_token: the padding token (id 0).
            unk_token: the unknown-token token (id 1).

        Returns:
            The new vocabulary.

        Raises:
            ValueError: ``min_freq < 1`` or ``max_size < 2``.
        """
        if min_freq < 1:
            raise ValueError(f"min_freq should be a positive int, but got min_freq={min_freq}")
        if max_size is not None and max_size < 2:
            raise ValueError(
                f"max_size should be at least 2 (room for {pad_token} and {unk_token}), "
                f"but got max_size={max_size}"
            )
        split = tokenizer or tokenize
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(split(text) if isinstance(text, str) else text)
        for special in (pad_token, unk_token):
            counts.pop(special, None)
        kept = sorted(
            (tok for tok, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t)
        )
        if max_size is not None:
            kept = kept[: max_size - 2]
        log.debug("built vocab of %d tokens from %d distinct", len(kept) + 2, len(counts))
        return cls(kept, pad_token=pad_token, unk_token=unk_token)

    @property
    def pad_id(self) -> int:
        """The id of the padding token (always 0)."""
        return 0

    @property
    def unk_id(self) -> int:
        """The id of the unknown token (always 1)."""
        return 1

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        return self.stoi.get(token, 1)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.state_dict() == other.state_dict()

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, pad={self.pad_token!r}, unk={self.unk_token!r})"

    def encode(self, text: str | Sequence[str], *, tokenizer: Tokenizer | None = None) -> list[int]:
        """Map a string (tokenized first) or a list of tokens to ids; unknown ones to ``<unk>``."""
        tokens = (tokenizer or tokenize)(text) if isinstance(text, str) else text
        get = self.stoi.get
        return [get(tok, 1) for tok in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Map ids back to tokens.

        Raises:
            ValueError: an id is outside ``[0, len(self))``.
        """
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.itos):
                raise ValueError(f"token id should be in [0, {len(self.itos)}), but got {i}")
            out.append(self.itos[i])
        return out

    def state_dict(self) -> dict[str, Any]:
        """Return a JSON-serializable description (store it in a checkpoint with the model)."""
        return {
            "format": _FORMAT,
            "pad_token": self.pad_token,
            "unk_token": self.unk_token,
            "itos": list(self.itos),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Vocab:
        """Rebuild a vocabulary from :meth:`state_dict` output.

        Raises:
            DataFormatError: ``state`` is not a vocabulary state.
        """
        try:
            fmt, itos = state["format"], state["itos"]
            pad, unk = state["pad_token"], state["unk_token"]
        except (KeyError, TypeError) as err:
            raise DataFormatError(
                f"expected a Vocab state with keys format, itos, pad_token, unk_token but got "
                f"{sorted(state) if isinstance(state, dict) else type(state).__name__}; "
                "create it with Vocab.state_dict()"
            ) from err
        if fmt != _FORMAT or itos[:2] != [pad, unk]:
            raise DataFormatError(
                f"expected a {_FORMAT} state starting with [{pad!r}, {unk!r}] but got format "
                f"{fmt!r} starting with {itos[:2]!r}; create it with Vocab.state_dict()"
            )
        return cls(itos[2:], pad_token=pad, unk_token=unk)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the vocabulary as JSON to ``path`` (atomically, parents created); return the path."""
        return save_json(path, self.state_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Vocab:
        """Read a vocabulary written by :meth:`save`.

        Raises:
            DataFormatError: the file is not valid JSON or not a vocabulary.
        """
        path = Path(path)
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise DataFormatError(
                f"{path}: expected a JSON vocabulary but got invalid JSON at line {err.lineno} "
                f"({err.msg}); write it with Vocab.save()"
            ) from err
        try:
            return cls.from_state_dict(state)
        except DataFormatError as err:
            raise DataFormatError(f"{path}: {err}") from err
