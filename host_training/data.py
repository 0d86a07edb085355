"""FER-2013 in the three layouts users have, read into one canonical form.

Layouts:
- image folders, `train/<class>/*.jpg` and `test/<class>/*.jpg` (class names);
- the original `fer2013.csv` (`emotion,pixels,Usage`);
- image folders named `0`..`6`, which follow the CSV's label order.

Labels are mapped by *name* to one canonical list. The CSV order differs from
the alphabetical one, and a model whose outputs are read in the wrong order
loses about 26 points of accuracy without any error, so no code here maps a
label by position except through `CSV_LABELS`.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.preprocess import crop_face

log = logging.getLogger(__name__)

LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
"""The canonical label list: the model's output order, and the metadata's."""

CSV_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""Label order of `fer2013.csv` and of the `0`..`6` folder layout."""

CSV_USAGE_TO_SPLIT = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
FOLDER_TO_SPLIT = {"train": "train", "test": "val", "val": "val", "validation": "val"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".webp"}
CACHE_FORMAT = 3  # 3: file paths cached beside the arrays


class DataError(ValueError):
    """A data set that cannot be read as FER-2013; the message says how to fix it."""


@dataclass
class Split:
    """Faces as uint8 (N, size, size) and canonical label indices (N,).

    `files` names each face's image by its path under the data folder
    (`train/angry/x.jpg`, or `angry/x.jpg` for class folders alone) where the
    data came from image folders, None from a CSV: the key FER+ crowd votes
    are joined by (host_training/ferplus.py).
    """

    x: np.ndarray
    y: np.ndarray
    files: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, keep: np.ndarray) -> Split:
        """The faces where the boolean mask (or index array) `keep` selects."""
        files = None if self.files is None else self.files[keep]
        return Split(self.x[keep], self.y[keep], files)

    def counts(self) -> dict[str, int]:
        return {label: int((self.y == i).sum()) for i, label in enumerate(LABELS)}


def label_index(name: str) -> int:
    """Canonical index of a class folder name: a label name or a CSV digit."""
    key = name.strip().lower()
    if key in LABELS:
        return LABELS.index(key)
    if key.isdigit() and int(key) < len(CSV_LABELS):
        return LABELS.index(CSV_LABELS[int(key)])
    raise DataError(
        f"unknown class folder {name!r}: use one of {', '.join(LABELS)} "
        f"or the CSV digits 0..{len(CSV_LABELS) - 1}"
    )


def in_canonical_order(probs: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
    """A model's probabilities (N, classes) with columns reordered to LABELS, by name."""
    if tuple(labels) == LABELS:
        return probs
    if sorted(labels) != sorted(LABELS):
        raise DataError(f"model labels {tuple(labels)} are not the classes {LABELS}")
    return probs[:, [labels.index(label) for label in LABELS]]


def _is_class_folder_root(path: Path) -> bool:
    subdirs = [p for p in path.iterdir() if p.is_dir()]
    return bool(subdirs) and all(p.name.lower() in LABELS or p.name.isdigit() for p in subdirs)


def _read_class_folders(root: Path, size: int, prefix: str = "") -> Split:
    faces: list[np.ndarray] = []
    labels: list[int] = []
    files: list[str] = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        index = label_index(class_dir.name)
        for file in sorted(class_dir.iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            image = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise DataError(f"cannot read image {file}: delete or replace the file")
            faces.append(crop_face(image, None, size))
            labels.append(index)
            files.append(f"{prefix}{class_dir.name}/{file.name}")
    if not faces:
        raise DataError(f"no images under {root}: expected {root}/<class>/*.jpg")
    return Split(np.stack(faces), np.asarray(labels, dtype=np.int64), np.asarray(files))


def _read_csv(path: Path, size: int) -> dict[str, Split]:
    rows: dict[str, tuple[list[np.ndarray], list[int]]] = {}
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"emotion", "pixels"} - set(reader.fieldnames or ())
        if missing:
            raise DataError(
                f"{path}: missing column(s) {', '.join(sorted(missing))}; "
                "expected the header 'emotion,pixels,Usage'"
            )
        for line_no, row in enumerate(reader, start=2):
            try:
                emotion = int(row["emotion"])
                pixels = np.array(row["pixels"].split(), dtype=np.uint8)
                side = round(len(pixels) ** 0.5)
                if side * side != len(pixels) or not 0 <= emotion < len(CSV_LABELS):
                    raise ValueError
            except (ValueError, TypeError, AttributeError, OverflowError):
                raise DataError(
                    f"{path}:{line_no}: malformed row (need an emotion 0..6 and a square "
                    "number of space-separated pixel values 0..255); fix or drop the row"
                ) from None
            split = CSV_USAGE_TO_SPLIT.get((row.get("Usage") or "Training").strip())
            if split is None:
                raise DataError(
                    f"{path}:{line_no}: unknown Usage {row.get('Usage')!r}; "
                    f"use one of {', '.join(CSV_USAGE_TO_SPLIT)}"
                )
            face = crop_face(pixels.reshape(side, side), None, size)
            bucket = rows.setdefault(split, ([], []))
            bucket[0].append(face)
            bucket[1].append(LABELS.index(CSV_LABELS[emotion]))
    return {
        name: Split(np.stack(faces), np.asarray(labels, dtype=np.int64))
        for name, (faces, labels) in rows.items()
    }


def stratified_split(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Split off `fraction` of each class, so rare classes (disgust) appear in both."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(split), dtype=bool)
    for label in np.unique(split.y):
        members = np.flatnonzero(split.y == label)
        rng.shuffle(members)
        held[members[: max(1, round(len(members) * fraction))]] = True
    return split.subset(~held), split.subset(held)


def read_splits(path: Path | str, size: int = 48) -> dict[str, Split]:
    """Every split found at `path`, keyed 'train', 'val' (PublicTest) and 'test'.

    `path` may be a layout root (with `train/` and `test/`), a `fer2013.csv`, a
    folder holding `fer2013.csv`, or one folder of class folders (read as 'val',
    for evaluating on e.g. `data/fer2013/test`).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"data path {path} does not exist: unpack FER-2013 there "
            "(see ../shared/datasets/fer2013/README.md) or pass --data"
        )
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise DataError(f"{path} is not a CSV file: pass a fer2013.csv or a folder")
        return _read_csv(path, size)
    if (path / "fer2013.csv").is_file():
        return _read_csv(path / "fer2013.csv", size)
    split_dirs = {
        FOLDER_TO_SPLIT[p.name.lower()]: p
        for p in path.iterdir()
        if p.is_dir() and p.name.lower() in FOLDER_TO_SPLIT
    }
    if split_dirs:
        return {name: _read_class_folders(d, size, f"{d.name}/") for name, d in split_dirs.items()}
    if _is_class_folder_root(path):
        return {"val": _read_class_folders(path, size)}
    raise DataError(
        f"{path}: no FER-2013 layout found; expected train/<class>/ and test/<class>/ "
        "folders, class folders directly, or fer2013.csv"
    )


def _fingerprint(path: Path, size: int) -> str:
    """Changes whenever a file is added, removed or rewritten under `path`."""
    digest = hashlib.sha1(f"{path.resolve()}|{size}|{CACHE_FORMAT}".encode())
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        stat = file.stat()
        digest.update(f"{file}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def load_splits(
    path: Path | str,
    size: int = 48,
    cache_dir: Path | str | None = ".cache/fer",
    val_fraction: float = 0.1,
    seed: int = 0,
) -> dict[str, Split]:
    """`read_splits`, with a 'val' split made when the data has none, and cached.

    Decoding 28k JPEGs takes a while on a small machine; the decoded arrays are
    kept in `cache_dir` (one .npz per data set) so a second run starts at once.
    """
    path = Path(path)
    cache_file = None
    if cache_dir is not None and path.exists():
        cache_file = Path(cache_dir) / f"{path.name}-{size}-{_fingerprint(path, size)}.npz"
        if cache_file.is_file():
            with np.load(cache_file) as data:
                names = {key.rsplit("_", 1)[0] for key in data.files}
                log.info("using cached arrays %s", cache_file)
                splits = {
                    n: Split(data[f"{n}_x"], data[f"{n}_y"], data.get(f"{n}_files")) for n in names
                }
            return _ensure_val(splits, val_fraction, seed)
    splits = read_splits(path, size)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        arrays = {
            f"{n}_{k}": getattr(s, k)
            for n, s in splits.items()
            for k in ("x", "y", "files")
            if getattr(s, k) is not None
        }
        np.savez(cache_file, **arrays)
    return _ensure_val(splits, val_fraction, seed)


def _ensure_val(splits: dict[str, Split], fraction: float, seed: int) -> dict[str, Split]:
    if "val" not in splits and "train" in splits:
        splits["train"], splits["val"] = stratified_split(splits["train"], fraction, seed)
    return splits


def representative_sample(split: Split, count: int, seed: int = 0) -> np.ndarray:
    """`count` faces drawn evenly from each class, for int8 calibration.

    Evenly per class, so the calibrated ranges also cover the rare classes.
    """
    rng = np.random.default_rng(seed)
    classes = np.unique(split.y)
    per_class = int(np.ceil(count / len(classes)))
    picked = [
        rng.choice(np.flatnonzero(split.y == c), min(per_class, int((split.y == c).sum())), False)
        for c in classes
    ]
    return split.x[np.concatenate(picked)]
