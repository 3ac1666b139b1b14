"""The training validation callback (utils/training/validation.py): known answers and logging at the chosen steps.

Its hooks are called with a stand-in "module" whose swap is known (the target itself, or the source itself), and
the callback is attached to a tiny Lightning run logging to TensorBoard, then to a two-step train.py run on CPU
(tests/training/conftest.py's stand-in flags). The metric models are stand-ins (FaceNet for identity).
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import train
from tests.evaluation.conftest import TEST_EMBEDDINGS
from tests.training.conftest import standin_flags, write_identity_dataset
from utils.errors import GhostError
from utils.inference.model_cache import ModelCache
from utils.training.validation import VALIDATION_METRICS, ValidationMetricsCallback, read_validation_pairs

NAMES = [f"val/{name}" for name in VALIDATION_METRICS]


@pytest.fixture(scope="module")
def validation_faces(tmp_path_factory: pytest.TempPathFactory, example_images: dict[str, Path]) -> Path:
    """Two small aligned-face stand-ins: astronaut and cameraman (two pairs: each is the other's target)."""
    folder = tmp_path_factory.mktemp("validation_faces")
    astronaut = cv2.resize(cv2.imread(str(example_images["astronaut"])), (64, 64), interpolation=cv2.INTER_AREA)
    cameraman = cv2.resize(cv2.imread(str(example_images["cameraman"])), (64, 64), interpolation=cv2.INTER_AREA)
    for name, image in (("a.png", astronaut), ("b.png", cameraman)):
        cv2.imwrite(str(folder / name), image)
    return folder


def callback_for(folder: Path, standin_weights: Path, models: ModelCache, every: int = 2) -> ValidationMetricsCallback:
    return ValidationMetricsCallback(folder, every, conditioning="cvl_vit", weights_dir=str(standin_weights),
                                     eval_face_embeddings=TEST_EMBEDDINGS, models=models)


class KnownSwap:
    """A stand-in for GhostV2Module: ``swap_examples`` returns the targets or the sources unchanged."""

    def __init__(self, returns: str) -> None:
        self.returns, self.device, self.eye_detector = returns, torch.device("cpu"), None

    def swap_examples(self, sources: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (targets if self.returns == "targets" else sources).clone()


class RecordingLogger:
    """Records ``log_metrics`` calls like a Lightning logger."""

    def __init__(self) -> None:
        self.logged: list[tuple[int, dict[str, float]]] = []

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.logged.append((step, metrics))


def trainer_at(step: int, recorder: RecordingLogger, global_zero: bool = True) -> SimpleNamespace:
    return SimpleNamespace(global_step=step, is_global_zero=global_zero, loggers=[recorder], callback_metrics={})


def test_pairs_from_a_folder_or_a_csv(validation_faces: Path, tmp_path: Path) -> None:
    pairs = read_validation_pairs(validation_faces)
    assert [(source.name, target.name) for source, target in pairs] == [("a.png", "b.png"), ("b.png", "a.png")]
    table = tmp_path / "val.csv"
    table.write_text(f"source,target\n{validation_faces / 'b.png'},{validation_faces / 'b.png'}\n")
    assert read_validation_pairs(table) == [(validation_faces / "b.png", validation_faces / "b.png")]
    with pytest.raises(GhostError, match="does not exist"):
        read_validation_pairs(tmp_path / "absent")
    (tmp_path / "lonely").mkdir()
    with pytest.raises(GhostError, match="at least two pictures"):
        read_validation_pairs(tmp_path / "lonely")


def test_known_swaps_give_known_metrics(validation_faces: Path, standin_weights: Path,
                                        evaluation_models: ModelCache) -> None:
    callback = callback_for(validation_faces, standin_weights, evaluation_models)
    identity_swap = KnownSwap("targets")
    callback.setup(SimpleNamespace(), identity_swap, "fit")
    unchanged = callback.evaluate(identity_swap)
    assert sorted(unchanged) == sorted(NAMES)
    assert unchanged["val/pose_error"] == 0.0 and unchanged["val/expression_error"] == 0.0
    assert unchanged["val/eye_error"] == 0.0
    sources_back = callback.evaluate(KnownSwap("sources"))
    assert sources_back["val/id_similarity"] == pytest.approx(1.0, abs=1e-5)
    assert sources_back["val/id_retrieval"] == 100.0


def test_metrics_are_logged_at_every_nth_step_only(validation_faces: Path, standin_weights: Path,
                                                   evaluation_models: ModelCache) -> None:
    callback = callback_for(validation_faces, standin_weights, evaluation_models, every=3)
    module, recorder = KnownSwap("targets"), RecordingLogger()
    callback.setup(SimpleNamespace(), module, "fit")
    trainers = [trainer_at(step, recorder) for step in range(5)]
    for step, trainer in enumerate(trainers):
        callback.on_train_batch_end(trainer, module, None, None, step)
    assert [step for step, _ in recorder.logged] == [3]
    assert sorted(recorder.logged[0][1]) == sorted(NAMES)
    assert sorted(trainers[3].callback_metrics) == sorted(NAMES) and not trainers[4].callback_metrics
    callback.on_train_batch_end(trainer_at(6, recorder, global_zero=False), module, None, None, 6)
    assert len(recorder.logged) == 1  # other processes do not measure


class TinySwapModule(pl.LightningModule):
    """A one-parameter module trained for a few steps, whose "swap" is its target scaled by that parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(1.0))
        self.eye_detector = None

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        return ((self.scale * batch) ** 2).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def swap_examples(self, sources: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (self.scale.detach() * targets).clamp(-1, 1)


def test_a_tiny_run_logs_the_metrics_to_tensorboard(validation_faces: Path, standin_weights: Path,
                                                    evaluation_models: ModelCache, tmp_path: Path) -> None:
    callback = callback_for(validation_faces, standin_weights, evaluation_models, every=3)
    logger = TensorBoardLogger(save_dir=tmp_path, name="logs", version="run")
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=4, logger=logger, callbacks=[callback],
                         log_every_n_steps=1, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    data = torch.utils.data.DataLoader(torch.zeros(4, 2), batch_size=1)
    trainer.fit(TinySwapModule(), data)
    events = EventAccumulator(str(Path(logger.log_dir)))
    events.Reload()
    for name in NAMES:
        assert [event.step for event in events.Scalars(name)] == [3], name
    assert np.isfinite([event.value for name in NAMES for event in events.Scalars(name)]).all()
    assert trainer.callback_metrics["val/id_similarity"] == pytest.approx(callback.last_logged["val/id_similarity"])


@pytest.mark.slow
def test_train_py_logs_the_validation_metrics_at_the_chosen_step(
    validation_faces: Path, standin_weights: Path, example_images: dict[str, Path], tmp_path: Path
) -> None:
    dataset = write_identity_dataset(tmp_path / "dataset", example_images, identities=2, per_identity=1)
    experiments = tmp_path / "experiments"
    flags = standin_flags(standin_weights, dataset, experiments, tmp_path / "no_examples")
    code = train.main([*flags, "--batch_size", "1", "--max_steps", "2", "--max_epochs", "1", "--save_step", "100",
                       "--run_name", "val", "--val_pairs", str(validation_faces), "--val_every_n_steps", "2",
                       "--val_face_embeddings", TEST_EMBEDDINGS])
    assert code == 0
    events = EventAccumulator(str(experiments / "logs" / "val"))
    events.Reload()
    for name in NAMES:
        assert [event.step for event in events.Scalars(name)] == [2], name
    assert {"lossG", "lossD"} <= set(events.Tags()["scalars"])


def test_train_py_refuses_unusable_validation_pairs(tmp_path: Path, capsys) -> None:
    assert train.main(["--dataset_path", str(tmp_path), "--val_pairs", str(tmp_path / "absent")]) == 1
    assert "--val_pairs" in capsys.readouterr().err
