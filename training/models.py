"""The models: linear ones as plain ``x @ W + b`` with ``nn.Parameter``s, a bag of words for
text and :class:`SmallCNN`, a small convolutional classifier for images of any size.

Each model knows its task (``"regression"``, ``"binary"`` or ``"multiclass"``) and its default
loss, so :func:`training.fit` needs nothing else to train it.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

__all__ = [
    "BagOfWords",
    "BinaryCrossEntropyWithLogits",
    "LinearBagOfWords",
    "LinearRegression",
    "LogisticRegression",
    "SmallCNN",
]


def _check_positive(name: str, value: int, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} should be an int >= {minimum}, but got {name}={value!r}")


class BinaryCrossEntropyWithLogits(nn.Module):
    """``BCEWithLogitsLoss`` that accepts integer labels and ``[B]`` or ``[B, 1]`` logits."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the mean binary cross-entropy of ``logits`` against 0/1 ``target``."""
        return F.binary_cross_entropy_with_logits(
            logits.reshape(-1), target.reshape(-1).to(logits.dtype)
        )


class _Affine(nn.Module):
    """``x.flatten(1) @ W + b`` with the same initialisation as ``nn.Linear``."""

    def __init__(self, in_features: int, out_features: int, init: str = "uniform") -> None:
        super().__init__()
        _check_positive("in_features", in_features)
        _check_positive("out_features", out_features)
        if init not in ("uniform", "zeros"):
            raise ValueError(f"init should be 'uniform' or 'zeros', but got init={init!r}")
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.zeros(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        if init == "uniform":  # nn.Linear's default; zeros suits convex problems (scikit-learn)
            bound = 1.0 / math.sqrt(in_features)
            with torch.no_grad():
                self.weight.uniform_(-bound, bound)
                self.bias.uniform_(-bound, bound)

    def affine(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1) if x.dim() > 2 else x
        if x.dim() == 1:
            x = x.unsqueeze(1)
        if x.shape[1] != self.in_features:
            raise ValueError(
                f"expected inputs with {self.in_features} features but got shape "
                f"{tuple(x.shape)}; build the model with in_features={x.shape[1]}"
            )
        # ``x @ W + b``, computed as ``linear(x, Wᵀ, b)``: the same function (up to float
        # rounding), but BLAS runs both
        # this product and the weight gradient (``gᵀ @ x``) 2-4x faster with ``[out, in]``
        # rows (measured with MKL on 2-core AMD VMs; benchmarks/bench_fit.py).
        return F.linear(x.to(self.weight.dtype), self.weight.t().contiguous(), self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class LinearRegression(_Affine):
    """Least-squares linear regression ``y = x @ W + b``.

    Args:
        in_features: number of input features (inputs of more dims are flattened).
        out_features: number of targets.
        init: ``"uniform"`` (``nn.Linear``'s default) or ``"zeros"``.

    Example:
        >>> model = LinearRegression(1, 1)
        >>> model(torch.zeros(4, 1)).shape
        torch.Size([4, 1])
    """

    task = "regression"

    def __init__(self, in_features: int, out_features: int = 1, *, init: str = "uniform") -> None:
        super().__init__(in_features, out_features, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x @ W + b`` of shape ``[B, out_features]``."""
        return self.affine(x)

    def default_loss(self) -> nn.Module:
        """Return ``nn.MSELoss()``."""
        return nn.MSELoss()


class LogisticRegression(_Affine):
    """Logistic regression: one logit for two classes, softmax logits for more.

    Inputs of shape ``[B, 1, 28, 28]`` (image batches) are flattened to ``[B, 784]``.

    Args:
        in_features: number of input features after flattening.
        num_classes: 2 gives a single logit per sample (output ``[B]``, loss
            ``BCEWithLogitsLoss``); more gives ``[B, num_classes]`` logits with
            ``CrossEntropyLoss``.
        init: ``"uniform"`` (``nn.Linear``'s default) or ``"zeros"`` (scikit-learn's start;
            the loss is convex, so zeros are a fine, deterministic starting point).

    Example:
        >>> LogisticRegression(784, 10)(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
        >>> LogisticRegression(3, 2)(torch.zeros(5, 3)).shape
        torch.Size([5])
    """

    def __init__(self, in_features: int, num_classes: int, *, init: str = "uniform") -> None:
        _check_positive("num_classes", num_classes, minimum=2)
        super().__init__(in_features, 1 if num_classes == 2 else num_classes, init)
        self.num_classes = num_classes
        self.task = "binary" if num_classes == 2 else "multiclass"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits: ``[B]`` for two classes, ``[B, num_classes]`` otherwise."""
        logits = self.affine(x)
        return logits.squeeze(1) if self.num_classes == 2 else logits

    def default_loss(self) -> nn.Module:
        """Return the binary or multiclass cross-entropy on logits."""
        return BinaryCrossEntropyWithLogits() if self.num_classes == 2 else nn.CrossEntropyLoss()


class BagOfWords(nn.Module):
    """Bag-of-words text classifier: ``EmbeddingBag`` (mean of token vectors) then a linear layer.

    ``forward`` takes the dict batches of ``datasets.pad_collate``: ``input_ids`` ``[B, T]`` with
    ``attention_mask`` or ``lengths`` marking the real tokens, or ``flat_input_ids`` (or flat
    ``input_ids``) with ``offsets`` (EmbeddingBag style, ``pad_collate(return_offsets=True)``). A bare ``[B, T]`` tensor uses every token.
    With ``per_sample_weights`` beside ``flat_input_ids``/``offsets`` (the batches of
    ``datasets.textfeatures.TextFeatures``: TF-IDF or sublinear tf weights) the bag is the
    weighted sum ``EmbeddingBag(mode="sum", per_sample_weights=...)``, whatever ``mode``.

    Args:
        vocab_size: number of token ids.
        num_classes: number of classes (>= 2; softmax logits ``[B, num_classes]``).
        embed_dim: size of the token vectors.
        padding_idx: token id ignored in the bag (the vocabulary's pad id), or None.
        mode: ``"mean"`` or ``"sum"`` of the token vectors.
        sparse: sparse gradients for the embedding (large hashed vocabularies; train with an
            optimizer that takes them, such as ``torch.optim.Adagrad`` or plain SGD).

    Example:
        >>> model = BagOfWords(100, 2, 8)
        >>> batch = {"input_ids": torch.tensor([[5, 6, 0]]), "lengths": torch.tensor([2])}
        >>> model(batch).shape
        torch.Size([1, 2])
    """

    task = "multiclass"

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embed_dim: int = 64,
        *,
        padding_idx: int | None = 0,
        mode: str = "mean",
        sparse: bool = False,
    ) -> None:
        super().__init__()
        _check_positive("vocab_size", vocab_size)
        _check_positive("num_classes", num_classes, minimum=2)
        _check_positive("embed_dim", embed_dim)
        if mode not in ("mean", "sum"):
            raise ValueError(f"mode should be 'mean' or 'sum', but got mode={mode!r}")
        self.num_classes = num_classes
        self.embedding = nn.EmbeddingBag(vocab_size, embed_dim, mode=mode, padding_idx=padding_idx,
                                         sparse=sparse)
        self.linear = nn.Linear(embed_dim, num_classes)

    def forward(self, batch: dict[str, torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """Return ``[B, num_classes]`` logits for a dict batch or a ``[B, T]`` id tensor."""
        return self.linear(self.embed(batch))

    def embed(self, batch: dict[str, torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """Return the ``[B, embed_dim]`` bag vectors of a batch."""
        if not self.embedding.sparse:
            return self._embed(batch)
        # Sparse gradients: torch warns "Sparse invariant checks are implicitly disabled" at
        # the first sparse tensor (the backward, the optimizer step) unless someone chose.
        # Choose explicitly, keeping the current setting (off by default; a caller's enable()
        # stays on), so the warning is answered here, not filtered.
        with torch.sparse.check_sparse_tensor_invariants(
                enable=torch.sparse.check_sparse_tensor_invariants.is_enabled()):
            return self._embed(batch)

    def _embed(self, batch: dict[str, torch.Tensor] | torch.Tensor) -> torch.Tensor:
        if isinstance(batch, torch.Tensor):
            return self.embedding(batch)
        if "input_ids" not in batch:
            raise KeyError(
                f"expected a batch dict with 'input_ids' but got keys {sorted(batch)}; "
                "collate text with datasets.pad_collate"
            )
        if "offsets" in batch and "flat_input_ids" in batch:
            if "per_sample_weights" in batch:  # TF-IDF / sublinear tf: a weighted sum
                return nn.functional.embedding_bag(
                    batch["flat_input_ids"], self.embedding.weight, batch["offsets"], mode="sum",
                    per_sample_weights=batch["per_sample_weights"].to(self.embedding.weight.dtype),
                    padding_idx=self.embedding.padding_idx, sparse=self.embedding.sparse,
                )
            return self.embedding(batch["flat_input_ids"], batch["offsets"])
        ids = batch["input_ids"]
        if "offsets" in batch and ids.dim() == 1:
            return self.embedding(ids, batch["offsets"])
        mask = batch.get("attention_mask")
        if mask is None and "lengths" in batch:
            positions = torch.arange(ids.shape[1], device=ids.device)
            mask = positions.unsqueeze(0) < batch["lengths"].to(ids.device).unsqueeze(1)
        if mask is None:
            return self.embedding(ids)
        weights = mask.to(self.embedding.weight.dtype)
        if self.embedding.mode == "mean":
            # per_sample_weights only works with mode="sum": do the mean by hand.
            weights = weights / weights.sum(1, keepdim=True).clamp_min(1.0)
        bag = nn.functional.embedding_bag(
            ids, self.embedding.weight, mode="sum", per_sample_weights=weights,
            padding_idx=self.embedding.padding_idx,
        )
        return bag

    def default_loss(self) -> nn.Module:
        """Return ``nn.CrossEntropyLoss()``."""
        return nn.CrossEntropyLoss()


class LinearBagOfWords(nn.Module):
    """Multinomial logistic regression over a weighted bag of features, with dropout on the bag.

    The logits of a text are ``sum_i w_i * W[f_i] + b`` over its features ``f_i`` and weights
    ``w_i`` (the TF-IDF batches of ``datasets.textfeatures.TextFeatures``): scikit-learn's
    ``LogisticRegression`` on a TF-IDF matrix, as one ``EmbeddingBag(mode="sum")`` of width
    ``num_classes``. ``W`` starts at zero, as scikit-learn's solvers do. In training, each
    feature of each text is dropped with probability ``dropout`` (the kept ones scaled by
    ``1 / (1 - dropout)``): a text must be recognised from any part of its words, which keeps
    a few thousand texts from being memorised by their rarest n-grams.

    Args:
        num_features: number of feature ids.
        num_classes: number of classes (>= 2; logits ``[B, num_classes]``).
        dropout: probability of dropping a feature in training (0 <= dropout < 1).

    Example:
        >>> model = LinearBagOfWords(10, 3)
        >>> batch = {"flat_input_ids": torch.tensor([1, 2, 7]), "offsets": torch.tensor([0, 2]),
        ...          "per_sample_weights": torch.tensor([0.6, 0.8, 1.0])}
        >>> model(batch).shape
        torch.Size([2, 3])
    """

    task = "multiclass"

    def __init__(self, num_features: int, num_classes: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        _check_positive("num_features", num_features)
        _check_positive("num_classes", num_classes, minimum=2)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout should be a float in [0, 1), but got dropout={dropout!r}")
        self.num_classes = num_classes
        self.weight = nn.Parameter(torch.zeros(num_features, num_classes))
        self.bias = nn.Parameter(torch.zeros(num_classes))
        self.dropout = nn.Dropout(dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Return ``[B, num_classes]`` logits of a ``flat_input_ids``/``offsets`` batch."""
        missing = {"flat_input_ids", "offsets"} - set(batch)
        if missing:
            raise KeyError(f"expected a batch with 'flat_input_ids' and 'offsets' but it lacks "
                           f"{sorted(missing)}; make batches with datasets.textfeatures "
                           "(collate_features)")
        ids = batch["flat_input_ids"]
        weights = batch.get("per_sample_weights")
        if weights is None:
            weights = torch.ones(ids.shape, dtype=self.weight.dtype, device=ids.device)
        weights = self.dropout(weights.to(self.weight.dtype))
        return F.embedding_bag(ids, self.weight, batch["offsets"], mode="sum",
                               per_sample_weights=weights) + self.bias

    def default_loss(self) -> nn.Module:
        """Return ``nn.CrossEntropyLoss()``."""
        return nn.CrossEntropyLoss()


class _WarmBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose running statistics average every batch while that moves them more
    than ``momentum`` would (batch ``n`` weighs ``1/n``), then follow ``momentum``.

    With the default 0.1 from the start, a short run (a small folder: a few steps) evaluates
    with statistics still partly at their initial 0/1 and predicts one class; this is exact
    from the first step and the same as ``BatchNorm2d`` after ``1/momentum`` steps.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalize ``x``; in training, first set this step's averaging weight."""
        if self.training and self.num_batches_tracked is not None:
            self.momentum = max(0.1, 1.0 / (int(self.num_batches_tracked) + 1))
        return super().forward(x)


class SmallCNN(nn.Module):
    """A small convolutional classifier for images of any size and any number of channels.

    ``len(widths)`` blocks of ``Conv2d(3x3, padding 1) -> BatchNorm2d -> ReLU -> MaxPool2d(2)``
    (the pooling rounds up, so even a 1x1 image passes; the batch norms' running statistics
    are exact averages over the first steps, so short runs evaluate well), then a global average pool
    (``AdaptiveAvgPool2d(1)``) and one ``Linear`` layer to the class logits. The global pool
    makes the parameter count independent of the image size: the same model reads 28x28
    greyscale and 224x224 colour. With the default widths and RGB input it has 93,472
    parameters plus ``129 * num_classes``; on CIFAR-10 it reaches well above the ~40% of logistic
    regression on raw pixels within a few epochs.

    Args:
        in_channels: channels of the input images (1 greyscale, 3 RGB).
        num_classes: number of classes (>= 2); the output is ``[B, num_classes]`` logits.
        widths: output channels of each convolution block.

    Example:
        >>> model = SmallCNN(3, 10)
        >>> model(torch.zeros(2, 3, 32, 32)).shape, model(torch.zeros(1, 3, 97, 61)).shape
        (torch.Size([2, 10]), torch.Size([1, 10]))
    """

    task = "multiclass"

    def __init__(self, in_channels: int, num_classes: int, *,
                 widths: tuple[int, ...] = (32, 64, 128)) -> None:
        super().__init__()
        _check_positive("in_channels", in_channels)
        _check_positive("num_classes", num_classes, minimum=2)
        if not widths:
            raise ValueError(f"widths should name at least one block, but got widths={widths!r}")
        for width in widths:
            _check_positive("widths[i]", width)
        self.in_channels, self.num_classes = in_channels, num_classes
        layers: list[nn.Module] = []
        previous = in_channels
        for width in widths:
            layers += [nn.Conv2d(previous, width, 3, padding=1, bias=False), _WarmBatchNorm2d(width),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True)]
            previous = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(previous, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``[B, num_classes]`` logits for images ``[B, C, H, W]`` (or ``[B, H, W]``)."""
        if x.dim() == 3 and self.in_channels == 1:
            x = x.unsqueeze(1)
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected images [B, {self.in_channels}, H, W] but got shape {tuple(x.shape)}; "
                f"build the model with in_channels={x.shape[1] if x.dim() == 4 else 1}"
            )
        return self.classifier(self.pool(self.features(x)).flatten(1))

    def default_loss(self) -> nn.Module:
        """Return ``nn.CrossEntropyLoss()``."""
        return nn.CrossEntropyLoss()
