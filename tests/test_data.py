"""FER-2013 loader: three layouts, one canonical label order."""

import cv2
import numpy as np
import pytest

from host_training.data import (
    CSV_LABELS,
    LABELS,
    DataError,
    load_splits,
    read_splits,
    representative_sample,
    stratified_split,
)


def make_faces(n_per_class=2, seed=0):
    """Distinct random faces per class: {label: [48x48 uint8, ...]}."""
    rng = np.random.default_rng(seed)
    return {
        label: [rng.integers(0, 256, (48, 48), dtype=np.uint8) for _ in range(n_per_class)]
        for label in LABELS
    }


def write_folders(root, faces, numeric=False):
    for split, folder in (("train", "train"), ("val", "test")):
        for label, images in faces.items():
            name = str(CSV_LABELS.index(label)) if numeric else label
            (root / folder / name).mkdir(parents=True, exist_ok=True)
            for i, face in enumerate(images):
                # PNG: lossless, so the same face is the same pixels in every layout
                cv2.imwrite(str(root / folder / name / f"{split}_{i}.png"), face)


def write_csv(path, faces):
    lines = ["emotion,pixels,Usage"]
    for usage in ("Training", "PublicTest"):
        for label, images in faces.items():
            for face in images:
                pixels = " ".join(str(v) for v in face.ravel())
                lines.append(f"{CSV_LABELS.index(label)},{pixels},{usage}")
    path.write_text("\n".join(lines) + "\n")


def label_of(splits, face):
    for split in splits.values():
        for x, y in zip(split.x, split.y, strict=True):
            if np.array_equal(x, face):
                return LABELS[y]
    raise AssertionError("face not found")


def test_every_layout_gives_the_same_label_for_the_same_face(tmp_path):
    faces = make_faces()
    write_folders(tmp_path / "named", faces)
    write_folders(tmp_path / "numeric", faces, numeric=True)
    write_csv(tmp_path / "fer2013.csv", faces)
    layouts = [
        read_splits(tmp_path / "named"),
        read_splits(tmp_path / "numeric"),
        read_splits(tmp_path / "fer2013.csv"),
    ]
    for splits in layouts:
        assert set(splits) == {"train", "val"}
        assert len(splits["train"]) == len(splits["val"]) == 14
        for label, images in faces.items():
            for face in images:
                assert label_of(splits, face) == label


def test_csv_order_is_not_folder_order():
    # the trap this loader exists to avoid: 4 is sad in the CSV, neutral alphabetically
    assert CSV_LABELS[4] == "sad" and LABELS[4] == "neutral"
    assert CSV_LABELS[6] == "neutral"


def test_class_folders_alone_are_a_validation_split(tmp_path):
    write_folders(tmp_path, make_faces())
    splits = read_splits(tmp_path / "test")
    assert set(splits) == {"val"} and len(splits["val"]) == 14


def test_clear_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_splits(tmp_path / "missing")
    (tmp_path / "train" / "happy").mkdir(parents=True)
    (tmp_path / "train" / "contempt").mkdir(parents=True)
    with pytest.raises(DataError, match="unknown class folder 'contempt'"):
        read_splits(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("emotion,pixels,Usage\n3,1 2 3,Training\n")
    with pytest.raises(DataError, match=r"bad.csv:2: malformed row"):
        read_splits(bad)
    bad.write_text("label,data\n")
    with pytest.raises(DataError, match="missing column"):
        read_splits(bad)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no FER-2013 layout"):
        read_splits(empty)


def test_cache_and_stratified_validation(tmp_path):
    faces = make_faces(n_per_class=10)
    write_csv(tmp_path / "fer2013.csv", {k: v for k, v in faces.items()})
    csv_only_train = tmp_path / "train_only.csv"
    text = (tmp_path / "fer2013.csv").read_text().replace("PublicTest", "Training")
    csv_only_train.write_text(text)
    cache = tmp_path / "cache"
    first = load_splits(csv_only_train, cache_dir=cache, val_fraction=0.1)
    assert len(list(cache.glob("*.npz"))) == 1
    second = load_splits(csv_only_train, cache_dir=cache, val_fraction=0.1)
    np.testing.assert_array_equal(first["val"].x, second["val"].x)
    # every class is in the made-up validation split
    assert set(np.unique(first["val"].y)) == set(range(7))


def test_stratified_split_and_representative_sample():
    from host_training.data import Split

    y = np.repeat(np.arange(7), [100, 10, 100, 100, 100, 100, 100])
    split = Split(np.zeros((len(y), 48, 48), np.uint8), y)
    train, val = stratified_split(split, 0.1, seed=0)
    assert (val.y == 1).sum() == 1 and len(train) + len(val) == len(y)
    sample = representative_sample(split, 70, seed=0)
    assert len(sample) == 70  # 10 per class, the rare class fully used
