"""Errors raised by :mod:`datasets`.

Every error derives from :class:`DatasetError`, so ``except DatasetError`` catches them all::

    DatasetError
    ├── DatasetNotFoundError   (also FileNotFoundError) the data are not where they should be
    │   └── MirrorNotFoundError (also RuntimeError)   …for a torchvision mirror class (MNIST…)
    ├── DataFormatError        (also ValueError)        a file is malformed (IDX header, CSV column…)
    ├── PackedCacheError       (also OSError)           the packed cache cannot be built or read
    ├── CollateError           (also ValueError)        samples of a batch cannot be combined
    └── ShardError             (also OSError)           a sharded pack cannot be written, fetched
                                                        or verified (names shard, URL, hash)

Wrong arguments raise plain ``ValueError``/``TypeError`` in torch's pattern
("batch_size should be a positive int, but got batch_size=0").
"""

from __future__ import annotations


class DatasetError(Exception):
    """Base class of every error raised by :mod:`datasets`."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """The data are not on disk where they were looked for."""


class MirrorNotFoundError(DatasetNotFoundError, RuntimeError):
    """A torchvision mirror class's data are missing: a ``RuntimeError`` too, as torchvision's."""


class DataFormatError(DatasetError, ValueError):
    """A data file is malformed: bad IDX magic or dims, a missing CSV column, and so on."""


class PackedCacheError(DatasetError, OSError):
    """The packed cache could not be built, or what is on disk is not a valid cache."""


class CollateError(DatasetError, ValueError):
    """The samples of a batch cannot be combined; the message names keys, shapes and indices."""


class ShardError(DatasetError, OSError):
    """A sharded pack cannot be written, fetched or verified; the message names shard and URL."""
