"""The dataset registry: a table of frozen dataclasses, one :class:`DatasetInfo` per name.

Datasets are data, not code paths. Each entry lists its files (:class:`Resource`) with the
ordered mirror URLs, the expected size and hashes, the archive kind and whether to extract it.
Hashes come from the publishers: sha256 where one is published, md5 where that is all there is
(torchvision's and torchtext's tables), nothing at all for a few (then the first good download's
sha256 is pinned in the cache's manifest: trust on first use, see :mod:`loaders.manifest`).
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass

from loaders.errors import UnknownDatasetError

log = logging.getLogger(__name__)

ARCHIVE_KINDS = ("tar.gz", "tar.bz2", "tar.xz", "tar", "zip", "gz")


@dataclass(frozen=True)
class Resource:
    """One file of a dataset.

    Attributes:
        filename: the file's name in the dataset folder (and at the end of every mirror URL).
        urls: full URLs to try in order; empty for generated data.
        size_bytes: the expected size, when known.
        sha256: the expected sha256 (lower-case hex), when published.
        md5: the expected md5, where only md5 is published.
        archive: the archive kind (one of :data:`ARCHIVE_KINDS`) or ``None`` for a plain file.
        extract: whether :func:`loaders.fetch` unpacks it into the dataset folder.
        split: ``"train"``, ``"test"`` or ``None`` for files every split needs.
        content_sha256: for a ``.gz`` file, the sha256 of its decompressed bytes, so that a
            copy compressed again by someone else (another md5, same content) is recognised.
    """

    filename: str
    urls: tuple[str, ...] = ()
    size_bytes: int | None = None
    sha256: str | None = None
    md5: str | None = None
    archive: str | None = None
    extract: bool = False
    split: str | None = None
    content_sha256: str | None = None

    def __post_init__(self) -> None:
        if self.archive is not None and self.archive not in ARCHIVE_KINDS:
            raise ValueError(
                f"archive should be one of {ARCHIVE_KINDS} or None, but got archive={self.archive!r}"
            )


@dataclass(frozen=True)
class DatasetInfo:
    """A registry entry: what the dataset is and the files it is made of.

    Attributes:
        name: the registry name (``loaders.fetch(name)``).
        description: one line.
        homepage: where the dataset is described.
        license: a short licence note.
        resources: the files.
        generator: the name of a local generator (``"letters"``) instead of URLs, or ``None``.
    """

    name: str
    description: str
    homepage: str
    license: str
    resources: tuple[Resource, ...]
    generator: str | None = None

    @property
    def size_bytes(self) -> int | None:
        """The total size of the resources, or ``None`` when one of them has no known size."""
        sizes = [r.size_bytes for r in self.resources if r.size_bytes is not None]
        return sum(sizes) if len(sizes) == len(self.resources) else None


# An http:// mirror is tried only because it is listed here, after the https one, and its
# bytes must match the published sha256; following a redirect from https to http is a
# downgrade and is refused (see loaders.connection).
_NOTMNIST_MIRRORS = (
    "https://commondatastorage.googleapis.com/books1000/",  # where the classic exercise moved
    "http://yaroslavvb.com/upload/notMNIST/",  # the original
)
_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
_NOTMNIST_IDX = "https://raw.githubusercontent.com/davidflanagan/notMNIST-to-MNIST/master/"
_AG_NEWS = "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/"
_IDX_FILES = (
    ("train-images-idx3-ubyte.gz", "train"),
    ("train-labels-idx1-ubyte.gz", "train"),
    ("t10k-images-idx3-ubyte.gz", "test"),
    ("t10k-labels-idx1-ubyte.gz", "test"),
)


def _idx_resources(
    bases: tuple[str, ...],
    md5s: tuple[str | None, ...] = (None, None, None, None),
    sizes: tuple[int | None, ...] = (None, None, None, None),
    sha256s: tuple[str | None, ...] = (None, None, None, None),
    content_sha256s: tuple[str | None, ...] = (None, None, None, None),
) -> tuple[Resource, ...]:
    # IDX .gz files stay compressed: the datasets read them directly.
    return tuple(
        Resource(
            filename=name,
            urls=tuple(base + name for base in bases),
            size_bytes=size,
            sha256=sha,
            md5=md5,
            archive="gz",
            extract=False,
            split=split,
            content_sha256=content,
        )
        for (name, split), md5, size, sha, content in zip(
            _IDX_FILES, md5s, sizes, sha256s, content_sha256s, strict=True
        )
    )



def _notmnist_tarball(filename: str, *, size_bytes: int, sha256: str, md5: str) -> tuple[Resource, ...]:
    # One tar.gz of A..J PNG folders, extracted into the dataset folder.
    urls = tuple(base + filename for base in _NOTMNIST_MIRRORS)
    return (Resource(filename, urls=urls, size_bytes=size_bytes, sha256=sha256, md5=md5,
                     archive="tar.gz", extract=True),)

_ENTRIES: tuple[DatasetInfo, ...] = (
    DatasetInfo(
        name="letters",
        description="Letters A-J rendered locally in the notMNIST layout (offline, generated).",
        homepage="https://github.com/dataferry/dataferry",
        license="Generated locally; fonts keep their own licences.",
        resources=(Resource("letters.tar.gz", archive="tar.gz", extract=True),),
        generator="letters",
    ),
    DatasetInfo(
        name="notmnist",
        description="notMNIST small: about 18,700 28x28 glyphs of the letters A-J as PNG folders.",
        homepage="http://yaroslavvb.blogspot.com/2011/09/notmnist-dataset.html",
        license="Free to use with attribution to Yaroslav Bulatov.",
        resources=_notmnist_tarball(
            "notMNIST_small.tar.gz",
            size_bytes=8_458_043,
            sha256="76b2ef7ccc56452964780569db37b279c9cbe1bf442c3b38be784752683b3cec",
            md5="c9890a473a9769fda4bdf314aaf500dd",
        ),
    ),
    DatasetInfo(
        name="notmnist-large",
        description="notMNIST large: about 529,000 28x28 glyphs of the letters A-J.",
        homepage="http://yaroslavvb.blogspot.com/2011/09/notmnist-dataset.html",
        license="Free to use with attribution to Yaroslav Bulatov.",
        resources=_notmnist_tarball(
            "notMNIST_large.tar.gz",
            size_bytes=247_336_696,
            sha256="1e8261b75484b520dc76027f5c22af50fe608e3bb16277caec086eb928f9b61c",
            md5="70a95b805ecfb6592c48e196df7c1499",
        ),
    ),
    DatasetInfo(
        name="notmnist-idx",
        description="A notMNIST sample converted to MNIST's IDX files (60,000 + 10,000).",
        homepage="https://github.com/davidflanagan/notMNIST-to-MNIST",
        license="Posted with the notMNIST author's permission; MIT-licensed script.",
        resources=_idx_resources(
            (_NOTMNIST_IDX,),
            sizes=(None, None, 3_172_375, 5_118),
            sha256s=(
                None,
                None,
                "70ae9e06201f2827e5b0a3781a3169d735dd2efc69996b9eeaee7f10ed4044d7",
                "1fa03836e01c862542f8eb83463bb951bebec6fcb3efa28dad748c6b38a9021b",
            ),
        ),
    ),
    DatasetInfo(
        name="mnist",
        description="MNIST handwritten digits 0-9, 60,000 train + 10,000 test, IDX format.",
        homepage="http://yann.lecun.com/exdb/mnist/",
        license="CC BY-SA 3.0 (Yann LeCun and Corinna Cortes).",
        resources=_idx_resources(
            _MNIST_MIRRORS,
            md5s=(
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "d53e105ee54ea40749a09fcbcd1e9432",
                "9fb629c4189551a2d022fa330f9573f3",
                "ec29112dd5afa0611ce80d1b7f02629c",
            ),
            sizes=(9_912_422, 28_881, 1_648_877, 4_542),
            # sha256 of the decompressed canonical bytes (measured on a verified copy), so a
            # re-gzipped file with another md5 is recognised as the same data.
            content_sha256s=(
                None,
                None,
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            ),
        ),
    ),
    DatasetInfo(
        name="fashion-mnist",
        description="Fashion-MNIST: Zalando article images in 10 classes, IDX format.",
        homepage="https://github.com/zalandoresearch/fashion-mnist",
        license="MIT",
        resources=_idx_resources(
            ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
            md5s=(
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "25c81989df183df01b3e8a0aad5dffbe",
                "bef4ecab320f06d8554ea6380940ec79",
                "bb300cfdad3c16e7a12a480ee83cd310",
            ),
        ),
    ),
    DatasetInfo(
        name="kmnist",
        description="Kuzushiji-MNIST: 10 classes of cursive Japanese characters, IDX format.",
        homepage="https://github.com/rois-codh/kmnist",
        license="CC BY-SA 4.0",
        resources=_idx_resources(
            ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
            md5s=(
                "bdb82020997e1d708af4cf47b453dcf7",
                "e144d726b3acfaa3e44228e80efcd344",
                "5c965bf0a639b31b8f53240b1b52f4d7",
                "7320c461ea6c1c855c0b718fb2a4b134",
            ),
        ),
    ),
    DatasetInfo(
        name="emnist",
        description="EMNIST: NIST letters and digits in six splits, IDX files in one zip.",
        homepage="https://www.nist.gov/itl/products-and-services/emnist-dataset",
        license="Public domain (NIST).",
        resources=(
            Resource(
                "gzip.zip",
                urls=(
                    "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip",
                    "https://www.itl.nist.gov/iaui/vip/cs_links/EMNIST/gzip.zip",
                ),
                md5="58c8d27c78d21e728a6bc7b3cc06412e",
                archive="zip",
                extract=True,
            ),
        ),
    ),
    DatasetInfo(
        name="sms-spam",
        description="UCI SMS Spam Collection: 5,574 SMS messages labelled ham or spam.",
        homepage="https://archive.ics.uci.edu/dataset/228/sms+spam+collection",
        license="CC BY 4.0",
        resources=(
            Resource(
                "smsspamcollection.zip",
                urls=(
                    "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip",
                    "https://archive.ics.uci.edu/ml/machine-learning-databases/00228/smsspamcollection.zip",
                ),
                archive="zip",
                extract=True,
            ),
        ),
    ),
    DatasetInfo(
        name="ag-news",
        description="AG News: 120,000 train + 7,600 test news titles and descriptions, 4 classes.",
        homepage="http://groups.di.unipi.it/~gulli/AG_corpus_of_news_articles.html",
        license="Non-commercial research use.",
        resources=(
            Resource(
                "train.csv", urls=(_AG_NEWS + "train.csv",),
                md5="b1a00f826fdfbd249f79597b59e1dc12", split="train",
            ),
            Resource(
                "test.csv", urls=(_AG_NEWS + "test.csv",),
                md5="d52ea96a97a2d943681189a97654912d", split="test",
            ),
        ),
    ),
    DatasetInfo(
        name="imdb",
        description="IMDB Large Movie Review Dataset: 25,000 train + 25,000 test reviews, pos/neg.",
        homepage="https://ai.stanford.edu/~amaas/data/sentiment/",
        license="Research use; cite Maas et al., ACL 2011.",
        resources=(
            # Kept packed: datasets.TextFolderDataset reads the reviews straight from it.
            Resource(
                "aclImdb_v1.tar.gz",
                urls=("https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",),
                size_bytes=84_125_825,
                md5="7c2ac02c03563afcf9b574c7e56c153a",
                archive="tar.gz",
            ),
        ),
    ),
)

REGISTRY: dict[str, DatasetInfo] = {info.name: info for info in _ENTRIES}


def names() -> list[str]:
    """Return the registered dataset names, sorted.

    Example:
        >>> "notmnist" in names()
        True
    """
    return sorted(REGISTRY)


def get(name: str) -> DatasetInfo:
    """Return the registry entry called ``name``.

    Args:
        name: a registry name such as ``"notmnist"``.

    Returns:
        The :class:`DatasetInfo`.

    Raises:
        UnknownDatasetError: no entry has that name; the message suggests the nearest names.

    Example:
        >>> get("notmnist").resources[0].filename
        'notMNIST_small.tar.gz'
    """
    try:
        return REGISTRY[name]
    except KeyError:
        pass
    close = difflib.get_close_matches(str(name).lower(), REGISTRY, n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    raise UnknownDatasetError(
        f"no dataset called {name!r} in the registry; {hint}"
        f"known names: {', '.join(names())}"
    )
