"""Training configuration: a TOML file validated at start-up.

Unknown keys are an error naming the key, so a typo cannot silently train
with a default. The saved copy beside a run is what `--resume` continues.
"""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.config import describe_validation_error
from host_training.models import ARCHITECTURES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Strict):
    path: str = "data/fer2013"
    input_size: int = Field(48, ge=32, le=224)
    cache_dir: str = ".cache/fer"
    val_fraction: float = Field(0.1, gt=0, lt=0.5)
    # FER+ crowd votes for these images (ferplus-votes.csv: host_training/ferplus.py),
    # e.g. "../shared/datasets/fer2013/ferplus-votes.csv"; "" = none. With
    # votes, faces voted mostly "unknown" or "not a face" leave the training set.
    votes: str = ""
    # Faces of the train split held out of training for measuring and fitting
    # the confidences (host_training/calibration.py), picked by a hash of their
    # file name so evaluation finds the same ones; 0 = none.
    calibration_fraction: float = Field(0.0, ge=0, lt=0.5)
    # What the per-epoch validation figures (and early stopping, the best
    # epoch) are measured on: "test", the data's own held-out split
    # (PublicTest for FER-2013); "held_out", the calibration_fraction faces
    # carved from train by file name, so the test split plays no part in
    # picking the model and stays a test.
    validate_on: Literal["test", "held_out"] = "test"

    @model_validator(mode="after")
    def _held_out_needs_faces(self) -> DataConfig:
        if self.validate_on == "held_out" and not self.calibration_fraction:
            raise ValueError(
                "data.validate_on = 'held_out' needs data.calibration_fraction > 0 "
                "(the faces held out of train are what it validates on)"
            )
        return self


class ModelConfig(BaseModel):
    """`architecture` plus that builder's keyword arguments (checked by name)."""

    model_config = ConfigDict(extra="allow")
    architecture: str = "cnn"

    @model_validator(mode="after")
    def _known_arguments(self) -> ModelConfig:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"unknown architecture {self.architecture!r}; "
                f"choose one of {', '.join(ARCHITECTURES)}"
            )
        accepted = set(inspect.signature(ARCHITECTURES[self.architecture]).parameters)
        accepted -= {"input_size", "num_classes"}
        for key in self.model_extra or {}:
            if key not in accepted:
                raise ValueError(
                    f"unknown key model.{key} for {self.architecture}; "
                    f"valid: {', '.join(sorted(accepted))}"
                )
        return self

    def builder_kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class AugmentConfig(_Strict):
    flip: bool = True
    shift: float = Field(0.1, ge=0, le=0.5)
    rotation_deg: float = Field(10.0, ge=0, le=45)
    zoom: float = Field(0.1, ge=0, le=0.5)
    brightness: float = Field(0.2, ge=0, le=1)
    contrast: float = Field(0.2, ge=0, le=1)
    erasing: float = Field(0.0, ge=0, le=1)  # probability of blanking one random patch
    # Mixup (Zhang et al. 2018): each batch blended with a shuffled copy of
    # itself, targets alike, by a weight drawn from Beta(mixup, mixup); 0 = off.
    mixup: float = Field(0.0, ge=0, le=10)


class TrainConfig(_Strict):
    epochs: int = Field(60, ge=1)
    batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(2e-3, gt=0)
    warmup_epochs: int = Field(2, ge=0)
    # "cosine": decay to 1 % over the epochs. "constant": hold the rate after
    # warm-up, the schedule SWA averages along (with average_epochs).
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    # "adamw", or "sgd": SGD with Nesterov momentum 0.9, the optimizer SWA was
    # introduced with (Izmailov et al. 2018). weight_decay is decoupled in both
    # and scales with the rate, so SGD wants a smaller one (5e-4 at rate 0.01).
    optimizer: Literal["adamw", "sgd"] = "adamw"
    # Start from the weights of this .keras file (a finished run's last.keras)
    # or int8 .tflite model (a committed one: host_training/from_tflite.py)
    # instead of random ones; the optimizer starts fresh. "" = from scratch.
    init_from: str = ""
    # With a .tflite init_from: convs the [model] adds beyond those init_from
    # has (convs_per_block raised) start as the identity, so the deeper model
    # starts from init_from's function (host_training/from_tflite.py).
    init_deepen: bool = False
    weight_decay: float = Field(0.02, ge=0)
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    class_weight: Literal["none", "balanced", "sqrt"] = "none"
    # Distillation: teachers (int8 .tflite or a run's float .keras; their mean)
    # blended into the targets.
    teachers: list[str] = []
    # The views of each face the teachers' probabilities are averaged over:
    # "flip" (the face and its mirror) or "flip-shift-zoom" (14: host_training/distill.py).
    teacher_views: Literal["flip", "flip-shift-zoom"] = "flip"
    distill_weight: float = Field(0.5, ge=0, le=1)
    # Targets before distillation: (1 - crowd_weight) * one-hot FER-2013 label
    # + crowd_weight * the FER+ crowd's distribution (needs data.votes).
    crowd_weight: float = Field(0.0, ge=0, le=1)
    # Average the weights of the last N epochs (SWA) into averaged.keras,
    # which quantize then converts instead of best.keras; 0 = off.
    average_epochs: int = Field(0, ge=0)
    patience: int = Field(15, ge=1)
    seed: int = 1
    mixed_precision: bool = False
    output_dir: str = "runs/cnn"


class Config(_Strict):
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    augment: AugmentConfig = AugmentConfig()
    train: TrainConfig = TrainConfig()

    @model_validator(mode="after")
    def _crowd_needs_votes(self) -> Config:
        if self.train.crowd_weight > 0 and not self.data.votes:
            raise ValueError(
                "train.crowd_weight needs data.votes: set it to ferplus-votes.csv "
                "(e.g. ../shared/datasets/fer2013/ferplus-votes.csv) or crowd_weight to 0"
            )
        return self


class ConfigError(ValueError):
    """A config that cannot be used; the message names the key and the fix."""


def load_config(path: Path | str | None) -> Config:
    """Read and validate a TOML config; None gives the defaults."""
    if path is None:
        return Config()
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return parse_config(raw, str(path))


def parse_config(raw: dict[str, Any], source: str = "config") -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe_validation_error(exc)}") from None
