"""PNG plots for the evaluation report: confusion matrix and training curves."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no plots (pip install -e '.[train]')")
        return None
    return plt


def plot_confusion(metrics: dict, path: Path) -> Path | None:
    """Row-normalized confusion matrix (recall per class on the diagonal)."""
    plt = _pyplot()
    if plt is None:
        return None
    labels = metrics["labels"]
    counts = np.asarray(metrics["confusion"], dtype=float)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.4), dpi=110)
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=40, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(
                j,
                i,
                f"{100 * rates[i, j]:.0f}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if rates[i, j] > 0.5 else "black",
            )
    ax.set_title(
        f"{Path(metrics.get('model', 'model')).name}: accuracy "
        f"{100 * metrics['accuracy']:.1f} % ({metrics['samples']} faces)"
    )
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_training(log_csv: Path, path: Path) -> Path | None:
    """Accuracy and loss per epoch, train and validation, from the CSV log."""
    plt = _pyplot()
    if plt is None or not log_csv.is_file():
        return None
    with log_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return None
    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    for key, name in (("accuracy", "train"), ("val_accuracy", "validation")):
        acc.plot(epochs, [100 * float(r[key]) for r in rows], label=name)
    for key, name in (("loss", "train"), ("val_loss", "validation")):
        loss.plot(epochs, [float(r[key]) for r in rows], label=name)
    averaged = _averaged(log_csv.with_name("state.json"))
    if averaged is not None:  # the run's weight average: what quantize converts
        (first, last), accuracy = averaged
        acc.axhline(
            100 * accuracy,
            color="C2",
            linestyle="--",
            label=f"validation, weights of epochs {first}-{last} averaged",
        )
        low, high = acc.get_ylim()
        acc.set_ylim(low - 0.6 * (high - low), high)  # room below the curves for the legend
    acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    loss.set(xlabel="epoch", ylabel="loss", title="loss (with label smoothing)")
    for ax in (acc, loss):
        ax.grid(alpha=0.3)
    acc.legend(loc="lower right" if averaged else "best")
    loss.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _averaged(state_json: Path) -> tuple[tuple[int, int], float] | None:
    """((first, last) averaged epoch, validation accuracy) from a run's state, if it averaged."""
    if not state_json.is_file():
        return None
    state = json.loads(state_json.read_text())
    if "averaged_val_accuracy" not in state:
        return None
    epochs = state["averaged_epochs"]
    return (min(epochs), max(epochs)), float(state["averaged_val_accuracy"])


def write_plots(metrics: dict, out_dir: Path, log_csv: Path | None = None) -> list[Path]:
    written = [plot_confusion(metrics, out_dir / "confusion.png")]
    if log_csv is not None:
        written.append(plot_training(log_csv, out_dir / "training.png"))
    return [p for p in written if p is not None]
