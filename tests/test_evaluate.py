"""The shipped model evaluated on real PublicTest faces, with the TFLite runtime only."""

import json
import shutil
import tarfile

import cv2
import numpy as np
import pytest
from conftest import MODEL, SHARED

from edge.classifier import EmotionClassifier
from host_training.evaluate import evaluate, format_report, main, metrics_from_predictions
from host_training.ferplus import CrowdVotes, read_votes

TARBALL = SHARED / "datasets" / "fer2013" / "fer2013-train-publictest.tar.gz"
VOTES = SHARED / "datasets" / "fer2013" / "ferplus-votes.csv"
PER_CLASS = 10


@pytest.fixture(scope="module")
def public_test_sample(tmp_path_factory):
    """10 PublicTest faces of each class, in the class-folder layout."""
    if not TARBALL.is_file():
        pytest.fail(f"{TARBALL} not found (../shared is beside the checkout in CI)")
    root = tmp_path_factory.mktemp("publictest")
    taken: dict[str, int] = {}
    with tarfile.open(TARBALL) as archive:
        for member in archive:
            parts = member.name.split("/")
            if len(parts) != 3 or parts[0] != "test" or not member.isfile():
                continue
            if taken.get(parts[1], 0) >= PER_CLASS:
                if len(taken) == 7 and all(n >= PER_CLASS for n in taken.values()):
                    break
                continue
            taken[parts[1]] = taken.get(parts[1], 0) + 1
            archive.extract(member, root, filter="data")
    return root / "test"


def test_shipped_model_on_public_test_faces(public_test_sample):
    metrics = evaluate(MODEL, public_test_sample, cache_dir=None)
    assert metrics["samples"] == 7 * PER_CLASS
    assert np.array(metrics["confusion"]).sum() == 7 * PER_CLASS
    # The same faces through the classifier directly, label by label: evaluate's
    # accuracy and confusion are exactly these predictions counted.
    with EmotionClassifier(MODEL, num_threads=1) as classifier:
        labels = classifier.labels
        right = confusion_total = 0
        for path in sorted(public_test_sample.glob("*/*.jpg")):
            face = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            predicted = labels[int(np.argmax(classifier.predict_faces(face[None])[0]))]
            right += predicted == path.parent.name
            confusion_total += 1
    assert metrics["accuracy"] == pytest.approx(right / confusion_total, abs=1e-4)
    assert np.trace(np.array(metrics["confusion"])) == right, format_report(metrics)
    assert metrics["ms_per_face"] > 0


def test_both_protocols_on_public_test_faces(public_test_sample, tmp_path, capsys, caplog):
    if not VOTES.is_file():
        pytest.fail(f"{VOTES} not found")
    metrics = evaluate(MODEL, public_test_sample, cache_dir=None, votes=VOTES)
    table = read_votes(VOTES)
    sample = sorted(public_test_sample.glob("*/*.jpg"))
    crowd = CrowdVotes(np.stack([table[("test", p.parent.name, p.name)] for p in sample]))
    ferplus = metrics["ferplus"]
    assert ferplus["majority_faces"] == int((crowd.majority() >= 0).sum()) > 40
    assert ferplus["crowd_faces"] == int((crowd.distribution().sum(axis=1) > 0).sum())
    assert 0.2 < ferplus["crowd_probability"] < 1.0
    recorded = json.loads(MODEL.with_suffix(".json").read_text())["metrics"]["validation"]
    if "ferplus" in recorded["int8"]:  # the crowd's majority is easier than FER-2013's labels
        assert (
            ferplus["majority_accuracy"] >= recorded["int8"]["ferplus"]["majority_accuracy"] - 0.2
        )

    # The CLI prints both; faces the votes do not cover are one line with --votes,
    # and left to their own labels by default.
    assert main([str(MODEL), str(public_test_sample), "--votes", str(VOTES)]) == 0
    assert "FER+ majority accuracy" in capsys.readouterr().out
    other = tmp_path / "other" / "happy"
    other.mkdir(parents=True)
    shutil.copy(sample[0], other / "mine.jpg")  # a copy: the module's sample stays whole
    assert main([str(MODEL), str(other.parent), "--votes", str(VOTES)]) == 2
    assert "no FER+ votes for happy/mine.jpg" in caplog.text
    assert main([str(MODEL), str(other.parent)]) == 0
    assert "FER+" not in capsys.readouterr().out


def test_metrics_arithmetic():
    y = np.array([0, 0, 1, 1, 2])
    probs = np.eye(3)[[0, 1, 1, 1, 0]]
    m = metrics_from_predictions(y, probs, ("a", "b", "c"))
    assert m["accuracy"] == 0.6
    assert m["per_class"]["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert m["per_class"]["c"]["recall"] == 0.0
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3, abs=1e-4)


def test_the_pipeline_check_runs_analyze_on_distinct_faces_and_pairs_them(public_test_sample):
    from host_training.pipeline_check import check

    result = check(MODEL, MODEL, public_test_sample.parent, 7 * PER_CLASS)
    assert result["faces"] == result["distinct_files"] == 7 * PER_CLASS
    assert result["found_by_both"] >= 0.85 * result["faces"]  # big faces: the detector finds them
    same = result["difference"]  # a model against itself: the same answer on every face
    assert same["gained"] == same["lost"] == 0 and same["interval_95"] == [0.0, 0.0]
    assert 0.3 < result["accuracy"]["shipped"] == result["accuracy"]["candidate"] < 1.0
