"""compile_pipeline: a torchvision v1/v2 pipeline run as batch transforms equals torchvision's
per-sample output on the PIL images (exactly, or within 1/255 for resizes)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from datasets.batchops import Grayscale
from datasets.packeddataset import ImageBatch
from datasets.pipeline import compile_pipeline, pil_image
from datasets.transforms import BatchTransform

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261)


def _store(n: int = 6, h: int = 37, w: int = 45, c: int = 3, seed: int = 0) -> torch.Tensor:
    """Pixels as a packed store hands them: ``[N, H, W, C]`` memory viewed ``[N, C, H, W]``."""
    array = np.random.default_rng(seed).integers(0, 256, (n, h, w, c), dtype=np.uint8)
    return torch.from_numpy(array).permute(0, 3, 1, 2)


def _compare(transform: Any, source: torch.Tensor) -> float:
    """Largest difference (in 1/255 for uint8) of the batch run and torchvision on PIL images."""
    compiled = compile_pipeline(transform)
    assert isinstance(compiled, BatchTransform), transform
    rows = torch.tensor([3, 0, -1, 2])
    out = compiled.take(source, rows)
    refs = [transform(pil_image(source[int(i)])) for i in rows]
    ref = torch.stack([torch.as_tensor(r) for r in refs])
    assert out.shape == ref.shape and out.dtype == ref.dtype
    one = compiled(source[3])
    assert torch.equal(one, out[0])  # one image as in the batch
    assert type(one) is type(refs[0])  # v2.ToImage then v2 ops: a tv_tensors.Image
    scale = 255.0 if ref.dtype == torch.uint8 else 1.0
    return float((out.double() - ref.double()).abs().max()) / scale


EXACT = [
    T.ToTensor(),
    T.Compose([T.ToTensor(), T.Normalize(MEAN, STD)]),
    T.Compose([T.PILToTensor(), T.ConvertImageDtype(torch.float32), T.Normalize(MEAN, STD)]),
    T.Compose([T.CenterCrop(20), T.ToTensor(), T.Normalize(MEAN, STD), T.Normalize(0.5, 0.25)]),
    T.Compose([T.CenterCrop((50, 21)), T.PILToTensor()]),
    T.Compose([T.Pad(3), T.Grayscale(), T.ToTensor()]),
    T.Compose([T.Grayscale(num_output_channels=3), T.Pad((1, 2, 3, 4)), T.PILToTensor()]),
    T.Compose([T.RandomHorizontalFlip(p=1.0), T.ToTensor()]),
    T.Compose([T.RandomHorizontalFlip(p=0.0), T.ToTensor()]),
    v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]),
    v2.Compose([v2.PILToTensor(), v2.ConvertImageDtype(torch.float32)]),
    v2.Compose([v2.Grayscale(), v2.ToImage(), v2.CenterCrop(9), v2.Pad([2, 1]),
                v2.ToDtype(torch.float32, scale=False)]),
    v2.Compose([v2.ToImage(), v2.Resize(20), v2.CenterCrop(18), v2.ToDtype(torch.float32, scale=True)]),
    v2.Compose([v2.ToTensor(), v2.Normalize(MEAN, STD)]),
    v2.Compose([v2.Compose([v2.ToImage(), v2.RandomHorizontalFlip(1.0)]),
                v2.ToDtype(torch.float32, scale=True)]),
    # a crop the size of the padded image has one position: asymmetric padding, v1 and v2
    # (v2 keeps padding parsed as [left, right, top, bottom])
    v2.Compose([v2.RandomCrop((37 + 2 + 4, 45 + 1 + 3), padding=(1, 2, 3, 4)), v2.PILToTensor()]),
    T.Compose([T.RandomCrop((37 + 2 + 4, 45 + 1 + 3), padding=(1, 2, 3, 4)), T.PILToTensor()]),
    v2.Compose([v2.RandomCrop((37, 45 + 8), padding=(4, 0)), v2.PILToTensor()]),
    v2.Compose([v2.RandomCrop((37, 45 + 3), padding=(0, 0, 3, 0)), v2.PILToTensor()]),
    v2.Compose([v2.ToImage(), T.CenterCrop(20)]),  # a v1 op after ToImage: a plain tensor
]


@pytest.mark.parametrize("transform", EXACT, ids=lambda t: repr(t).replace("\n", ""))
def test_compiled_pixel_exact_pipelines_equal_torchvision_on_pil(transform: Any) -> None:
    assert _compare(transform, _store()) == 0.0


RESIZING = [
    T.Compose([T.Resize(20), T.CenterCrop(18), T.ToTensor(), T.Normalize((0.5,), (0.25,))]),
    T.Compose([T.Resize((30, 17)), T.PILToTensor()]),
    T.Compose([T.Resize(16, max_size=18), T.ToTensor()]),
    v2.Compose([v2.Resize(24), v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]),
]


def _smooth_store(n: int = 4, h: int = 300, w: int = 400) -> torch.Tensor:
    """Noise enlarged bicubic (photo-like gradients), as a store hands pixels."""
    images = [np.array(Image.fromarray(np.random.default_rng(i).integers(
        0, 256, (h // 8, w // 8, 3), dtype=np.uint8)).resize((w, h), Image.Resampling.BICUBIC))
        for i in range(n)]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)


@pytest.mark.parametrize("transform", RESIZING, ids=lambda t: repr(t).replace("\n", ""))
def test_compiled_resizes_of_a_pil_image_are_pillows_exactly(transform: Any) -> None:
    for channels in (1, 3):
        assert _compare(transform, _store(c=channels)) == 0.0


def test_compiled_resize_of_a_smooth_photo_is_pillows_exactly() -> None:
    # torch's uint8 kernel was 2 levels off Pillow's here (300 x 400 to 240 x 320)
    assert _compare(T.Compose([T.Resize(240), T.PILToTensor()]), _smooth_store()) == 0.0


def test_compiled_resize_of_a_tensor_is_torchvisions_tensor_kernel_exactly() -> None:
    tf = v2.Compose([v2.ToImage(), v2.Resize(240), v2.CenterCrop(200)])
    assert _compare(tf, _smooth_store()) == 0.0


def test_compiled_grayscale_is_pillows_integer_luma() -> None:
    pixels = _store(n=2)
    out = Grayscale()(pixels)
    ref = torch.stack([torch.as_tensor(np.array(pil_image(p).convert("L")))[None] for p in pixels])
    assert torch.equal(out, ref)


@pytest.mark.parametrize("transform", [
    T.Compose([T.RandomResizedCrop(16), T.ToTensor()]),
    v2.Compose([v2.RandomResizedCrop(16), v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True)]),
], ids=["v1", "v2"])
def test_compiled_random_resized_crop_equals_resized_crop_of_its_box(transform: Any) -> None:
    source = _store(n=4, h=40, w=60)
    compiled = compile_pipeline(transform)
    assert compiled is not None
    torch.manual_seed(5)
    out = compiled.take(source, torch.arange(4))
    torch.manual_seed(5)  # the same draws: the global RNG, as torchvision's transforms use
    boxes = compiled.transforms[0].boxes(4, 40, 60).to(torch.int64).tolist()
    for image, sample, (x1, y1, x2, y2) in zip(source, out, boxes, strict=True):
        crop = F.resized_crop(pil_image(image), y1, x1, y2 - y1, x2 - x1, [16, 16])
        ref = T.Compose(transform.transforms[1:])(crop)  # the pipeline's own conversion
        assert torch.equal(sample, ref)  # Pillow's kernel, as torchvision on a PIL image


@pytest.mark.parametrize("flip", [0.0, 1.0])
def test_compiled_random_crop_with_padding_is_a_window_of_the_padded_image(flip: float) -> None:
    source = _store(n=64, h=8, w=8)
    compiled = compile_pipeline(T.Compose([T.RandomCrop(8, padding=2),
                                           T.RandomHorizontalFlip(flip), T.PILToTensor()]))
    assert compiled is not None
    out = compiled.take(source, torch.arange(64))
    offsets = set()
    for image, sample in zip(source, out, strict=True):
        padded = torch.nn.functional.pad(image, (2, 2, 2, 2))
        padded = padded.flip(-1) if flip else padded  # a mirrored window of the padded image
        found = [(i, j) for i in range(5) for j in range(5)
                 if torch.equal(padded[:, i : i + 8, j : j + 8], sample)]
        assert found, "not a window of the zero-padded image"
        offsets.update(found)
    assert len(offsets) >= 15  # positions spread over the 5 x 5 of torchvision's draw


def test_compiled_flip_flips_about_half() -> None:
    source = _store(n=400, h=2, w=5)
    out = compile_pipeline(v2.Compose([v2.ToImage(), v2.RandomHorizontalFlip()])).take(  # type: ignore[union-attr]
        source, torch.arange(400))
    flipped = sum(torch.equal(o, s.flip(-1)) for o, s in zip(out, source, strict=True))
    assert 150 < flipped < 250


@pytest.mark.parametrize("transform, stopper", [
    (T.Compose([T.ColorJitter(0.4), T.ToTensor()]), "ColorJitter"),
    (T.Compose([T.Resize(20, interpolation=T.InterpolationMode.NEAREST), T.ToTensor()]), "Resize"),
    (T.Compose([T.RandomCrop(8, padding=2, padding_mode="reflect"), T.ToTensor()]), "RandomCrop"),
    (T.Compose([T.RandomCrop(8, padding=2, fill=3), T.ToTensor()]), "RandomCrop"),
    (T.Compose([T.ToTensor(), T.RandomHorizontalFlip()]), "RandomHorizontalFlip"),
    (v2.Compose([v2.ToImage(), v2.Grayscale(), v2.ToDtype(torch.float32, scale=True)]), "Grayscale"),
    (v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]), "ToDtype"),
    (T.Compose([T.Resize(20)]), "PIL image"),
    (T.Compose([T.Pad(-2), T.ToTensor()]), "Pad"),  # Pillow crops; torchvision runs it
    # antialias=None on a tensor is no antialiasing in torchvision (v1 and v2)
    (v2.Compose([v2.ToImage(), v2.Resize(20, antialias=None)]), "antialias=None"),
    (T.Compose([T.PILToTensor(), T.RandomResizedCrop(20, antialias=None)]), "antialias=None"),
    # max_size torchvision refuses when called: it raises its own error per sample
    (T.Compose([T.Resize((20, 30), max_size=40), T.PILToTensor()]), "max_size"),
    (v2.Compose([v2.Resize((20, 30), max_size=40), v2.PILToTensor()]), "max_size"),
    (T.Compose([T.Resize(20, max_size=20), T.PILToTensor()]), "max_size"),
    (lambda image: image, "function"),
])
def test_unrecognised_pipelines_do_not_compile_and_log_the_stopping_op(
        transform: Any, stopper: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="datasets.pipeline"):
        assert compile_pipeline(transform) is None
    assert "runs per sample" in caplog.text and stopper in caplog.text


def test_v2_random_crop_pads_where_torchvision_does() -> None:
    # padding=(0, 0, 3, 0) pads the right side only: no window has a zero top row
    source = _store(n=64, h=7, w=9)
    compiled = compile_pipeline(v2.Compose([v2.RandomCrop((7, 9), padding=(0, 0, 3, 0)),
                                            v2.PILToTensor()]))
    assert compiled is not None
    out = compiled.take(source, torch.arange(64))
    for image, sample in zip(source, out, strict=True):
        padded = torch.nn.functional.pad(image, (0, 3, 0, 0))
        assert any(torch.equal(padded[:, :, j : j + 9], sample) for j in range(4))


def test_compiled_random_crop_may_lie_wholly_in_the_padding() -> None:
    # RandomCrop(2, padding=4) of a 7 x 9 image: some windows miss the image (torchvision: zeros)
    torch.manual_seed(0)
    out = compile_pipeline(T.Compose([T.RandomCrop(2, padding=4), T.PILToTensor()])).take(  # type: ignore[union-attr]
        _store(n=200, h=7, w=9), torch.arange(200))
    assert out.shape == (200, 3, 2, 2) and bool((out.flatten(1) == 0).all(1).any())


def test_a_bug_in_compiling_is_raised_not_taken_for_an_unsupported_op(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from datasets import pipeline

    def broken(op: Any, stage: str) -> BatchTransform:
        raise AttributeError("a bug")

    monkeypatch.setitem(pipeline._PIXEL_OPS, "CenterCrop", broken)
    with pytest.raises(AttributeError, match="a bug"):
        compile_pipeline(T.Compose([T.CenterCrop(4), T.ToTensor()]))


# --- the packed stores run a user's torchvision pipeline -----------------------------------

def _colour_tree(root: Path, n: int = 8, h: int = 12, w: int = 10) -> Path:
    for i in range(n):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        rgb = np.random.default_rng(i).integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(folder / f"{i}.png")
    return root


def _torchvision_sample(path: str, transform: Any) -> Any:
    with Image.open(path) as image:
        return transform(image.convert("RGB"))


def test_letters_with_a_v1_to_tensor_pipeline_runs_batched() -> None:
    import loaders
    from datasets import open_dataset
    from loaders.letters import generate

    generate(loaders.dataset_dir("letters") / "letters.tar.gz", count=60, seed=0)
    tf = T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))])
    ds = open_dataset("letters", split="train", transform=tf)
    x, y = ds[0]  # issue 17: "pic should be PIL Image or ndarray. Got Tensor" before
    assert x.dtype == torch.float32 and x.shape == (1, 28, 28)
    assert torch.equal(x, tf(pil_image(ds.pixels[0].permute(2, 0, 1))))
    batch = ds.__getitems__([0, 1, 2])
    assert isinstance(batch, ImageBatch) and torch.equal(batch.images[0], x)


def test_packed_folder_runs_a_compiled_pipeline_batched_equal_to_torchvision(tmp_path: Path) -> None:
    from datasets import ImageFolderDataset

    root = _colour_tree(tmp_path / "t")
    tf = T.Compose([T.CenterCrop(8), T.ToTensor(), T.Normalize(MEAN, STD)])
    ds = ImageFolderDataset.pack(root, tf, cache_dir=tmp_path / "c")
    assert ds.transform is tf and ds.batched
    batch = ds.__getitems__([5, 0, 7])
    assert isinstance(batch, ImageBatch)
    for i, image in zip([5, 0, 7], batch.images, strict=True):
        ref = _torchvision_sample(ds.samples[i][0], tf)
        assert torch.equal(image, ref) and torch.equal(ds[i][0], ref)


@pytest.mark.parametrize("transform", [
    T.PILToTensor(), v2.Compose([v2.ToImage()]), T.Compose([T.Grayscale(), T.PILToTensor()]),
], ids=["PILToTensor", "ToImage", "Grayscale"])
def test_a_sample_is_its_own_tensor_never_a_view_of_the_store(
        transform: Any, tmp_path: Path) -> None:
    from datasets import ImageFolderDataset

    root = _colour_tree(tmp_path / "t", n=4)
    if "Grayscale" in repr(transform):  # one channel in, one out: the op returns its input
        ds = ImageFolderDataset.pack(root, transform, cache_dir=tmp_path / "c", mode="L")
    else:
        ds = ImageFolderDataset.pack(root, transform, cache_dir=tmp_path / "c")
    before = ds[0][0].clone()
    ds[0][0].zero_()  # torchvision's sample is the caller's own: writing it changes nothing
    batch = ds.__getitems__([0, 1])
    batch[0][0].zero_()
    assert torch.equal(ds[0][0], before) and int(before.max()) > 0
    stored = ds.pixels.untyped_storage().data_ptr()
    assert ds[1][0].untyped_storage().data_ptr() != stored


def test_packed_folder_follows_a_pipeline_edited_in_place(tmp_path: Path) -> None:
    from datasets import ImageFolderDataset

    root = _colour_tree(tmp_path / "t")
    tf = T.Compose([T.CenterCrop(8), T.ToTensor()])
    ds = ImageFolderDataset.pack(root, tf, cache_dir=tmp_path / "c")
    assert ds[0][0].shape == (3, 8, 8)  # compiled and cached
    tf.transforms.append(T.Normalize(MEAN, STD))
    tf.transforms[0].size = (6, 5)
    ref = _torchvision_sample(ds.samples[2][0], tf)
    assert torch.equal(ds[2][0], ref)
    assert torch.equal(ds.__getitems__([2]).images[0], ref)  # type: ignore[attr-defined]


def test_packed_folder_hands_an_uncompiled_pipeline_a_pil_image(tmp_path: Path) -> None:
    from datasets import ImageFolderDataset

    root = _colour_tree(tmp_path / "t")
    tf = T.Compose([T.ColorJitter(brightness=(0.5, 0.5)), T.ToTensor()])  # fixed factor
    ds = ImageFolderDataset.pack(root, tf, cache_dir=tmp_path / "c")
    assert not ds.batched
    x, _ = ds[3]
    assert torch.equal(x, _torchvision_sample(ds.samples[3][0], tf))


def test_compiled_random_ops_differ_across_dataloader_workers(tmp_path: Path) -> None:
    from datasets import ImageFolderDataset

    root = _colour_tree(tmp_path / "t", n=8, h=16, w=16)
    tf = T.Compose([T.RandomCrop(8, padding=4), T.RandomHorizontalFlip(), T.PILToTensor()])
    ds = ImageFolderDataset.pack(root, tf, cache_dir=tmp_path / "c")
    # both workers fetch the same 8 rows: their crops must not repeat each other's
    loader = torch.utils.data.DataLoader(ds, batch_size=8, sampler=list(range(8)) * 2,
                                         num_workers=2)
    first, second = (x for x, _ in loader)
    assert first.shape == (8, 3, 8, 8) and not torch.equal(first, second)


def test_variable_store_decodes_a_leading_random_resized_crop(tmp_path: Path) -> None:
    from datasets import DecodeRandomResizedCrop, ImageFolderDataset, VariableImageFolder

    root = _colour_tree(tmp_path / "t", n=4, h=40, w=60)
    _colour_tree(tmp_path / "t" / "c", n=2, h=30, w=50)  # another size: the variable store
    tf = v2.Compose([v2.RandomResizedCrop(16), v2.RandomHorizontalFlip(), v2.ToImage(),
                     v2.ToDtype(torch.float32, scale=True)])
    ds = ImageFolderDataset.pack(root, tf, cache_dir=tmp_path / "c")
    assert isinstance(ds, VariableImageFolder) and isinstance(ds.decoder, DecodeRandomResizedCrop)
    assert ds.decoder.size == (16, 16) and ds.decoder.flip == 0.5  # the flip folded in
    batch = ds.__getitems__(range(len(ds)))
    assert isinstance(batch, ImageBatch) and batch.images.shape == (len(ds), 3, 16, 16)
    assert batch.images.dtype == torch.float32 and float(batch.images.max()) <= 1.0


def _jpeg_tree(root: Path) -> Path:
    """Smooth JPEGs (noise enlarged bicubic) big enough for libjpeg's reduced decode."""
    for i, (w, h) in enumerate([(400, 300), (480, 360)]):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        noise = np.random.default_rng(i).integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
        Image.fromarray(noise).resize((w, h), Image.Resampling.BICUBIC).save(
            folder / f"{i}.jpg", quality=90)
    return root


def test_variable_store_derived_crop_decoder_equals_torchvision(
        tmp_path: Path) -> None:
    from datasets import ImageFolderDataset

    root = _jpeg_tree(tmp_path / "t")
    # the whole image as the box (scale 1, its ratio): torchvision's sample is determined
    tf = v2.Compose([v2.RandomResizedCrop(32, scale=(1, 1), ratio=(4 / 3, 4 / 3)),
                     v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    ds = ImageFolderDataset.pack(root, tf, cache_dir=tmp_path / "c")
    assert ds.decoder is not None
    for i in range(len(ds)):  # a 1/4 draft decode was 3-4 levels off
        ref = _torchvision_sample(ds.samples[i][0], tf)
        assert torch.equal(ds[i][0], ref)  # full decode, Pillow's resize: bit-identical
    assert not ds.decoder.draft


def test_variable_store_follows_a_replaced_transform(tmp_path: Path) -> None:
    from datasets import DecodeRandomResizedCrop, ImageFolderDataset, ToFloat

    root = _jpeg_tree(tmp_path / "t")
    ds = ImageFolderDataset.pack(root, v2.Compose([v2.RandomResizedCrop(32), v2.ToImage()]),
                                 cache_dir=tmp_path / "c")
    assert ds.decoder is not None and ds.decoder.size == (32, 32)
    ds.transform = v2.Compose([v2.Resize((20, 24)), v2.ToImage()])  # as val_ds.transform = ...
    assert ds.decoder is None and ds[0][0].shape == (3, 20, 24)
    ds.transform = v2.Compose([v2.RandomResizedCrop(12), v2.PILToTensor()])
    assert ds.decoder is not None and ds[1][0].shape == (3, 12, 12)
    ds.transform = T.ToTensor()
    assert torch.equal(ds[0][0], _torchvision_sample(ds.samples[0][0], T.ToTensor()))
    mine = DecodeRandomResizedCrop(16)
    own = ImageFolderDataset.pack(root, ToFloat(), cache_dir=tmp_path / "c", decoder=mine)
    own.transform = v2.Compose([v2.RandomResizedCrop(8), v2.ToImage()])
    assert own.decoder is mine  # the user's decoder= stays; the transform runs on its crop
    assert own[0][0].shape == (3, 8, 8)


def test_uncached_image_folder_runs_a_v1_pipeline_on_pil_as_torchvision(tmp_path: Path) -> None:
    from torchvision import datasets as tv_datasets

    from datasets import ImageFolderDataset

    root = _colour_tree(tmp_path / "t", n=4, h=40, w=30)
    tf = T.Compose([T.Resize(16), T.ToTensor()])  # issue 17: "pic should be PIL Image" before
    ours, theirs = ImageFolderDataset(root, transform=tf), tv_datasets.ImageFolder(str(root), tf)
    for i in range(len(theirs)):
        assert torch.equal(ours[i][0], theirs[i][0])  # per sample on PIL: bit-identical
