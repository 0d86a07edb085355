"""The shipped model's I/O contract and the classifier's handling of bad models."""

import json
import shutil

import numpy as np
import pytest
from conftest import MODEL, demo_frame, demo_truth

from edge.classifier import EmotionClassifier, ModelError


@pytest.fixture(scope="module")
def classifier():
    with EmotionClassifier(MODEL, num_threads=1) as c:
        yield c


def test_shipped_model_contract(classifier):
    meta = json.loads(MODEL.with_suffix(".json").read_text())
    interpreter = classifier._interpreter
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    assert inp["quantization"][0] > 0 and out["quantization"][0] > 0
    assert list(inp["shape"][1:]) == [*meta["input"]["size"], 1]
    assert out["shape"][-1] == 7 == len(meta["labels"])
    assert classifier.labels == tuple(meta["labels"])
    assert sorted(meta["labels"]) == sorted(
        ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    )
    assert MODEL.stat().st_size <= 1.5 * 1024 * 1024


def test_batch_and_single_give_the_same_probabilities(classifier):
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (5, 48, 48), dtype=np.uint8)
    batch = classifier.predict_faces(faces)
    single = np.concatenate([classifier.predict_faces(f[None]) for f in faces])
    assert batch.shape == (5, 7)
    np.testing.assert_allclose(batch, single, atol=1e-6)
    np.testing.assert_allclose(batch.sum(axis=1), 1.0, atol=1e-5)
    assert classifier.predict_faces(np.zeros((0, 48, 48), np.uint8)).shape == (0, 7)


def test_flip_average_is_the_mean_of_the_face_and_its_mirror(classifier):
    from edge.config import ClassifierConfig

    faces = demo_frame(40)[100:148, 200:248, 1][None].repeat(3, axis=0)
    faces[1] = np.random.default_rng(1).integers(0, 256, (48, 48), dtype=np.uint8)
    faces[2] = np.ascontiguousarray(faces[1][:, ::-1])  # the mirror of face 1
    plain = classifier.predict_faces(faces)
    mirrored = classifier.predict_faces(np.ascontiguousarray(faces[:, :, ::-1]))
    config = ClassifierConfig(model=str(MODEL), num_threads=1, flip_average=True)
    with EmotionClassifier.from_config(config) as averaging:
        averaged = averaging.predict_faces(faces)
    np.testing.assert_allclose(averaged, (plain + mirrored) / 2, atol=1e-6)
    np.testing.assert_allclose(averaged[1], averaged[2], atol=1e-6)  # mirror-invariant
    assert not np.allclose(plain[1], plain[2], atol=1e-3)  # which the model alone is not


def test_classify_boxes_in_a_frame(classifier):
    frame = demo_frame(40)
    boxes = [f["box"] for f in demo_truth()["frames"][40]["faces"]]
    probs = classifier.classify(frame, boxes)
    assert probs.shape == (2, 7)
    with pytest.raises(ValueError, match="expected faces of shape"):
        classifier.predict_faces(np.zeros((2, 32, 32), np.uint8))


def copy_model(tmp_path):
    shutil.copy(MODEL, tmp_path / "m.tflite")
    shutil.copy(MODEL.with_suffix(".json"), tmp_path / "m.json")
    return tmp_path / "m.tflite"


def test_missing_model_and_metadata(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        EmotionClassifier(tmp_path / "none.tflite")
    model = copy_model(tmp_path)
    model.with_suffix(".json").unlink()
    with pytest.raises(ModelError, match="metadata .* not found"):
        EmotionClassifier(model)


def test_corrupt_model(tmp_path):
    model = copy_model(tmp_path)
    model.write_bytes(model.read_bytes()[:2000])
    with pytest.raises(ModelError, match="corrupt or not a TFLite model"):
        EmotionClassifier(model)


def test_metadata_problems(tmp_path):
    model = copy_model(tmp_path)
    meta_path = model.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "labels": meta["labels"][:5]}))
    with pytest.raises(ModelError, match="7 outputs but its metadata lists 5 labels"):
        EmotionClassifier(model)
    meta_path.write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        EmotionClassifier(model)
    meta_path.write_text(json.dumps({"input": {}}))
    with pytest.raises(ModelError, match="no 'labels'"):
        EmotionClassifier(model)


def test_labels_come_from_the_metadata(tmp_path):
    """Reordering the labels in the JSON renames the outputs: nothing is hard-coded."""
    model = copy_model(tmp_path)
    meta_path = model.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "labels": meta["labels"][::-1]}))
    with EmotionClassifier(model) as reversed_labels:
        assert reversed_labels.labels == tuple(meta["labels"][::-1])


def test_an_ensemble_averages_its_members_and_needs_them_alike(tmp_path):
    from edge.classifier import EnsembleClassifier
    from edge.config import ClassifierConfig

    other = MODEL.parent.parent / "host_training" / "teachers" / "cnn-swa2.tflite"
    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    config = ClassifierConfig(models=[str(MODEL), str(other)])
    with EmotionClassifier.from_config(config) as ensemble:
        assert isinstance(ensemble, EnsembleClassifier)
        assert ensemble.name == f"{MODEL.name} + {other.name}" == config.model_name
        with (
            EmotionClassifier(MODEL, flip_average=True) as one,
            EmotionClassifier(other, flip_average=True) as two,
        ):
            mean = (one.predict_faces(faces) + two.predict_faces(faces)) / 2
        assert np.allclose(ensemble.predict_faces(faces), mean, atol=1e-6)
    with EmotionClassifier.from_config(ClassifierConfig()) as single:
        assert not isinstance(single, EnsembleClassifier)  # `model` alone: no ensemble
    # a member whose outputs mean other emotions cannot be averaged in
    shuffled = tmp_path / "shuffled.tflite"
    shutil.copy(MODEL, shuffled)
    meta = json.loads(MODEL.with_suffix(".json").read_text())
    meta["labels"] = meta["labels"][::-1]
    shuffled.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="an ensemble needs models trained alike"):
        EmotionClassifier.from_config(ClassifierConfig(models=[str(MODEL), str(shuffled)]))


def test_a_temperature_in_the_metadata_softens_the_confidence_not_the_label(tmp_path):
    from edge.classifier import with_temperature

    warm = tmp_path / "warm.tflite"
    shutil.copy(MODEL, warm)
    meta = json.loads(MODEL.with_suffix(".json").read_text())
    meta["calibration"] = {"temperature": 2.0}
    warm.with_suffix(".json").write_text(json.dumps(meta))
    faces = np.stack([demo_frame(40)[100:148, 100:148, 0], demo_frame(80)[200:248, 300:348, 0]])
    with EmotionClassifier(MODEL) as plain, EmotionClassifier(warm) as softened:
        raw, soft = plain.predict_faces(faces), softened.predict_faces(faces)
    assert softened.temperature == 2.0 and plain.temperature == 1.0
    assert np.allclose(soft, with_temperature(raw, 2.0))
    assert (soft.argmax(axis=1) == raw.argmax(axis=1)).all()
    assert (soft.max(axis=1) < raw.max(axis=1)).all()
