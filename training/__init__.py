"""training: linear, logistic and small convolutional models, hand-written gradients, a small fit harness, DDP."""

from training import scratch  # noqa: F401  (training.scratch, a module: not in __all__)
from training.callbacks import Callback, EarlyStopping
from training.checkpoint import load_checkpoint, save_checkpoint
from training.errors import CheckpointError, DistributedError, DivergenceError, TrainingError
from training.fit import FitConfig, History, evaluate, fit, predict, resolve_device, seed_everything
from training.metrics import (
    accuracy,
    classification_report,
    confusion_matrix,
    precision_recall_f1,
)
from training.models import (
    BagOfWords,
    LinearBagOfWords,
    LinearRegression,
    LogisticRegression,
    SmallCNN,
)
from training.optim import make_optimizer

__all__ = [
    "BagOfWords",
    "Callback",
    "CheckpointError",
    "DistributedError",
    "DivergenceError",
    "EarlyStopping",
    "FitConfig",
    "History",
    "LinearBagOfWords",
    "LinearRegression",
    "LogisticRegression",
    "SmallCNN",
    "TrainingError",
    "accuracy",
    "classification_report",
    "confusion_matrix",
    "evaluate",
    "fit",
    "load_checkpoint",
    "make_optimizer",
    "precision_recall_f1",
    "predict",
    "resolve_device",
    "save_checkpoint",
    "seed_everything",
]
