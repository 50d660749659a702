"""Transforms that work on one image ``[C, H, W]`` or on a whole batch ``[B, C, H, W]`` at once.

The image datasets store pixels as ``uint8``. A :class:`BatchTransform` takes a ``uint8`` (or,
after :class:`ToFloat`, ``float32``) tensor ``[C, H, W]`` or ``[B, C, H, W]``; the packed
datasets apply it once per batch in ``__getitems__`` instead of once per sample:

- :class:`ToFloat` / :class:`Normalize`: ``uint8`` to ``float32`` ``(x / 255 - mean) / std``
  per channel (the default transform of every image dataset is ``ToFloat()``: ``[-1, 1]``).
- :class:`RandomCrop`, :class:`RandomResizedCrop`, :class:`RandomHorizontalFlip`: random per
  sample, drawn from their ``generator`` (seeded: reproducible), on ``uint8`` batches. In a
  ``DataLoader`` worker they draw from :func:`worker_generator` instead, so workers never repeat
  each other's (or the last epoch's) draws.

Any other callable is a *per-sample* transform. The image datasets run a torchvision pipeline
they recognise as its batch equivalent (:mod:`datasets.pipeline`), and hand any other callable
the PIL image torchvision's datasets would give it.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

__all__ = ["BatchTransform", "Compose", "Normalize", "RandomCrop", "RandomHorizontalFlip",
           "RandomResizedCrop", "ToFloat", "checked_rows", "gather", "is_batch_transform",
           "worker_generator"]

_TRIES = 10  # torchvision's random-resized-crop box draws before the centre-crop fallback
DEFAULT_MEAN = 0.5
DEFAULT_STD = 0.5

Transform = Callable[[Any], Any]

_WORKER_GENERATORS: dict[int, tuple[tuple[int, int, int], torch.Generator]] = {}


def worker_generator(generator: torch.Generator | None) -> torch.Generator | None:
    """Return the generator to draw from: ``generator`` itself outside ``DataLoader`` workers.

    A seeded generator is copied into every worker as it is, so each worker would draw the same
    numbers, epoch after epoch. In a worker this returns a generator of its own, seeded from
    ``generator.initial_seed()`` and the worker's seed (which ``DataLoader`` draws per worker
    and per epoch from its own ``generator``): different in each worker and epoch, and
    reproducible when both are seeded. ``None`` stays ``None`` (torch's global RNG, which
    ``DataLoader`` already seeds per worker).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> worker_generator(g) is g  # not in a worker
        True
    """
    info = torch.utils.data.get_worker_info()
    if generator is None or info is None:
        return generator
    # the seed in the key too: a collected generator's id may be reused by a new one
    key = (os.getpid(), int(info.seed), generator.initial_seed())
    cached = _WORKER_GENERATORS.get(id(generator))
    if cached is None or cached[0] != key:
        own = torch.Generator()
        own.manual_seed((generator.initial_seed() * 1_000_003 + info.seed) % (1 << 63))
        cached = _WORKER_GENERATORS[id(generator)] = (key, own)
    return cached[1]


class BatchTransform:
    """Base of transforms that take ``[C, H, W]`` or ``[B, C, H, W]`` tensors.

    Deterministic subclasses give the same result for a batch as for its samples stacked;
    random ones draw independently per sample.
    """

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def take(self, source: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Return ``self(source[indices])`` for a ``[N, C, H, W]`` ``source`` (a stored view).

        The packed datasets call this with their memory-mapped pixels: the crops read just
        their boxes out of the rows named, instead of gathering whole images first.
        ``indices`` is 1-D; negative ones count from the end, as in ``source[indices]``.

        Example:
            >>> source = torch.arange(12, dtype=torch.uint8).view(3, 1, 2, 2)
            >>> Compose([]).take(source, torch.tensor([2, 0])).flatten().tolist()
            [8, 9, 10, 11, 0, 1, 2, 3]
        """
        return self(gather(source, indices))


def gather(source: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """``source[indices]`` for ``[N, C, H, W]``, gathered in ``source``'s memory layout.

    (A channels-last view of the stores' ``[N, H, W, C]`` pixels gathers as that array, many
    times faster than gathering the ``[N, C, H, W]`` view.)
    """
    indices = checked_rows(indices, len(source))
    if _is_channels_last(source):
        return source.permute(0, 2, 3, 1).index_select(0, indices).permute(0, 3, 1, 2)
    return source.index_select(0, indices)


def checked_rows(indices: torch.Tensor | Sequence[int], n: int) -> torch.Tensor:
    """1-D ``int64`` row indices into ``n`` rows, negative ones counted from the end.

    Raises:
        IndexError: an index outside ``[-n, n)``, named.
        ValueError: ``indices`` is not 1-D.

    Example:
        >>> checked_rows(torch.tensor([0, -1]), 3).tolist()
        [0, 2]
    """
    if not isinstance(indices, torch.Tensor):  # a list from a sampler; [] is no float
        indices = torch.as_tensor(indices) if len(indices) else torch.empty(0, dtype=torch.int64)
    if indices.ndim != 1:
        raise ValueError(f"expected 1-D row indices, but got shape {list(indices.shape)}")
    if indices.dtype == torch.bool or indices.is_floating_point() or indices.is_complex():
        raise TypeError(f"expected integer row indices, but got dtype={indices.dtype}")
    indices = indices.to(torch.int64)
    if len(indices):
        low, high = int(indices.min()), int(indices.max())
        if low < -n or high >= n:
            bad = low if low < -n else high
            raise IndexError(f"index {bad} is out of range for {n} images")
        if low < 0:
            indices = torch.where(indices < 0, indices + n, indices)
    return indices


def _per_channel(value: float | Sequence[float], name: str) -> torch.Tensor:
    values = torch.tensor([value] if isinstance(value, (int, float)) else list(value),
                          dtype=torch.float32)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"{name} should be a float or a sequence of floats, but got "
                         f"{name}={value!r}")
    return values


class ToFloat(BatchTransform):
    """Convert ``uint8`` pixels to ``float32`` as ``(x / 255 - mean) / std``, per channel.

    The defaults ``mean=0.5, std=0.5`` map pixels to ``[-1, 1]``; they are fixed constants
    rather than statistics of one split, so train and test are always normalized alike.
    ``ToFloat(mean=0.0, std=1.0)`` gives plain ``x / 255`` in ``[0, 1]``.

    Args:
        mean: subtracted after scaling to ``[0, 1]``: one float, or one per channel.
        std: divisor after subtracting ``mean``; positive; one float or one per channel.

    Example:
        >>> ToFloat()(torch.tensor([[0, 255]], dtype=torch.uint8))
        tensor([[-1.,  1.]])
    """

    def __init__(self, mean: float | Sequence[float] = DEFAULT_MEAN,
                 std: float | Sequence[float] = DEFAULT_STD) -> None:
        means, stds = _per_channel(mean, "mean"), _per_channel(std, "std")
        if not bool((stds > 0).all()):
            raise ValueError(f"std should be a positive float, but got std={std!r}")
        self.mean = float(mean) if isinstance(mean, (int, float)) else [float(m) for m in mean]
        self.std = float(std) if isinstance(std, (int, float)) else [float(s) for s in std]
        # One multiply-add: x * scale + shift == (x / 255 - mean) / std.
        self._scale = 1.0 / (255.0 * stds)
        self._shift = -means / stds
        self._scalar = len(means) == 1 and len(stds) == 1

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.uint8:
            raise TypeError(f"{type(self).__name__} expects a uint8 tensor, but got "
                            f"dtype={x.dtype}")
        # [B, C, H, W] memory either way: a channels-last batch (as the crops return) is
        # reordered in the one conversion pass, and per-channel broadcasting runs twice as fast
        out = x.to(torch.float32, memory_format=torch.contiguous_format)
        if self._scalar:
            return out.mul_(float(self._scale[0])).add_(float(self._shift[0]))
        channels = x.shape[-3] if x.ndim >= 3 else 0
        if channels != len(self._scale):
            raise ValueError(f"{type(self).__name__} has {len(self._scale)} channel values but "
                             f"got a tensor of shape {list(x.shape)} ([..., C, H, W] expected)")
        view = (-1, 1, 1)
        return out.mul_(self._scale.view(view)).add_(self._shift.view(view))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mean={self.mean}, std={self.std})"


class Normalize(ToFloat):
    """``ToFloat`` with per-channel statistics, e.g. ``Normalize(ds.mean, ds.std)``.

    The packed datasets record ``mean`` and ``std`` (of ``x / 255``) in their manifest, so
    normalizing needs no extra pass over the data.

    Example:
        >>> Normalize([0.5, 0.25], [0.5, 0.25])(torch.full((2, 1, 1), 255, dtype=torch.uint8)).flatten()
        tensor([1., 3.])
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__(mean, std)


def _batched(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if x.ndim == 3:
        return x.unsqueeze(0), True
    if x.ndim != 4:
        raise ValueError(f"expected an image [C, H, W] or a batch [B, C, H, W], but got a "
                         f"tensor of shape {list(x.shape)}")
    return x, False


class RandomHorizontalFlip(BatchTransform):
    """Flip each image left-right with probability ``p``, drawn per sample.

    The result is a new tensor in the input's memory layout; inside :class:`Compose`, after a
    transform that made a new batch, only the chosen samples are flipped, in place.

    Example:
        >>> x = torch.arange(4, dtype=torch.uint8).view(1, 1, 1, 4)
        >>> RandomHorizontalFlip(p=1.0)(x).flatten().tolist()
        [3, 2, 1, 0]
    """

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None) -> None:
        self.p = float(p)
        self.generator = generator

    def chosen(self, b: int) -> list[int]:
        """Draw which of ``b`` samples to flip (one draw per sample, in order)."""
        return (torch.rand(b, generator=worker_generator(self.generator)) < self.p).nonzero().flatten().tolist()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        batch, single = _batched(x)
        chosen = self.chosen(len(batch))
        out = torch.empty_like(batch).copy_(batch)  # dense, in the input's layout
        for i in chosen:
            out[i] = batch[i].flip(-1)
        return out[0] if single else out

    def flip_(self, x: torch.Tensor) -> torch.Tensor:
        """Flip the chosen samples of ``x`` in place (``x`` is a batch no one else holds)."""
        batch, _ = _batched(x)
        for i in self.chosen(len(batch)):
            batch[i] = batch[i].flip(-1)  # flip() copies, so the slice is not read while written
        return x

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


def _pair(size: int | Sequence[int], name: str) -> tuple[int, int]:
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"{name} should be a positive int or (H, W), but got {name}={size!r}")
    return int(pair[0]), int(pair[1])


def _is_channels_last(x: torch.Tensor) -> bool:
    """Whether the channels of ``[B, C, H, W]`` are adjacent in memory (``[B, H, W, C]``)."""
    return x.stride(1) == 1 or x.shape[1] == 1


def _empty_batch(like: torch.Tensor, size: tuple[int, int], b: int) -> torch.Tensor:
    """A new dense ``[b, C, *size]`` batch, channels last when ``like`` is.

    The packed stores give ``[N, H, W, C]`` pixels as ``[B, C, H, W]`` views: cropping them
    into the same layout copies each sample's rows as contiguous runs (a DataLoader worker
    sends a dense tensor of either layout for the same cost).
    """
    c = like.shape[1]
    if _is_channels_last(like):
        return torch.empty((b, *size, c), dtype=like.dtype).permute(0, 3, 1, 2)
    return torch.empty((b, c, *size), dtype=like.dtype)


class _RowTransform(BatchTransform):
    """A batch transform made sample by sample out of rows of a batch, or of a store (``take``).

    Subclasses define ``_from_rows(source, rows)``: the new batch made of ``source``'s ``rows``.
    """

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        batch, single = _batched(x)
        out = self._from_rows(batch, range(len(batch)))
        return out[0] if single else out

    def take(self, source: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        if type(self).__call__ is not _RowTransform.__call__:  # a subclass's __call__ rules
            return super().take(source, indices)
        return self._from_rows(source, checked_rows(indices, len(source)).tolist())

    def _from_rows(self, source: torch.Tensor, rows: Sequence[int]) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover - interface


class RandomCrop(_RowTransform):
    """Crop a random ``size`` window out of each image (one position per sample).

    ``padding=(left, top, right, bottom)`` crops out of the image zero-padded so (torchvision's
    ``RandomCrop(size, padding=...)``); ``flip`` mirrors each crop left-right with that
    probability, drawn per sample (``RandomHorizontalFlip(p=flip)`` after it, at no cost).

    Example:
        >>> x = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4)
        >>> RandomCrop(2, generator=torch.Generator().manual_seed(0))(x).shape
        torch.Size([1, 1, 2, 2])
    """

    def __init__(self, size: int | Sequence[int], *, padding: tuple[int, int, int, int] = (0, 0, 0, 0),
                 flip: float = 0.0, generator: torch.Generator | None = None) -> None:
        self.size = _pair(size, "size")
        if len(padding) != 4 or min(padding) < 0:
            raise ValueError(f"padding should be (left, top, right, bottom) of non-negative ints, "
                             f"but got padding={padding!r}")
        if not 0.0 <= flip <= 1.0:
            raise ValueError(f"flip should be a probability in [0, 1], but got flip={flip!r}")
        self.padding = tuple(int(p) for p in padding)
        self.flip = float(flip)
        self.generator = generator

    def _from_rows(self, source: torch.Tensor, rows: Sequence[int]) -> torch.Tensor:
        b, (h, w) = len(rows), source.shape[-2:]
        pl, pt, pr, pb = self.padding
        th, tw = self.size
        if th > h + pt + pb or tw > w + pl + pr:
            raise ValueError(f"RandomCrop size {self.size} is larger than the images ({h}x{w}) "
                             f"padded by {self.padding}")
        g = worker_generator(self.generator)
        top = (torch.randint(0, h + pt + pb - th + 1, (b,), generator=g) - pt).tolist()
        left = (torch.randint(0, w + pl + pr - tw + 1, (b,), generator=g) - pl).tolist()
        flips = (torch.rand(b, generator=g) < self.flip).tolist() if self.flip else [False] * b
        # NumPy slices of the [N, H, W, C] pixels copy a window ~5x faster than torch's
        # per-sample slicing or one advanced-index gather (256 CIFAR crops: 0.4 ms vs 2-6 ms)
        pixels = source.permute(0, 2, 3, 1).numpy()
        out = (np.zeros if any(self.padding) else np.empty)((b, th, tw, pixels.shape[3]),
                                                            dtype=pixels.dtype)
        for i, (row, y, x0, flip) in enumerate(zip(rows, top, left, flips, strict=True)):
            y1, x1 = max(y, 0), max(x0, 0)  # the window's part inside the image; the rest
            y2, x2 = min(y + th, h), min(x0 + tw, w)  # is torchvision's zero fill
            if y2 <= y1 or x2 <= x1:
                continue  # a window wholly in the padding: zeros
            window = pixels[row, y1:y2, x1:x2]
            if flip:  # mirrored: output column j is window column tw - 1 - j
                out[i, y1 - y : y2 - y, tw - (x2 - x0) : tw - (x1 - x0)] = window[:, ::-1]
            else:
                out[i, y1 - y : y2 - y, x1 - x0 : x2 - x0] = window
        batch = torch.from_numpy(out).permute(0, 3, 1, 2)
        return batch if _is_channels_last(source) else batch.contiguous()

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding}, flip={self.flip})"


class RandomResizedCrop(_RowTransform):
    """torchvision's ``RandomResizedCrop`` for a batch: a random box per sample, resized.

    Boxes are drawn as torchvision draws them (area fraction in ``scale``, log-uniform aspect
    in ``ratio``, ten tries then the centre crop); each box is resized to ``size`` with the
    kernel torchvision uses on a tensor (bilinear, antialiased, ``uint8`` in and out), so a
    sample's pixels equal ``v2.functional.resized_crop`` of the same box; ``pillow=True`` uses
    Pillow's, as torchvision does on a PIL image (bit-identical). The result is a new dense
    batch, channels last (``[B, H, W, C]`` memory) when the input is, as the packed stores give
    it: torch's kernel resizes that layout about twice as fast.

    Example:
        >>> x = torch.zeros(2, 3, 40, 60, dtype=torch.uint8)
        >>> RandomResizedCrop(16, generator=torch.Generator().manual_seed(0))(x).shape
        torch.Size([2, 3, 16, 16])
    """

    def __init__(self, size: int | Sequence[int], scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), *, pillow: bool = False,
                 generator: torch.Generator | None = None) -> None:
        if not (0 < scale[0] <= scale[1] and 0 < ratio[0] <= ratio[1]):
            raise ValueError(f"scale and ratio should be increasing positive ranges, but got "
                             f"scale={scale!r}, ratio={ratio!r}")
        self.size = _pair(size, "size")
        self.scale, self.ratio = scale, ratio
        self.pillow = pillow
        self.generator = generator

    def boxes(self, b: int, h: int, w: int) -> torch.Tensor:
        """Draw ``b`` boxes ``(x1, y1, x2, y2)`` in pixel edges for ``h`` × ``w`` images."""
        tries = _TRIES
        g = worker_generator(self.generator)
        area = h * w * torch.empty(b, tries).uniform_(*self.scale, generator=g)
        log_ratio = torch.empty(b, tries).uniform_(math.log(self.ratio[0]),
                                                   math.log(self.ratio[1]), generator=g)
        aspect = torch.exp(log_ratio)
        cw = torch.sqrt(area * aspect).round()
        ch = torch.sqrt(area / aspect).round()
        fits = (cw > 0) & (ch > 0) & (cw <= w) & (ch <= h)
        first = torch.where(fits.any(1), fits.float().argmax(1), -1)
        pick = first.clamp(min=0).view(-1, 1)
        cw, ch = cw.gather(1, pick).view(-1), ch.gather(1, pick).view(-1)
        cw, ch = self._fallback(first < 0, cw, ch, h, w)
        u = torch.rand(b, 2, generator=g)
        top = torch.floor(u[:, 0] * (h - ch + 1))
        left = torch.floor(u[:, 1] * (w - cw + 1))
        fallback = first < 0
        top = torch.where(fallback, torch.floor((h - ch) / 2), top)
        left = torch.where(fallback, torch.floor((w - cw) / 2), left)
        return torch.stack([left, top, left + cw, top + ch], dim=1)

    def box(self, h: int, w: int) -> tuple[int, int, int, int]:
        """Draw one box ``(x1, y1, x2, y2)`` for an ``h`` × ``w`` image, in Python scalars.

        The draws of ``boxes(1, h, w)`` in the same order and arithmetic (in float64, so a
        side may round one pixel apart); the tensor version costs ~0.3 ms for a single box,
        this one ~25 µs (:class:`datasets.DecodeRandomResizedCrop` draws one per image).

        Example:
            >>> RandomResizedCrop(8, scale=(1.0, 1.0), ratio=(1.0, 1.0)).box(10, 10)
            (0, 0, 10, 10)
        """
        g = worker_generator(self.generator)
        areas = torch.empty(_TRIES).uniform_(*self.scale, generator=g).tolist()
        logs = torch.empty(_TRIES).uniform_(math.log(self.ratio[0]), math.log(self.ratio[1]),
                                           generator=g).tolist()
        u_top, u_left = torch.rand(2, generator=g).tolist()
        for area, log_ratio in zip(areas, logs, strict=True):
            aspect = math.exp(log_ratio)
            cw, ch = round(math.sqrt(h * w * area * aspect)), round(math.sqrt(h * w * area / aspect))
            if 0 < cw <= w and 0 < ch <= h:
                top, left = math.floor(u_top * (h - ch + 1)), math.floor(u_left * (w - cw + 1))
                return left, top, left + cw, top + ch
        cw, ch = self._fallback_size(h, w)
        top, left = (h - ch) // 2, (w - cw) // 2
        return left, top, left + cw, top + ch

    def _fallback_size(self, h: int, w: int) -> tuple[int, int]:
        """torchvision's fallback ``(width, height)``: the centre crop within the ratios."""
        in_ratio = w / h
        if in_ratio < min(self.ratio):
            return w, round(w / min(self.ratio))
        if in_ratio > max(self.ratio):
            return round(h * max(self.ratio)), h
        return w, h

    def _fallback(self, none: torch.Tensor, cw: torch.Tensor, ch: torch.Tensor, h: int,
                  w: int) -> tuple[torch.Tensor, torch.Tensor]:
        """torchvision's fallback: the centre crop clamped to the ratio range."""
        fw, fh = self._fallback_size(h, w)
        return (torch.where(none, float(fw), cw), torch.where(none, float(fh), ch))

    def _from_rows(self, source: torch.Tensor, rows: Sequence[int]) -> torch.Tensor:
        h, w = source.shape[-2:]
        boxes = self.boxes(len(rows), h, w).to(torch.int64).tolist()
        out = _empty_batch(source, self.size, len(rows))
        # torch's uint8 antialiased kernel works channels last: a channels-last box (a view of
        # the store's [N, H, W, C] pixels) resizes about twice as fast as a channels-first one.
        channels_last = _is_channels_last(source)
        for i, (row, (x1, y1, x2, y2)) in enumerate(zip(rows, boxes, strict=True)):
            box = source[row : row + 1, :, y1:y2, x1:x2]
            if self.pillow:
                from datasets.batchops import pillow_resize  # batchops builds on this module

                out[i] = pillow_resize(box[0], self.size)
                continue
            if not channels_last:
                box = box.contiguous(memory_format=torch.channels_last)
            # the kernel torchvision's resized_crop uses (uint8, bilinear, antialiased)
            out[i] = torch.nn.functional.interpolate(
                box, size=self.size, mode="bilinear", antialias=True, align_corners=False)[0]
        return out

    def __repr__(self) -> str:
        return (f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={self.ratio}"
                f"{', pillow=True' if self.pillow else ''})")


class Compose(BatchTransform):
    """Chain batch transforms; the result is still a batch transform.

    Args:
        transforms: batch transforms applied left to right.
    """

    def __init__(self, transforms: Sequence[Callable[[torch.Tensor], torch.Tensor]]) -> None:
        for t in transforms:
            if not is_batch_transform(t):
                raise TypeError(
                    "datasets.transforms.Compose takes batch transforms only, but got "
                    f"{t!r}; use torchvision.transforms.v2.Compose for per-sample transforms"
                )
        self.transforms = list(transforms)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._rest(x, 0)

    def take(self, source: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        first = self.transforms[0] if self.transforms else None
        # (the constructor admits batch transforms only); a subclass's own __call__ rules
        if not isinstance(first, BatchTransform) or type(self).__call__ is not Compose.__call__:
            return self(gather(source, indices))
        return self._rest(first.take(source, indices), 1)

    def _rest(self, x: torch.Tensor, start: int) -> torch.Tensor:
        # whether x is a batch this call made (so it may be changed in place)
        owned = start > 0 and type(self.transforms[start - 1]) in _NEW_BATCH
        for t in self.transforms[start:]:
            if owned and type(t) is RandomHorizontalFlip:
                x = t.flip_(x)
            else:
                x = t(x)
            owned = type(t) in _NEW_BATCH
        return x

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


# The built-in transforms that always return a new tensor (never their input or a view of it);
# exact types: a subclass may override __call__.
_NEW_BATCH = (ToFloat, Normalize, RandomCrop, RandomResizedCrop, RandomHorizontalFlip)


def is_batch_transform(transform: Any) -> bool:
    """Return whether ``transform`` may be applied once to a whole batch."""
    return isinstance(transform, BatchTransform)
