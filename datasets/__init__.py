"""dataferry datasets: map-style image and text datasets, a packed cache, fast loading."""

from datasets.catalog import CatalogEntry, open_dataset
from datasets.cifarmirror import CIFAR10, CIFAR100
from datasets.collate import PadCollate, SkipNoneCollate, pad_collate, skip_none_collate
from datasets.cropdecode import DecodeRandomResizedCrop
from datasets.errors import (
    CollateError,
    DataFormatError,
    DatasetError,
    DatasetNotFoundError,
    PackedCacheError,
    ShardError,
)
from datasets.idx import IDXDataset
from datasets.images import (
    ImageBatch,
    ImageFolder,
    ImageFolderDataset,
    PackedImageDataset,
    PackedImageFolder,
    VariableImageFolder,
)
from datasets.loader import DataLoader
from datasets.mnist import EMNIST, KMNIST, MNIST, FashionMNIST
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
