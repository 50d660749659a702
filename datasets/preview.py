"""Look at the data before training: a labelled grid of random samples saved as PNG.

``python -m datasets.preview cifar10 --out grid.png`` (any catalog name or image folder) or,
from Python, ``datasets.preview.save_grid(dataset, "grid.png")``. Images are laid out with
torchvision's ``make_grid`` and every cell gets its class name drawn with Pillow. ``uint8``
images (what the CLI reads: the stored pixels) are drawn as they are, in colour; float images
(a dataset's transformed output) are each stretched to their own min..max, so normalized
tensors display well. Images of different sizes are each fitted, aspect kept, into a square
cell.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch.utils.data import Dataset
from torchvision.transforms.functional import pil_to_tensor, to_pil_image
from torchvision.utils import make_grid

from datasets.errors import DataFormatError, DatasetError
from datasets.folders import shown
from datasets.report import add_source_arguments, configure_logging, open_splits
from datasets.splits import _unwrap
from datasets.transforms import BatchTransform

log = logging.getLogger(__name__)

_PADDING = 2
_CELL = 96  # side of a cell when the images differ in size


class _StoredPixels(BatchTransform):
    """The identity: the dataset hands over its stored ``uint8`` pixels for drawing."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _image_and_label(sample: Any, index: int) -> tuple[torch.Tensor, Any]:
    if isinstance(sample, dict):
        image = sample.get("image", sample.get("pixel_values"))
        label = sample.get("label", sample.get("labels"))
    elif isinstance(sample, (tuple, list)) and len(sample) >= 2:
        image, label = sample[0], sample[1]
    else:
        image, label = sample, None
    if isinstance(image, Image.Image):
        image = pil_to_tensor(image)
    elif isinstance(image, np.ndarray):
        image = torch.from_numpy(image)
    if not isinstance(image, torch.Tensor) or image.ndim not in (2, 3):
        got = (f"a dict with keys {sorted(sample)}" if isinstance(sample, dict) else
               f"{type(image).__name__}{list(getattr(image, 'shape', []))}")
        raise DataFormatError(
            f"expected an image (tensor [C,H,W] or [H,W], PIL image) at index {index} but got "
            f"{got}; preview draws image datasets only"
        )
    image = image.unsqueeze(0) if image.ndim == 2 else image
    return image, label


def save_grid(
    dataset: Dataset[Any],
    path: str | os.PathLike[str],
    *,
    count: int = 64,
    nrow: int = 8,
    seed: int = 0,
    scale: int = 3,
) -> Path:
    """Save a labelled grid of ``count`` random samples of an image dataset.

    Args:
        dataset: yields ``(image, label)`` (image a tensor ``[C,H,W]``/``[H,W]`` or PIL image)
            or dicts with ``image``/``label``; class names come from ``.classes`` (also
            through ``Subset``s).
        path: the PNG to write (its folder is created).
        count: how many samples (at most the dataset's size).
        nrow: images per row.
        seed: seeds a private generator that picks the samples.
        scale: enlarge each image this many times (nearest neighbour) so labels fit.

    Returns:
        The written path.

    Raises:
        DataFormatError: the samples are not images.
        ValueError: ``count``, ``nrow`` or ``scale`` is not positive, or the dataset is empty.

    Example:
        >>> import torch
        >>> data = [(torch.rand(1, 28, 28), i % 3) for i in range(10)]
        >>> import pathlib, tempfile
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "grid.png"
        >>> save_grid(data, out, count=6, nrow=3) == out
        True
    """
    canvas = _render_grid(dataset, count=count, nrow=nrow, seed=seed, scale=scale)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, format="PNG")
    log.info("saved a grid of %d samples to %s", min(count, len(dataset)), path)  # type: ignore[arg-type]
    return path


def _render_grid(dataset: Dataset[Any], *, count: int, nrow: int, seed: int, scale: int
                 ) -> Image.Image:
    for arg, value in (("count", count), ("nrow", nrow), ("scale", scale)):
        if value < 1:
            raise ValueError(f"{arg} should be a positive int, but got {arg}={value}")
    n = len(dataset)  # type: ignore[arg-type]
    if n == 0:
        raise ValueError("dataset should not be empty, but it has 0 items")
    g = torch.Generator().manual_seed(seed)
    picked = torch.randperm(n, generator=g)[: min(count, n)].tolist()
    pairs = [_image_and_label(dataset[i], i) for i in picked]
    batch = _batch([image for image, _ in pairs], scale)
    stored = all(image.dtype == torch.uint8 for image, _ in pairs)
    if stored:  # drawn as they are: antialiased resizing may overshoot [0, 1] a little
        batch = batch.clamp(0, 1)
    grid = make_grid(batch, nrow=nrow, padding=_PADDING, normalize=not stored, scale_each=True,
                     pad_value=0.5)
    canvas = to_pil_image(grid).convert("RGB")
    _draw_labels(canvas, [label for _, label in pairs], getattr(_unwrap(dataset)[0], "classes", None),
                 cell=(batch.shape[-2], batch.shape[-1]), nrow=nrow)
    return canvas


def _batch(images: list[torch.Tensor], scale: int) -> torch.Tensor:
    """Stack images as float ``[B, C, H, W]`` (uint8 scaled to [0, 1]); fit mixed sizes in cells."""
    channels = max(image.shape[0] for image in images)
    floats = [(image.float() / 255 if image.dtype == torch.uint8 else image.float())
              .expand(channels, -1, -1) for image in images]
    if len({tuple(x.shape) for x in floats}) == 1:
        batch = torch.stack(floats)
        if scale > 1:
            batch = torch.nn.functional.interpolate(batch, scale_factor=scale, mode="nearest")
        return batch
    return torch.stack([_fit(x, _CELL) for x in floats])


def _fit(image: torch.Tensor, side: int) -> torch.Tensor:
    """Resize ``[C, H, W]`` so its longer side is ``side``, centred on a grey square."""
    h, w = image.shape[-2:]
    new_h, new_w = max(1, round(h * side / max(h, w))), max(1, round(w * side / max(h, w)))
    resized = torch.nn.functional.interpolate(image[None], size=(new_h, new_w), mode="bilinear",
                                              antialias=True, align_corners=False)[0]
    cell = torch.full((image.shape[0], side, side), 0.5)
    top, left = (side - new_h) // 2, (side - new_w) // 2
    cell[:, top:top + new_h, left:left + new_w] = resized
    return cell


def _draw_labels(
    canvas: Image.Image, labels: list[Any], classes: Sequence[Any] | None, *,
    cell: tuple[int, int], nrow: int,
) -> None:
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=max(10, cell[0] // 6))
    height, width = cell
    for k, label in enumerate(labels):
        if label is None:
            continue
        if isinstance(label, torch.Tensor):
            label = label.item()
        text = shown(str(classes[label]) if classes and isinstance(label, int) else str(label))
        row, col = divmod(k, nrow)
        x = col * (width + _PADDING) + _PADDING + 1
        y = row * (height + _PADDING) + _PADDING + 1
        box = draw.textbbox((x, y), text, font=font)
        draw.rectangle((box[0] - 1, box[1] - 1, box[2] + 1, box[3] + 1), fill=(0, 0, 0))
        draw.text((x, y), text, fill=(255, 220, 0), font=font)


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m datasets.preview",
        description="Save a labelled grid of random samples of an image dataset as a PNG.",
        epilog="examples:\n  python -m datasets.preview notmnist --out grid.png\n"
        "  python -m datasets.preview cifar10 --download --split test --out cifar.png\n"
        "  python -m datasets.preview ~/Pictures/my-photos --out photos.png --count 32",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", help="catalog name (python -m datasets.report --list shows them), "
                        "image folder or its archive, folder of train/ val/ image folders, or "
                        "IDX folder")
    parser.add_argument("--out", required=True, help="the PNG file to write")
    parser.add_argument("--count", type=int, default=64, help="number of samples (default 64)")
    parser.add_argument("--nrow", type=int, default=8, help="images per row (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="which samples (default 0)")
    add_source_arguments(parser, split_help="split to draw from (default: the first found)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Save the grid; return 0 on success, 1 on a dataset or loader error, 2 on usage errors.

    Ctrl-C returns 130 after one line (a download resumes from its ``.part`` file when run again).

    An unknown dataset name is a usage error (2; the message suggests the nearest names, as
    ``loaders.download`` does). Returns 141 (128 + SIGPIPE), without a message, when stdout is closed early.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.count < 1 or args.nrow < 1:
        parser.error(f"--count and --nrow should be positive, but got {args.count} and {args.nrow}")
    if not args.out.strip():  # Path("") is the current folder, not a file to write
        parser.error(f"--out should be a PNG file path, but got {args.out!r}")
    configure_logging(args)
    from loaders.closed_stdout import closed_stdout_exit
    from loaders.errors import LoaderError, UnknownDatasetError
    from loaders.interrupt import EXIT_INTERRUPTED, command_line, interrupted_line

    try:
        splits = open_splits(args.name, root=args.root, split=args.split, download=args.download,
                             transform=_StoredPixels())
        split_name, dataset = next(iter(splits.items()))
        canvas = _render_grid(dataset, count=args.count, nrow=args.nrow, seed=args.seed, scale=3)
    except KeyboardInterrupt:
        print(interrupted_line(command_line("datasets.preview", argv)), file=sys.stderr)
        return EXIT_INTERRUPTED
    except UnknownDatasetError as err:  # a typo: a usage error, as in loaders.download
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (DatasetError, LoaderError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except ValueError as err:  # a --split this dataset does not have: a usage error
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        canvas.save(out, format="PNG")
    except (OSError, ValueError) as err:  # ValueError: Pillow knows no format for the name
        print(f"error: cannot write the grid to {out} ({err}); pass --out a .png path in a "
              "writable folder", file=sys.stderr)
        return 1
    try:
        print(f"saved {min(args.count, len(dataset))} samples of {args.name} [{split_name}] "  # type: ignore[arg-type]
              f"to {out}", flush=True)
    except BrokenPipeError:  # the reader went away: the grid is saved, exit quietly, 141
        return closed_stdout_exit()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
