"""FER+ crowd votes: joined to image folders by path, turned into targets and
into the FER+ majority protocol."""

import json

import numpy as np
import pytest
from conftest import SHARED
from test_data import make_faces, write_folders

from host_training.config import ConfigError, parse_config
from host_training.data import LABELS, DataError, load_splits, read_splits
from host_training.distill import blend_targets
from host_training.ferplus import (
    VOTE_COLUMNS,
    CrowdVotes,
    crowd_metrics,
    read_votes,
    votes_for,
)

HEADER = "split,class,file," + ",".join(VOTE_COLUMNS)
SHARED_VOTES = SHARED / "datasets" / "fer2013" / "ferplus-votes.csv"


def votes_row(**counts: int) -> list[int]:
    """A row of the 10 vote counts from keyword counts, e.g. votes_row(anger=6, NF=4)."""
    return [counts.get(column, 0) for column in VOTE_COLUMNS]


def write_votes(path, rows):
    """rows: [(split, class, file, [10 counts])], written in the order given."""
    lines = [HEADER] + [f"{s},{c},{f}," + ",".join(map(str, v)) for s, c, f, v in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def voted_data(tmp_path):
    """Two faces per class in train/ and test/ folders, and votes for each:
    face 0 of a class is the class by 7 votes of 10 and neutral by 3; face 1
    is voted mostly "not a face". Written in reverse order, so the join
    cannot lean on the order of rows."""
    data = tmp_path / "fer"
    write_folders(data, make_faces(n_per_class=2))
    crowd_name = {
        "angry": "anger",
        "disgust": "disgust",
        "fear": "fear",
        "happy": "happiness",
        "neutral": "neutral",
        "sad": "sadness",
        "surprise": "surprise",
    }
    rows = []
    for folder, prefix in (("train", "train"), ("test", "val")):
        for label in LABELS:
            emotion = crowd_name[label]
            first = (
                votes_row(**{emotion: 7, "neutral": 3})
                if label != "neutral"
                else votes_row(neutral=10)
            )
            rows.append((folder, label, f"{prefix}_0.png", first))
            rows.append(
                (folder, label, f"{prefix}_1.png", votes_row(**{emotion: 2, "NF": 6, "unknown": 2}))
            )
    return data, write_votes(tmp_path / "votes.csv", rows[::-1])


def test_votes_join_each_face_by_its_path(voted_data):
    data, votes_file = voted_data
    splits = read_splits(data)
    table = read_votes(votes_file)
    for name, split in splits.items():
        votes = votes_for(split, table)
        assert len(votes) == len(split) == 14
        for path, counts, label in zip(split.files, votes.counts, split.y, strict=True):
            folder, cls, file = path.split("/")
            assert folder == ("train" if name == "train" else "test") and cls == LABELS[label]
            assert counts.tolist() == table[(folder, cls, file)].tolist()
    # Class folders read alone ("angry/val_0.png") join by class and file.
    alone = read_splits(data / "test")["val"]
    np.testing.assert_array_equal(
        votes_for(alone, table).counts, votes_for(splits["val"], table).counts
    )


def test_distribution_trainable_and_majority():
    votes = CrowdVotes(
        np.array(
            [
                votes_row(anger=7, neutral=3),  # a clear majority
                votes_row(anger=5, sadness=5),  # a tie: no majority
                votes_row(fear=5, surprise=4, unknown=1),  # 5 of 10 is not a strict majority
                votes_row(contempt=6, happiness=4),  # contempt: no FER-2013 label
                votes_row(happiness=4, unknown=3, NF=3),  # 6 unclear votes: not trainable
                votes_row(contempt=5, NF=5),  # no shared emotion at all
                votes_row(disgust=6, contempt=2, unknown=1),  # a 9-vote row still counts
            ]
        )
    )
    angry, disgust, fear, happy, neutral, _, surprise = range(7)
    assert votes.majority().tolist() == [angry, -1, -1, -1, -1, -1, disgust]
    assert votes.trainable().tolist() == [True, True, True, True, False, False, True]
    dist = votes.distribution()
    np.testing.assert_allclose(dist[0], np.eye(7)[angry] * 0.7 + np.eye(7)[neutral] * 0.3)
    np.testing.assert_allclose(dist[2], np.eye(7)[fear] * 5 / 9 + np.eye(7)[surprise] * 4 / 9)
    np.testing.assert_allclose(dist[3], np.eye(7)[happy])  # contempt is renormalized away
    np.testing.assert_allclose(dist[5], np.zeros(7))
    np.testing.assert_allclose(dist[[0, 1, 2, 3, 4, 6]].sum(axis=1), 1.0, rtol=1e-6)


def test_targets_blend_the_label_with_the_crowd():
    y = np.array([0, 4])
    crowd = np.array([[0.0, 0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 1, 0, 0]], np.float32)
    np.testing.assert_array_equal(blend_targets(y, crowd, 0.0), np.eye(7)[y])
    np.testing.assert_array_equal(blend_targets(y, None, 0.5), np.eye(7)[y])
    half = blend_targets(y, crowd, 0.5)
    np.testing.assert_allclose(half[0], 0.5 * np.eye(7)[0] + 0.5 * np.eye(7)[4])
    np.testing.assert_allclose(half[1], np.eye(7)[4])
    np.testing.assert_allclose(blend_targets(y, crowd, 1.0), crowd)


def test_crowd_metrics_arithmetic():
    votes = CrowdVotes(
        np.array(
            [
                votes_row(anger=8, sadness=2),
                votes_row(happiness=6, neutral=4),
                votes_row(fear=5, sadness=5),
            ]
        )
    )
    probs = np.zeros((3, 7))
    probs[0, 0] = 1.0  # angry: right
    probs[1, 4] = 1.0  # neutral, where the majority says happy: wrong
    probs[2, 5] = 1.0  # sad: a tie, left out of the majority protocol
    metrics = crowd_metrics(probs, votes)
    assert metrics["majority_faces"] == 2 and metrics["majority_accuracy"] == 0.5
    # The probability given to the crowd's distribution: 0.8, 0.4 and 0.5.
    assert metrics["crowd_probability"] == pytest.approx((0.8 + 0.4 + 0.5) / 3, abs=1e-4)
    assert metrics["crowd_faces"] == 3


def test_bad_votes_are_one_clear_error(voted_data, tmp_path):
    data, votes_file = voted_data
    split = read_splits(data)["train"]
    with pytest.raises(DataError, match="not found: point data.votes"):
        read_votes(tmp_path / "missing.csv")
    partial = write_votes(
        tmp_path / "partial.csv", [("train", "angry", "train_0.png", votes_row(anger=10))]
    )
    with pytest.raises(DataError, match="no FER\\+ votes for train/angry/train_1.png"):
        votes_for(split, read_votes(partial))
    (tmp_path / "header.csv").write_text("split,class,file,neutral\ntrain,angry,a.png,3\n")
    with pytest.raises(DataError, match="missing column\\(s\\) happiness"):
        read_votes(tmp_path / "header.csv")
    bad = votes_file.read_text().replace(",0,", ",x,", 1)
    (tmp_path / "bad.csv").write_text(bad)
    with pytest.raises(DataError, match=r"bad.csv:2: vote counts must be whole numbers"):
        read_votes(tmp_path / "bad.csv")
    # A CSV data set names no files to join by.
    from test_data import write_csv

    write_csv(tmp_path / "fer2013.csv", make_faces(1))
    with pytest.raises(DataError, match="joined by file name"):
        votes_for(read_splits(tmp_path / "fer2013.csv")["train"], read_votes(votes_file))


def test_file_paths_survive_the_cache_and_the_split(voted_data, tmp_path):
    data, votes_file = voted_data
    first = load_splits(data, cache_dir=tmp_path / "cache")
    cached = load_splits(data, cache_dir=tmp_path / "cache")
    for name in first:
        np.testing.assert_array_equal(first[name].files, cached[name].files)
    # A validation split cut from train/ keeps each face's own path and votes.
    (data / "test").rename(tmp_path / "aside")
    made = load_splits(data, cache_dir=None, val_fraction=0.3)
    table = read_votes(votes_file)
    for split in made.values():
        votes = votes_for(split, table)
        assert all(path.startswith("train/") for path in split.files)
        assert len(votes) == len(split)


def test_crowd_weight_needs_votes():
    with pytest.raises(ConfigError, match="train.crowd_weight needs data.votes"):
        parse_config({"train": {"crowd_weight": 0.5}})
    config = parse_config({"data": {"votes": "v.csv"}, "train": {"crowd_weight": 0.5}})
    assert config.train.crowd_weight == 0.5


def test_training_targets_carry_the_crowd(voted_data):
    pytest.importorskip("tensorflow", reason="the [train] extra is not installed")
    from host_training.train import make_datasets

    data, votes_file = voted_data
    splits = read_splits(data)
    votes = votes_for(splits["train"], read_votes(votes_file))
    config = parse_config(
        {
            "data": {"votes": str(votes_file)},
            "augment": {"flip": False, "shift": 0, "rotation_deg": 0, "zoom": 0},
            "train": {"batch_size": 64, "crowd_weight": 0.5},
        }
    )
    train, (_, val_targets) = make_datasets(splits, config, crowd=votes.distribution())
    targets = np.concatenate([batch[1] for batch in train])
    expected = blend_targets(splits["train"].y, votes.distribution(), 0.5)
    # Shuffled: compare as sets of rows.
    assert sorted(map(tuple, targets.round(4))) == sorted(map(tuple, expected.round(4)))
    assert (targets.max(axis=1) < 1.0).any()  # the crowd's neutral votes are in
    assert (val_targets.max(axis=1) == 1.0).all()  # validation stays FER-2013's


@pytest.fixture(scope="module")
def shared_votes():
    if not SHARED_VOTES.is_file():
        pytest.fail(f"{SHARED_VOTES} not found (../shared is beside the checkout in CI)")
    return read_votes(SHARED_VOTES)


def test_shared_votes_file_as_documented(shared_votes):
    """The figures FERPLUS.md gives, from our reading of the file."""
    public = CrowdVotes(np.stack([v for (s, _, _), v in shared_votes.items() if s == "test"]))
    train = CrowdVotes(np.stack([v for (s, _, _), v in shared_votes.items() if s == "train"]))
    assert (len(train), len(public)) == (28709, 3589)
    assert int((public.majority() >= 0).sum()) == 2854
    assert 150 <= int((~train.trainable()).sum()) <= 200


@pytest.mark.slow
def test_a_run_on_crowd_targets_reports_both_protocols(voted_data, tmp_path):
    pytest.importorskip("tensorflow", reason="the [train] extra is not installed")
    from test_training import python, tiny_config

    data, votes_file = voted_data
    run_dir = tmp_path / "run"
    config = tmp_path / "run.toml"
    toml = tiny_config(tmp_path, data, run_dir, 1, "crowd_weight = 0.5")
    config.write_text(toml.replace("[model]", f'votes = "{votes_file}"\n[model]'))
    trained = python("host_training.train", "--config", str(config))
    # Each class's face voted mostly "not a face" leaves the training set.
    assert "FER+ votes: 7 of 14 training faces left out" in trained.stderr

    model = tmp_path / "m.tflite"
    python("host_training.quantize", "--run", str(run_dir), "--out", str(model))
    validation = json.loads(model.with_suffix(".json").read_text())["metrics"]["validation"]
    for kind in ("float", "int8"):
        assert validation[kind]["ferplus"]["majority_faces"] == 7  # the clear face of each class
        assert 0 <= validation[kind]["ferplus"]["majority_accuracy"] <= 1
