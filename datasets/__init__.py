"""dataferry datasets: map-style image and text datasets, a packed cache, fast loading."""

from datasets.errors import (
    CollateError,
    DataFormatError,
    DatasetError,
    DatasetNotFoundError,
    PackedCacheError,
)
from datasets.idx import EMNIST, KMNIST, MNIST, FashionMNIST, IDXDataset
from datasets.images import ImageBatch, ImageFolderDataset, PackedImageDataset
from datasets.loader import DataLoader
from datasets.notmnist import NotMNIST
from datasets.transforms import ToFloat

__all__ = [
    "CollateError",
    "DataFormatError",
    "DataLoader",
    "DatasetError",
    "DatasetNotFoundError",
    "EMNIST",
    "FashionMNIST",
    "IDXDataset",
    "ImageBatch",
    "ImageFolderDataset",
    "KMNIST",
    "MNIST",
    "NotMNIST",
    "PackedCacheError",
    "PackedImageDataset",
    "ToFloat",
]
