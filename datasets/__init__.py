"""dataferry datasets: map-style image and text datasets, a packed cache, fast loading.

The classes that mirror torchvision's (``MNIST``, ``FashionMNIST``, ``KMNIST``, ``EMNIST``,
``CIFAR10``, ``CIFAR100``, ``ImageFolder``) subclass its ``VisionDataset``: they are imported
on first use (PEP 562), so ``import datasets`` does not import torchvision.
"""

import importlib

from datasets.catalog import CatalogEntry, open_dataset
from datasets.collate import PadCollate, SkipNoneCollate, pad_collate, skip_none_collate
from datasets.cropdecode import DecodeRandomResizedCrop
from datasets.errors import (
    CollateError,
    DataFormatError,
    DatasetError,
    DatasetNotFoundError,
    MirrorNotFoundError,
    PackedCacheError,
    ShardError,
)
from datasets.idx import IDXDataset
from datasets.images import (
    ImageBatch,
    ImageFolderDataset,
    PackedImageDataset,
    PackedImageFolder,
    VariableImageFolder,
)
from datasets.loader import DataLoader
from datasets.notmnist import NotMNIST
from datasets.pipeline import compile_pipeline
from datasets.samplers import BalancedSampler, BucketBatchSampler, ShardedEvalSampler
from datasets.shardwriter import verify_shards, write_shards
from datasets.splits import OverlapReport, overlap_report, random_split
from datasets.streaming import StreamingDataset, StreamingSampler
from datasets.text import LabelEncoder, TextClassificationDataset
from datasets.textfeatures import BagOfNgrams, FeatureConfig
from datasets.textfolder import TextFolderDataset
from datasets.textpack import PackedTextDataset
from datasets.transforms import (
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    ToFloat,
)
from datasets.variable import VariableImageDataset
from datasets.vocab import Vocab, WordTokenizer, tokenize

__all__ = [
    "BagOfNgrams",
    "BalancedSampler",
    "BucketBatchSampler",
    "CIFAR10",
    "CIFAR100",
    "CatalogEntry",
    "CollateError",
    "DataFormatError",
    "DataLoader",
    "DatasetError",
    "DatasetNotFoundError",
    "DecodeRandomResizedCrop",
    "EMNIST",
    "FashionMNIST",
    "FeatureConfig",
    "IDXDataset",
    "ImageBatch",
    "ImageFolder",
    "ImageFolderDataset",
    "KMNIST",
    "LabelEncoder",
    "MNIST",
    "MirrorNotFoundError",
    "Normalize",
    "NotMNIST",
    "OverlapReport",
    "PackedCacheError",
    "PackedImageDataset",
    "PackedImageFolder",
    "PackedTextDataset",
    "PadCollate",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "ShardError",
    "ShardedEvalSampler",
    "SkipNoneCollate",
    "StreamingDataset",
    "StreamingSampler",
    "TextClassificationDataset",
    "TextFolderDataset",
    "ToFloat",
    "VariableImageDataset",
    "VariableImageFolder",
    "Vocab",
    "WordTokenizer",
    "compile_pipeline",
    "open_dataset",
    "overlap_report",
    "pad_collate",
    "random_split",
    "skip_none_collate",
    "tokenize",
    "verify_shards",
    "write_shards",
]


# name -> module of the torchvision mirror classes, imported on first use
_LAZY = {
    "CIFAR10": "datasets.cifarmirror",
    "CIFAR100": "datasets.cifarmirror",
    "EMNIST": "datasets.mnist",
    "FashionMNIST": "datasets.mnist",
    "ImageFolder": "datasets.imagefolder",
    "KMNIST": "datasets.mnist",
    "MNIST": "datasets.mnist",
}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'datasets' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # imported once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
