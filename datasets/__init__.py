"""dataferry datasets: map-style image and text datasets, a packed cache, fast loading."""

from datasets.collate import PadCollate, SkipNoneCollate, pad_collate, skip_none_collate
from datasets.errors import (
    CollateError,
    DataFormatError,
    DatasetError,
    DatasetNotFoundError,
    PackedCacheError,
    ShardError,
)
from datasets.idx import EMNIST, KMNIST, MNIST, FashionMNIST, IDXDataset
from datasets.images import ImageBatch, ImageFolderDataset, PackedImageDataset
from datasets.loader import DataLoader
from datasets.notmnist import NotMNIST
from datasets.samplers import BalancedSampler, BucketBatchSampler, ShardedEvalSampler
from datasets.shardwriter import verify_shards, write_shards
from datasets.splits import OverlapReport, overlap_report, random_split
from datasets.streaming import StreamingDataset, StreamingSampler
from datasets.text import LabelEncoder, TextClassificationDataset
from datasets.textfeatures import BagOfNgrams, FeatureConfig
from datasets.textfolder import TextFolderDataset
from datasets.textpack import PackedTextDataset
from datasets.transforms import ToFloat
from datasets.vocab import Vocab, WordTokenizer, tokenize

__all__ = [
    "BagOfNgrams",
    "BalancedSampler",
    "BucketBatchSampler",
    "CollateError",
    "DataFormatError",
    "DataLoader",
    "DatasetError",
    "DatasetNotFoundError",
    "EMNIST",
    "FashionMNIST",
    "FeatureConfig",
    "IDXDataset",
    "ImageBatch",
    "ImageFolderDataset",
    "KMNIST",
    "LabelEncoder",
    "MNIST",
    "NotMNIST",
    "OverlapReport",
    "PackedCacheError",
    "PackedImageDataset",
    "PackedTextDataset",
    "PadCollate",
    "ShardError",
    "ShardedEvalSampler",
    "SkipNoneCollate",
    "StreamingDataset",
    "StreamingSampler",
    "TextClassificationDataset",
    "TextFolderDataset",
    "ToFloat",
    "Vocab",
    "WordTokenizer",
    "overlap_report",
    "pad_collate",
    "random_split",
    "skip_none_collate",
    "tokenize",
    "verify_shards",
    "write_shards",
]
