"""Run a user's torchvision pipeline as batch transforms: :func:`compile_pipeline`.

A torchvision user passes ``transform=`` a v1 or v2 pipeline written for PIL images. The packed
stores hold ``uint8`` pixels, so the common pipelines compile to the equivalent
:class:`datasets.transforms.BatchTransform` and run once per batch (``__getitems__``), or on the
one image (``__getitem__``). Recognised, as a bare transform or (nested) ``Compose``, v1 and v2:

- to tensors: ``ToTensor``, ``PILToTensor``, ``ToImage``, ``ToDtype(torch.float32, scale=...)``,
  ``ConvertImageDtype(torch.float32)``, then ``Normalize`` (bit-identical floats);
- on pixels: ``Resize`` (bilinear, antialiased), ``CenterCrop``, ``Pad`` (``fill=0``,
  ``"constant"``), ``RandomCrop`` (with ``padding``, not ``pad_if_needed``),
  ``RandomResizedCrop`` (bilinear), ``RandomHorizontalFlip``, ``Grayscale`` (on the PIL
  image, before any tensor conversion).

The result equals torchvision's on the PIL image, bit for bit: a resize of the PIL image runs
Pillow's own filter per image (:func:`datasets.batchops.pillow_resize`), one of a tensor (after
``ToImage``) torch's ``uint8`` kernel, as torchvision does. The random
ops draw from torch's global RNG as torchvision's do (``DataLoader`` seeds it per worker), with
torchvision's distributions, though not its exact draws. A pipeline that ends on a PIL image
(no tensor conversion), or holds anything else (another op, another interpolation or fill,
``Grayscale`` of a tensor...), is not compiled: the dataset runs it per sample on a PIL image,
as torchvision does (:func:`pil_image`), and a DEBUG log line names the op that stopped it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image

from datasets.batchops import (
    AsImage,
    CenterCrop,
    ConvertFloat,
    Copy,
    Grayscale,
    Pad,
    Resize,
    Scaling,
    ltrb,
)
from datasets.cropdecode import DecodeRandomResizedCrop
from datasets.transforms import (
    BatchTransform,
    Compose,
    RandomCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
)

log = logging.getLogger(__name__)

__all__ = ["compile_pipeline", "crop_decoder", "pil_image", "signature"]

# The stages of a pipeline: a PIL image, a uint8 tensor, a float32 tensor.
PIL, UINT8, FLOAT = "PIL image", "uint8 tensor", "float32 tensor"


class _Unsupported(ValueError):
    """Raised inside :func:`compile_pipeline` by an op it cannot honour exactly (never escapes)."""


def compile_pipeline(transform: Any) -> BatchTransform | None:
    """Return the batch transform equal to torchvision ``transform`` on a PIL image, or ``None``.

    ``None`` when any op is not recognised or has a parameter it cannot honour exactly (see the
    module docstring), or when the pipeline's result is a PIL image; a DEBUG log line then says
    which op stopped the batching.

    Example:
        >>> from torchvision.transforms import v2
        >>> compile_pipeline(v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]))
        Compose([ConvertFloat(scaling='mul', normalize=[]), AsImage()])
        >>> compile_pipeline(v2.ColorJitter(0.5)) is None
        True
    """
    ops: list[BatchTransform] = []
    stage, image = PIL, False
    for op in _flattened(transform):
        # torchvision returns a tv_tensors.Image after v2.ToImage and v2 ops only (a v1 op's
        # result is a plain tensor)
        image = _name(op) == "ToImage" or (image and _is_v2(op))
        try:
            stage = _add(op, stage, ops)
        except _Unsupported as why:  # only our refusal: a bug in this module still raises
            log.debug("transform %r runs per sample: %r stops the batching (%s)", transform, op, why)
            return None
    if stage == PIL:
        log.debug("transform %r runs per sample: it returns a PIL image", transform)
        return None
    if not ops:  # only a conversion (PILToTensor, ToImage): never hand out the store's memory
        ops.append(Copy())
    if image:
        ops.append(AsImage())
    return Compose(ops)


def signature(transform: Any) -> tuple[Any, ...]:
    """What :func:`compile_pipeline`'s result depends on: the ops (by identity) and the public
    attributes of the torchvision ones, so a cached compilation notices a parameter or an op
    changed in place (``tf.transforms.append(...)``, ``op.p = 0.0``). About 15 µs.

    Example:
        >>> from torchvision import transforms as T
        >>> tf = T.Compose([T.ToTensor()])
        >>> before = signature(tf); tf.transforms.append(T.Normalize(0.5, 0.5))
        >>> signature(tf) == before
        False
    """
    return tuple((id(op), tuple((k, repr(v)) for k, v in vars(op).items() if k[0] != "_")
                  if _name(op) else ()) for op in _flattened(transform))


def pil_image(image: torch.Tensor) -> Image.Image:
    """``uint8`` ``[C, H, W]`` (1 or 3 channels) as the PIL image torchvision would load.

    Example:
        >>> pil_image(torch.zeros(1, 2, 3, dtype=torch.uint8)).mode, pil_image(torch.zeros(3, 2, 3, dtype=torch.uint8)).size
        ('L', (3, 2))
    """
    array = np.array(image.permute(1, 2, 0).numpy(), copy=True)  # never a view of a store
    return Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)


def crop_decoder(compiled: BatchTransform | None
                 ) -> tuple[DecodeRandomResizedCrop, BatchTransform] | None:
    """Split a compiled pipeline that starts with ``RandomResizedCrop`` into the crop-aware
    decoder of the same box distribution (a ``RandomHorizontalFlip`` right after it becomes
    the decoder's ``flip``) and the rest; ``None`` for any other.

    The decoder decodes at full resolution (``draft=False``) and resizes with the compiled
    crop's kernel (Pillow's on a PIL image): its samples are the compiled pipeline's. The faster reduced JPEG decode is a choice the
    user makes with an explicit ``decoder=``.

    Example:
        >>> from torchvision import transforms as T
        >>> crop_decoder(compile_pipeline(T.Compose([T.RandomResizedCrop(64), T.ToTensor()])))
        (DecodeRandomResizedCrop(size=(64, 64), scale=(0.08, 1.0), ratio=(0.75, 1.3333333333333333), flip=0.0, draft=False, pillow=True), Compose([ConvertFloat(scaling='div', normalize=[])]))
    """
    if not isinstance(compiled, Compose) or not compiled.transforms:
        return None
    first = compiled.transforms[0]
    if type(first) is not RandomResizedCrop:
        return None
    rest = compiled.transforms[1:]
    flip = 0.0
    if rest and type(rest[0]) is RandomHorizontalFlip:  # the decoder mirrors as it resizes
        flip, rest = rest[0].p, rest[1:]
    decoder = DecodeRandomResizedCrop(first.size, first.scale, first.ratio, flip=flip,
                                      draft=False, pillow=first.pillow,
                                      generator=first.generator)
    return decoder, Compose(rest)


def _flattened(transform: Any) -> list[Any]:
    if _name(transform) == "Compose":
        return [op for inner in transform.transforms for op in _flattened(inner)]
    return [transform]


def _name(op: Any) -> str:
    """The class name of a torchvision v1 or v2 transform, else ``""`` (subclasses excluded)."""
    module = type(op).__module__
    if module.startswith(("torchvision.transforms.transforms", "torchvision.transforms.v2.")):
        return type(op).__name__
    return ""


def _is_v2(op: Any) -> bool:
    return type(op).__module__.startswith("torchvision.transforms.v2.")


def _add(op: Any, stage: str, ops: list[BatchTransform]) -> str:
    """Append ``op``'s batch equivalent to ``ops``; return the stage after it."""
    name = _name(op)
    if name in _CONVERSIONS:
        return _CONVERSIONS[name](op, stage, ops)
    if name == "Normalize":
        if stage != FLOAT or not isinstance(ops[-1], ConvertFloat):
            raise _Unsupported(f"Normalize of a {stage}")
        if not all(float(s) != 0 for s in _floats(op.std)):
            raise _Unsupported("std has a zero")
        ops[-1].normalize.extend(ConvertFloat("none", [(op.mean, op.std)]).normalize)
        return stage
    if name not in _PIXEL_OPS:
        raise _Unsupported("not a recognised op")
    if stage == FLOAT:
        raise _Unsupported(f"{name} of a float tensor")
    if (name == "RandomHorizontalFlip" and ops and type(ops[-1]) is RandomCrop
            and not ops[-1].flip and 0.0 <= float(op.p) <= 1.0):
        ops[-1].flip = float(op.p)  # the crop mirrors its windows as it gathers them
        return stage
    if name == "Grayscale" and stage != PIL:
        raise _Unsupported("Grayscale of a tensor (torchvision's tensor kernel, not Pillow's)")
    try:
        ops.append(_PIXEL_OPS[name](op, stage))
    except _Unsupported:
        raise
    except ValueError as err:  # a parameter our op refuses and torchvision takes (Pillow
        raise _Unsupported(str(err)) from err  # crops for a negative Pad): run per sample
    return stage


def _floats(value: Any) -> list[float]:
    return [float(value)] if isinstance(value, (int, float)) else [float(v) for v in value]


def _to_uint8(op: Any, stage: str, ops: list[BatchTransform]) -> str:
    if stage != PIL:
        raise _Unsupported(f"expects a PIL image, but gets a {stage}")
    return UINT8


def _to_tensor(op: Any, stage: str, ops: list[BatchTransform]) -> str:
    if stage != PIL or torch.get_default_dtype() != torch.float32:
        raise _Unsupported(f"ToTensor of a {stage} (or a default dtype other than float32)")
    return _to_float(ops, "div")


def _to_dtype(op: Any, stage: str, ops: list[BatchTransform]) -> str:
    name = _name(op)
    scale = True if name == "ConvertImageDtype" else bool(getattr(op, "scale", False))
    if op.dtype is not torch.float32 or stage != UINT8:
        raise _Unsupported(f"{name} to {op.dtype} of a {stage} (float32 of a uint8 tensor only)")
    if not scale:
        return _to_float(ops, "none")
    return _to_float(ops, "mul" if _is_v2(op) else "div")  # F.convert_image_dtype divides, v2 multiplies


def _to_float(ops: list[BatchTransform], scaling: Scaling) -> str:
    ops.append(ConvertFloat(scaling))
    return FLOAT


_CONVERSIONS: dict[str, Callable[[Any, str, list[BatchTransform]], str]] = {
    "ToTensor": _to_tensor, "PILToTensor": _to_uint8, "ToImage": _to_uint8,
    "ToDtype": _to_dtype, "ConvertImageDtype": _to_dtype,
}


def _check_bilinear(op: Any, stage: str) -> None:
    mode = getattr(op.interpolation, "value", op.interpolation)
    if mode not in ("bilinear", Image.Resampling.BILINEAR):
        raise _Unsupported(f"interpolation={mode!r} (bilinear only)")
    # on a tensor, torchvision antialiases only for antialias=True (None means False there)
    if stage != PIL and op.antialias is not True:
        raise _Unsupported(f"antialias={op.antialias!r} on a tensor (True only)")


def _check_fill(op: Any) -> None:
    fill, mode = getattr(op, "fill", 0), getattr(op, "padding_mode", "constant")
    if mode != "constant" or not isinstance(fill, (int, float)) or fill != 0:
        raise _Unsupported(f"fill={fill!r}, padding_mode={mode!r} (0 and 'constant' only)")


def _resize(op: Any, stage: str) -> BatchTransform:
    _check_bilinear(op, stage)
    if op.size is None:
        raise _Unsupported("size=None")
    sizes = [op.size] if isinstance(op.size, int) else list(op.size)
    # torchvision raises for these when called: per sample, so its own error reaches the user
    if op.max_size is not None and (len(sizes) != 1 or op.max_size <= sizes[0]):
        raise _Unsupported(f"max_size={op.max_size!r} with size={op.size!r} (torchvision "
                           f"refuses it)")
    return Resize(op.size, max_size=op.max_size, pillow=stage == PIL)


def _random_crop(op: Any, stage: str) -> BatchTransform:
    _check_fill(op)
    if op.pad_if_needed:
        raise _Unsupported("pad_if_needed=True")
    if op.padding is None:
        return RandomCrop(op.size)
    if _is_v2(op):
        left, right, top, bottom = op.padding  # v2 keeps it parsed as [l, r, t, b]
        return RandomCrop(op.size, padding=ltrb([left, top, right, bottom]))
    return RandomCrop(op.size, padding=ltrb(op.padding))  # v1 keeps the argument as given


def _pad(op: Any, stage: str) -> BatchTransform:
    _check_fill(op)
    return Pad(ltrb(op.padding))


def _random_resized_crop(op: Any, stage: str) -> BatchTransform:
    _check_bilinear(op, stage)
    return RandomResizedCrop(op.size, tuple(op.scale), tuple(op.ratio), pillow=stage == PIL)


_PIXEL_OPS: dict[str, Callable[[Any, str], BatchTransform]] = {
    "Resize": _resize,
    "CenterCrop": lambda op, stage: CenterCrop(op.size),
    "Pad": _pad,
    "RandomCrop": _random_crop,
    "RandomResizedCrop": _random_resized_crop,
    "RandomHorizontalFlip": lambda op, stage: RandomHorizontalFlip(op.p),
    "Grayscale": lambda op, stage: Grayscale(op.num_output_channels),
}
