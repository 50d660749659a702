"""The fit harness: learning, batches, optimizers, history, early stopping, errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from training import (
    BagOfWords,
    DivergenceError,
    EarlyStopping,
    FitConfig,
    LinearRegression,
    LogisticRegression,
    evaluate,
    fit,
    predict,
    resolve_device,
)
from training.history import History, count_noun


def _blobs(n: int = 300, d: int = 5, k: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(k, d, generator=g) * 3
    y = torch.randint(0, k, (n,), generator=g)
    return centers[y] + torch.randn(n, d, generator=g), y


def test_fit_linear_regression_matches_closed_form() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(200, 3, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3 + 0.01 * torch.randn(200, 1, generator=g)
    model = LinearRegression(3, 1)
    fit(model, DataLoader(TensorDataset(x, y), batch_size=200),
        config=FitConfig(optimizer="lbfgs", lr=1.0, epochs=3, device="cpu"))
    design = torch.cat([x, torch.ones(200, 1)], dim=1).double()
    solution = torch.linalg.lstsq(design, y.double()).solution
    torch.testing.assert_close(model.weight.double(), solution[:3], atol=1e-3, rtol=0)
    torch.testing.assert_close(model.bias.double(), solution[3], atol=1e-3, rtol=0)


def test_fit_history_records_losses_accuracy_and_times() -> None:
    x, y = _blobs()
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    valid = DataLoader(TensorDataset(x[:100], y[:100]), batch_size=50)
    history = fit(LogisticRegression(5, 3), loader, valid,
                  config=FitConfig(lr=0.1, epochs=4, device="cpu"))
    assert history.epoch == [1, 2, 3, 4]
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.train_accuracy[-1] > 0.9
    assert history.valid_accuracy[-1] is not None and history.valid_accuracy[-1] > 0.9
    assert all(t >= 0 for t in history.data_time_s + history.compute_time_s)
    for total, data_s, compute_s in zip(history.epoch_time_s, history.data_time_s,
                                        history.compute_time_s, strict=True):
        assert data_s + compute_s <= total + 1e-6
    assert history.skipped_batches == [0, 0, 0, 0]
    assert history.to_dict()["epoch"] == [1, 2, 3, 4]


class _RecordingSGD(torch.optim.SGD):
    def __init__(self, params, calls: list[str]) -> None:
        super().__init__(params, lr=0.1)
        self.calls = calls

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.calls.append("zero_grad")
        super().zero_grad(set_to_none)

    def step(self, closure=None):
        grads = [p.grad is not None for group in self.param_groups for p in group["params"]]
        self.calls.append("step" if all(grads) else "step-without-grad")
        return super().step(closure)


def test_fit_runs_the_four_steps_in_order() -> None:
    x, y = _blobs(64)
    model = LogisticRegression(5, 3)
    calls: list[str] = []
    fit(model, DataLoader(TensorDataset(x, y), batch_size=16),
        config=FitConfig(epochs=1, device="cpu"),
        optimizer=_RecordingSGD(model.parameters(), calls))
    assert calls == ["zero_grad", "step"] * 4


def test_fit_accepts_dict_batches_and_skips_none() -> None:
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 2, (40,), generator=g)
    # class 0 uses token ids 1..9, class 1 ids 10..19
    ids = torch.randint(1, 10, (40, 6), generator=g) + 9 * labels.unsqueeze(1)

    def batches():
        for i in range(0, 40, 8):
            yield {"input_ids": ids[i:i + 8], "lengths": torch.full((8,), 6), "labels": labels[i:i + 8]}
        yield None

    class Loader:
        def __iter__(self):
            return batches()

    history = fit(BagOfWords(20, 2, 8), Loader(),
                  config=FitConfig(optimizer="adam", lr=0.05, epochs=3, device="cpu"))
    assert history.skipped_batches == [1, 1, 1]
    assert history.train_accuracy[-1] > 0.8


def test_fit_binary_logistic_uses_one_logit() -> None:
    x, y = _blobs(200, 4, 2, seed=3)
    model = LogisticRegression(4, 2)
    history = fit(model, DataLoader(TensorDataset(x, y), batch_size=50),
                  config=FitConfig(lr=0.5, epochs=10, device="cpu"))
    assert model.weight.shape == (4, 1)
    assert history.train_accuracy[-1] > 0.9
    probs = predict(model, DataLoader(TensorDataset(x), batch_size=50), device="cpu", output="probabilities")
    assert probs.shape == (200,) and ((probs >= 0) & (probs <= 1)).all()


@pytest.mark.parametrize("optimizer,lr", [("sgd", 0.1), ("adam", 0.05), ("adamw", 0.05),
                                          ("lbfgs", 1.0)])
def test_fit_each_optimizer_learns(optimizer: str, lr: float) -> None:
    x, y = _blobs(300, 5, 3, seed=4)
    config = FitConfig(optimizer=optimizer, lr=lr, epochs=5, weight_decay=1e-4, device="cpu",
                       momentum=0.9 if optimizer == "sgd" else 0.0)
    history = fit(LogisticRegression(5, 3),
                  DataLoader(TensorDataset(x, y), batch_size=30, shuffle=True), config=config)
    assert history.train_accuracy[-1] > 0.9


def test_fit_is_deterministic_for_a_seed() -> None:
    x, y = _blobs()

    def run() -> torch.Tensor:
        torch.manual_seed(0)
        model = LogisticRegression(5, 3)
        fit(model, DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True),
            config=FitConfig(lr=0.1, epochs=2, seed=7, device="cpu"))
        return model.weight.detach().clone()

    assert torch.equal(run(), run())


def test_early_stopping_stops_and_restores_best() -> None:
    x, y = _blobs(200, 5, 3, seed=5)
    train = DataLoader(TensorDataset(x[:100], y[:100]), batch_size=10, shuffle=True)
    valid = DataLoader(TensorDataset(x[100:], y[100:]), batch_size=100)
    for patience, epochs in ((0, [1, 2]), (1, [1, 2]), (2, [1, 2, 3])):  # as Keras counts
        stopper = EarlyStopping("valid_loss", patience=patience, min_delta=10.0)  # never better
        model = LogisticRegression(5, 3)
        history = fit(model, train, valid,
                      config=FitConfig(lr=0.1, epochs=20, device="cpu"),
                      callbacks=[stopper])
        assert history.stopped_early
        assert history.epoch == epochs
    assert stopper.best_epoch == 1
    restored = evaluate(model, valid, device="cpu")["loss"]
    assert math.isclose(restored, history.valid_loss[0], rel_tol=1e-5)


def test_early_stopping_restores_the_best_epoch_when_the_run_ends_without_stopping(
        tmp_path) -> None:
    from training.checkpoint import load_checkpoint

    x, y = _blobs(200, 5, 3, seed=5)
    train = DataLoader(TensorDataset(x, y), batch_size=20, shuffle=True)
    # labels the model unlearns as it learns the training ones: the valid loss only rises
    valid = DataLoader(TensorDataset(x, (y + 1) % 3), batch_size=200)
    stopper = EarlyStopping("valid_loss", patience=50)  # never stops: the run reaches epoch 6
    model = LogisticRegression(5, 3)
    history = fit(model, train, valid, config=FitConfig(lr=0.1, epochs=6, device="cpu"),
                  callbacks=[stopper], checkpoint_dir=tmp_path)
    assert not history.stopped_early and history.epoch[-1] == 6
    best = min(history.valid_loss)
    assert stopper.best_epoch < 6 and history.valid_loss[-1] > best  # the last was not the best
    assert math.isclose(evaluate(model, valid, device="cpu")["loss"], best, rel_tol=1e-5)
    saved = load_checkpoint(tmp_path / "checkpoint.pt")["model"]  # the checkpoint keeps them too
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())


def test_early_stopping_without_validation_says_what_to_do() -> None:
    x, y = _blobs(50)
    with pytest.raises(ValueError, match="pass a valid_loader"):
        fit(LogisticRegression(5, 3), DataLoader(TensorDataset(x, y), batch_size=10),
            config=FitConfig(epochs=2, device="cpu"),
            callbacks=[EarlyStopping()])


def test_fit_raises_divergence_error_on_nan_loss() -> None:
    x = torch.randn(20, 2) * 1e20
    y = torch.randn(20, 1) * 1e20
    with pytest.raises(DivergenceError, match="lower the learning rate"):
        fit(LinearRegression(2, 1), DataLoader(TensorDataset(x, y), batch_size=5),
            config=FitConfig(lr=10.0, epochs=3, device="cpu"))


def test_fit_rejects_bad_arguments() -> None:
    loader = DataLoader(TensorDataset(torch.zeros(4, 2), torch.zeros(4).long()), batch_size=2)
    with pytest.raises(ValueError, match="epochs should be a positive int, but got epochs=0"):
        fit(LogisticRegression(2, 3), loader, config=FitConfig(epochs=0, device="cpu"))
    with pytest.raises(ValueError, match="optimizer should be one of"):
        fit(LogisticRegression(2, 3), loader, config=FitConfig(optimizer="rmsprop", device="cpu"))
    with pytest.raises(ValueError, match="lr should be a positive float"):
        fit(LogisticRegression(2, 3), loader, config=FitConfig(lr=0.0, device="cpu"))


def test_fit_rejects_unlabelled_batches() -> None:
    loader = DataLoader(TensorDataset(torch.zeros(4, 2)), batch_size=2)
    with pytest.raises(TypeError, match=r"expected an \(inputs, labels\) pair"):
        fit(LogisticRegression(2, 3), loader, config=FitConfig(epochs=1, device="cpu"))


def test_evaluate_report_has_confusion_matrix_and_f1() -> None:
    x, y = _blobs(150, 5, 3, seed=6)
    model = LogisticRegression(5, 3)
    fit(model, DataLoader(TensorDataset(x, y), batch_size=15),
        config=FitConfig(lr=0.1, epochs=5, device="cpu"))
    result = evaluate(model, DataLoader(TensorDataset(x, y), batch_size=40), device="cpu", report=True)
    cm = torch.tensor(result["confusion_matrix"])
    assert cm.sum().item() == 150 == result["count"]
    assert math.isclose(cm.diag().sum().item() / 150, result["accuracy"])
    assert len(result["f1"]) == 3 and 0.0 <= result["macro_f1"] <= 1.0


def test_evaluate_regression_has_no_accuracy() -> None:
    x = torch.rand(10, 1)
    result = evaluate(LinearRegression(1, 1), DataLoader(TensorDataset(x, 2 * x), batch_size=5), device="cpu")
    assert result["accuracy"] is None and result["count"] == 10


def test_predict_labels_and_logits() -> None:
    x, y = _blobs(40)
    model = LogisticRegression(5, 3)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    labels = predict(model, loader, device="cpu")
    logits = predict(model, loader, device="cpu", output="logits")
    assert labels.shape == (40,) and logits.shape == (40, 3)
    assert torch.equal(labels, logits.argmax(1))
    with pytest.raises(ValueError, match="output should be"):
        predict(model, loader, output="classes")


def test_custom_loss_module_is_used() -> None:
    x, y = _blobs(60)
    history = fit(LogisticRegression(5, 3), DataLoader(TensorDataset(x, y), batch_size=20),
                  config=FitConfig(lr=0.1, epochs=3, device="cpu"),
                  loss=nn.CrossEntropyLoss(label_smoothing=0.5))
    # with heavy label smoothing the loss cannot fall near 0
    assert history.train_loss[-1] > 0.5


def test_progress_bar_goes_to_stderr_and_logging_reports_epochs(
        capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    x, y = _blobs(64)
    with caplog.at_level("INFO", logger="training.fit"):
        fit(LogisticRegression(5, 3), DataLoader(TensorDataset(x, y), batch_size=16),
            config=FitConfig(epochs=2, device="cpu"),
            progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""  # the library never prints
    assert "epoch 2/2" in captured.err  # tqdm's description
    assert any("epoch 2/2: train loss " in r.getMessage() for r in caplog.records)


def test_resolve_device_without_cuda_says_what_to_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError) as info:
        resolve_device("cuda:1")
    assert str(info.value) == ("expected an available device but got device='cuda:1' and "
                               "torch.cuda.is_available() is False; pass device='cpu' or 'auto'")
    with pytest.raises(ValueError, match=r"device='cuda' and .* is False; pass device='cpu' or"):
        fit(LogisticRegression(2, 3), [(torch.zeros(1, 2), torch.zeros(1, dtype=torch.long))],
            config=FitConfig(device="cuda"))


def test_resolve_device_with_a_missing_cuda_index_lists_the_ones_there(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ValueError) as info:
        resolve_device("cuda:2", flag="--device")
    assert str(info.value) == ("expected an available device but got device='cuda:2' and "
                               "torch.cuda.device_count() is 2; pass --device cuda:0, cuda:1, "
                               "cpu or auto")
    with pytest.raises(ValueError, match=r"pass device='cuda:0', 'cuda:1', 'cpu' or 'auto'$"):
        resolve_device("cuda:5")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)


def test_counts_in_messages_are_pluralised(caplog: pytest.LogCaptureFixture) -> None:
    assert [count_noun(n, "epoch") for n in (0, 1, 2)] == ["0 epochs", "1 epoch", "2 epochs"]
    history = History()
    for skipped in (1, 2):
        history.record(skipped, train_loss=0.5, train_accuracy=None, valid=None, lr=0.1,
                       data_time_s=0.0, compute_time_s=0.0, epoch_time_s=0.0,
                       skipped_batches=skipped)
        assert history.describe_last(2).endswith(
            f", {skipped} empty {'batch' if skipped == 1 else 'batches'} skipped)")
    x, y = _blobs(200, 5, 3, seed=5)
    train = DataLoader(TensorDataset(x[:100], y[:100]), batch_size=10)
    valid = DataLoader(TensorDataset(x[100:], y[100:]), batch_size=100)
    with caplog.at_level("INFO", logger="training.callbacks"):
        fit(LogisticRegression(5, 3), train, valid,
            config=FitConfig(epochs=5, device="cpu"),
            callbacks=[EarlyStopping("valid_loss", patience=0, min_delta=10.0)])
    assert "(epoch 1) for 1 epoch" in caplog.text and "1 epochs" not in caplog.text


def test_fit_takes_its_config_and_stores_it_in_the_checkpoint(tmp_path) -> None:
    from training.checkpoint import load_checkpoint

    x, y = _blobs(60, 5, 3, seed=2)
    config = FitConfig(optimizer="adam", lr=0.02, epochs=2, seed=5, device="cpu")
    history = fit(LogisticRegression(5, 3), DataLoader(TensorDataset(x, y), batch_size=20),
                  config=config, checkpoint_dir=tmp_path)
    assert history.epoch == [1, 2]
    saved = load_checkpoint(tmp_path / "checkpoint.pt")["config"]
    assert saved == {"optimizer": "adam", "lr": 0.02, "epochs": 2, "momentum": 0.0,
                     "weight_decay": 0.0, "device": "cpu", "seed": 5, "lbfgs_max_iter": 20,
                     "schedule": "constant"}
    with pytest.raises(TypeError):
        fit(LogisticRegression(5, 3), [], lr=0.1)  # type: ignore[call-arg]  # flags live in config
