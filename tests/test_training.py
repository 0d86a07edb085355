"""Training smoke test: 1 epoch on ~100 images -> int8 TFLite -> evaluation."""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import MODEL, ROOT
from test_data import make_faces, write_folders

pytest.importorskip("tensorflow", reason="the [train] extra is not installed")

from edge.classifier import EmotionClassifier
from host_training.data import LABELS


def tiny_config(tmp_path, data, run_dir, epochs: int, extra: str = "") -> str:
    """A TOML training config for a tiny CNN on `data`; `extra` adds [train] keys."""
    return f"""
[data]
path = "{data}"
cache_dir = "{tmp_path / "cache"}"
[model]
architecture = "cnn"
widths = [8, 16]
dense = 16
[train]
epochs = {epochs}
batch_size = 32
output_dir = "{run_dir}"
{extra}"""


def tiny_run(tmp_path, n_per_class: int, epochs: int, extra: str = "", name: str = "run"):
    """Generated faces in tmp_path/fer and a tiny config for a run there: (data, run, config)."""
    data = tmp_path / "fer"
    if not data.exists():
        write_folders(data, make_faces(n_per_class=n_per_class))
    run_dir = tmp_path / name
    config = tmp_path / f"{name}.toml"
    config.write_text(tiny_config(tmp_path, data, run_dir, epochs, extra))
    return data, run_dir, config


def run_module(*args) -> subprocess.CompletedProcess:
    """`python -m ARGS` from the repository, on the TensorFlow backend."""
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "KERAS_BACKEND": "tensorflow"},
        timeout=300,
    )


def python(*args) -> subprocess.CompletedProcess:
    proc = run_module(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_train_resume_quantize_evaluate(tmp_path):
    data, run_dir, config = tiny_run(tmp_path, n_per_class=8, epochs=2)

    python("host_training.train", "--config", str(config), "--epochs", "1")
    state = json.loads((run_dir / "state.json").read_text())
    assert state["epoch"] == 1 and state["finished"]
    # A second run without --resume refuses to overwrite the run.
    again = run_module("host_training.train", "--config", str(config))
    assert again.returncode == 2 and "--resume" in again.stderr

    # Resume an unfinished run: it continues after the last epoch.
    state["finished"] = False
    saved = json.loads((run_dir / "config.json").read_text())
    saved["train"]["epochs"] = 2
    (run_dir / "config.json").write_text(json.dumps(saved))
    (run_dir / "state.json").write_text(json.dumps(state))
    python("host_training.train", "--config", str(config), "--resume")
    log_rows = (run_dir / "log.csv").read_text().splitlines()
    assert len(log_rows) == 3  # header + epochs 1 and 2, none repeated

    model = tmp_path / "m.tflite"
    python("host_training.quantize", "--run", str(run_dir), "--out", str(model))
    meta = json.loads(model.with_suffix(".json").read_text())
    assert meta["labels"] == ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    assert meta["architecture"]["macs"] > 0 and meta["architecture"]["parameters"] > 0
    assert set(meta["metrics"]["validation"]) == {"float", "int8"}
    refused = run_module("host_training.quantize", "--run", str(run_dir), "--out", str(model))
    assert refused.returncode == 2 and "--force" in refused.stderr

    out = tmp_path / "report"
    proc = python(
        "host_training.evaluate",
        str(model),
        str(data),
        "--out",
        str(out),
        "--log",
        str(run_dir / "log.csv"),
    )
    assert "accuracy" in proc.stdout and "confusion" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["samples"] == 56
    assert np.array(report["confusion"]).sum() == 56
    assert (out / "confusion.png").stat().st_size > 0
    assert (out / "training.png").stat().st_size > 0


def test_models_build_and_count_macs():
    from host_training.models import build_model, count_macs

    cnn = build_model("cnn", widths=(8, 16), dense=8)
    assert cnn.input_shape == (None, 48, 48, 1) and cnn.output_shape == (None, 7)
    # conv 1->8 and 8->8 at 48x48, 8->16 and 16->16 at 24x24, dense 16->8->7
    expected = 9 * 48 * 48 * (1 * 8 + 8 * 8) + 9 * 24 * 24 * (8 * 16 + 16 * 16) + 16 * 8 + 8 * 7
    assert count_macs(cnn) == expected
    mobile = build_model("mobilenet_v2", alpha=0.35, backbone_size=64)
    assert mobile.output_shape == (None, 7)
    with pytest.raises(ValueError, match="cnn, mobilenet_v2"):
        build_model("resnet")


def test_training_config_rejects_unknown_keys(tmp_path):
    from host_training.config import ConfigError, load_config

    bad = tmp_path / "c.toml"
    bad.write_text("[model]\narchitecture = 'cnn'\nwidth = [8]\n")
    with pytest.raises(ConfigError, match="model.width"):
        load_config(bad)
    bad.write_text("[train]\nepoch = 3\n")
    with pytest.raises(ConfigError, match="train.epoch: unknown key"):
        load_config(bad)


def test_validating_on_held_out_train_faces_never_reads_the_test_split(tmp_path):
    from host_training.calibration import in_calibration_split
    from host_training.config import ConfigError, DataConfig
    from host_training.data import Split
    from host_training.train import hold_out

    def split(prefix: str, n: int) -> Split:
        files = np.array([f"{prefix}/happy/{i}.png" for i in range(n)])
        return Split(np.zeros((n, 48, 48), np.uint8), np.arange(n) % 7, files)

    splits = {"train": split("train", 200), "val": split("test", 50)}
    data = DataConfig(calibration_fraction=0.2, validate_on="held_out")
    out = hold_out(splits, data)
    held = set(splits["train"].files[in_calibration_split(splits["train"].files, 0.2)])
    assert 20 < len(held) < 60
    assert set(out["val"].files) == held  # validation: the held-out train faces
    assert not held & set(out["train"].files)  # and none of them trains
    assert len(out["train"]) + len(out["val"]) == 200
    # the default still validates on the data's own test split
    assert set(hold_out(splits, DataConfig(calibration_fraction=0.2))["val"].files) == set(
        splits["val"].files
    )
    with pytest.raises(ValueError, match="needs data.calibration_fraction"):
        DataConfig(validate_on="held_out")
    bad = tmp_path / "c.toml"
    bad.write_text("[data]\nvalidate_on = 'held_out'\n")
    from host_training.config import load_config

    with pytest.raises(ConfigError, match="calibration_fraction"):
        load_config(bad)


def test_learning_rate_schedules():
    from host_training.config import parse_config
    from host_training.train import learning_rate

    def rates(**train):
        config = parse_config({"train": {"epochs": 10, "learning_rate": 1.0, **train}})
        return [learning_rate(epoch, config) for epoch in range(10)]

    cosine = rates(warmup_epochs=2)
    assert cosine[:3] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert all(a > b for a, b in itertools.pairwise(cosine[2:]))  # decays after warm-up
    assert cosine[-1] < 0.05
    assert rates(warmup_epochs=1, lr_schedule="constant") == [0.5] + [1.0] * 9


def test_the_optimizer_is_the_one_the_config_names_and_survives_a_resume(tmp_path):
    import keras

    from host_training.config import ConfigError, parse_config
    from host_training.train import make_optimizer

    def optimizer(**train):
        return make_optimizer(parse_config({"train": {"learning_rate": 0.01, **train}}))

    assert isinstance(optimizer(), keras.optimizers.AdamW)
    sgd = optimizer(optimizer="sgd", weight_decay=5e-4)
    assert type(sgd) is keras.optimizers.SGD
    assert (sgd.momentum, sgd.nesterov, sgd.weight_decay) == (0.9, True, 5e-4)
    with pytest.raises(ConfigError, match="train.optimizer"):
        optimizer(optimizer="adam")

    # --resume reloads last.keras: the optimizer and its momentum come back with it.
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=sgd, loss="mse")
    x, y = np.ones((8, 3), np.float32), np.zeros((8, 2), np.float32)
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "last.keras")
    resumed = keras.models.load_model(tmp_path / "last.keras").optimizer
    assert type(resumed) is keras.optimizers.SGD and resumed.nesterov
    assert int(resumed.iterations) == 1


def test_mixup_blends_each_face_and_its_target_by_the_same_weight():
    import tensorflow as tf

    from host_training.train import mix_batch

    tf.random.set_seed(0)
    n = len(LABELS)
    faces = np.arange(n, dtype=np.float32)[:, None, None, None] * np.ones((1, 4, 4, 1), np.float32)
    targets = np.eye(n, dtype=np.float32)
    weights = set()
    for _ in range(20):
        mixed, mixed_targets = (t.numpy() for t in mix_batch(faces, targets, alpha=0.4))
        np.testing.assert_allclose(mixed_targets.sum(axis=1), 1.0, rtol=1e-6)
        # Each face is still mostly itself, and its pixels are its target's blend.
        assert (mixed_targets.argmax(axis=1) == np.arange(n)).all()
        np.testing.assert_allclose(mixed[:, 0, 0, 0], mixed_targets @ np.arange(n), rtol=1e-5)
        weights.add(round(float(mixed_targets.max(axis=1).min()), 4))
    assert min(weights) >= 0.5 and len(weights) > 10  # a fresh weight each batch

    # augment.mixup puts it in the training batches, and only there.
    from host_training.config import parse_config
    from host_training.data import Split
    from host_training.train import make_datasets

    rng = np.random.default_rng(0)
    split = Split(rng.integers(0, 256, (64, 8, 8), np.uint8), np.arange(64) % n)
    for alpha, blended in ((0.0, False), (0.4, True)):
        config = parse_config({"augment": {"mixup": alpha}, "train": {"batch_size": 32}})
        train, (_, val_targets) = make_datasets({"train": split, "val": split}, config)
        train_targets = np.concatenate([train[i][1] for i in range(len(train))])
        assert (train_targets.max(axis=1) < 1.0).any() == blended
        assert (val_targets.max(axis=1) == 1.0).all()


def test_initial_weights_load_and_a_mismatch_names_the_key(tmp_path):
    from host_training.config import ConfigError
    from host_training.models import build_model
    from host_training.train import load_initial_weights

    saved = build_model("cnn", widths=(8, 16), dense=8)
    saved.save(tmp_path / "last.keras")
    fresh = build_model("cnn", widths=(8, 16), dense=8)
    load_initial_weights(fresh, tmp_path / "last.keras")
    for a, b in zip(fresh.get_weights(), saved.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    wider = build_model("cnn", widths=(8, 32), dense=8)
    with pytest.raises(ConfigError, match=r"train.init_from: .*same architecture and widths"):
        load_initial_weights(wider, tmp_path / "last.keras")
    with pytest.raises(ConfigError, match="train.init_from: .*not found"):
        load_initial_weights(fresh, tmp_path / "missing.keras")


@pytest.mark.slow
def test_train_from_initial_weights(tmp_path):
    _, first, config = tiny_run(tmp_path, 4, 1)
    python("host_training.train", "--config", str(config))
    init = f'init_from = "{first / "last.keras"}"\nlr_schedule = "constant"'
    _, second, config = tiny_run(tmp_path, 4, 1, init, name="second")
    proc = python("host_training.train", "--config", str(config))
    assert "initial weights from" in proc.stderr
    assert json.loads((second / "config.json").read_text())["train"]["init_from"].endswith(
        "last.keras"
    )
    assert 0 <= json.loads((second / "state.json").read_text())["initial_val_accuracy"] <= 1

    # A missing file, and a TFLite model of another architecture (the shipped one).
    for name, source in (("third", tmp_path / "none.keras"), ("fourth", MODEL)):
        _, _, config = tiny_run(tmp_path, 4, 1, f'init_from = "{source}"', name=name)
        proc = run_module("host_training.train", "--config", str(config))
        assert proc.returncode == 2 and "train.init_from" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert "has 10 conv/dense layers, the [model] of this config 6" in proc.stderr


def test_committed_configs_load_and_their_teachers_are_committed_or_trained_by_one():
    """A teacher is a committed model, or the run a committed config trains (the GPU route)."""
    from host_training.config import load_config

    configs = {path: load_config(path) for path in (ROOT / "host_training/configs").glob("*.toml")}
    assert any(path.name == "cnn.toml" for path in configs)
    trained = {}  # the .keras files each committed config's run writes
    for config in configs.values():
        out = Path(config.train.output_dir)
        names = ["best", "last"] + (["averaged"] if config.train.average_epochs else [])
        trained.update({out / f"{name}.keras": out for name in names})
    for path, config in configs.items():
        for teacher in config.train.teachers:
            if Path(teacher) in trained:
                assert trained[Path(teacher)] != Path(config.train.output_dir), path.name
                continue
            assert (ROOT / teacher).is_file(), f"{path.name}: teacher {teacher} is not in the repo"
            assert (ROOT / teacher).with_suffix(".json").is_file(), f"{teacher}: no metadata"


def test_distillation_targets_blend_the_teachers():
    from host_training.distill import blend_targets, teacher_probabilities

    faces = np.stack(make_faces(n_per_class=1)["happy"] + make_faces(1, seed=1)["sad"])
    one = teacher_probabilities([MODEL], faces, threads=1)
    with EmotionClassifier(MODEL, num_threads=1, flip_average=True) as classifier:
        order = [classifier.labels.index(label) for label in LABELS]
        np.testing.assert_allclose(one, classifier.predict_faces(faces)[:, order], atol=1e-6)
    np.testing.assert_allclose(teacher_probabilities([MODEL, MODEL], faces, 1), one, atol=1e-6)
    targets = blend_targets(np.array([3, 5]), one, 0.25)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(targets[0, 3], 0.75 + 0.25 * one[0, 3], atol=1e-6)
    np.testing.assert_allclose(targets[1, :5], 0.25 * one[1, :5], atol=1e-6)
    assert (blend_targets(np.array([3]), None, 0.5) == np.eye(7)[3]).all()


def test_a_float_keras_run_teaches_flip_averaged_and_a_broken_one_is_named(tmp_path):
    """A GPU host's teachers are runs' .keras files, run by Keras itself."""
    from host_training.distill import TeacherError, teacher_probabilities
    from host_training.models import build_model

    model = build_model("cnn", input_size=48, num_classes=len(LABELS), widths=(8, 16), dense=16)
    model.save(tmp_path / "teacher.keras")
    faces = np.stack(make_faces(n_per_class=1)["happy"] + make_faces(1, seed=1)["sad"])
    probs = teacher_probabilities([tmp_path / "teacher.keras"], faces)
    as_float = faces[..., None].astype(np.float32)
    plain, mirrored = (
        model.predict(as_float, verbose=0),
        model.predict(as_float[:, :, ::-1], verbose=0),
    )
    np.testing.assert_allclose(probs, (plain + mirrored) / 2, atol=1e-5)
    assert not np.allclose(plain, mirrored, atol=1e-6), (
        "the faces are symmetric: no test of the flip"
    )

    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    with pytest.raises(TeacherError, match=r"broken\.keras is not a readable Keras model"):
        teacher_probabilities([tmp_path / "broken.keras"], faces)
    with pytest.raises(TeacherError, match=r"gone\.keras does not exist"):
        teacher_probabilities([tmp_path / "gone.keras"], faces)


def test_teacher_views_move_the_face_and_average_over_every_view():
    from host_training.distill import TeacherError, moved_faces, teacher_probabilities

    faces = np.zeros((2, 48, 48), np.uint8)
    faces[:, 20:28, 10] = 255  # a vertical bar at column 10
    assert moved_faces(faces, 0, 0, 1.0) is faces
    right = moved_faces(faces, 2, 0, 1.0)
    assert right.shape == faces.shape and (right[:, 20:28, 12] == 255).all()
    assert (right[:, 20:28, 10] == 0).all()
    down = moved_faces(faces, 0, 2, 1.0)
    assert (down[:, 22:30, 10] == 255).all() and (down[:, 20:22, 10] == 0).all()
    # A zoom about the centre pulls the bar towards the edge (column 23.5 stays put).
    zoomed = moved_faces(faces, 0, 0, 1.1)
    assert zoomed[0, 24].argmax() < 10

    faces = np.stack(make_faces(n_per_class=1)["happy"] + make_faces(1, seed=1)["fear"])
    moves = [(0, 0, 1.0), (-2, 0, 1.0), (2, 0, 1.0), (0, -2, 1.0), (0, 2, 1.0)]
    moves += [(0, 0, 0.9), (0, 0, 1.1)]
    with EmotionClassifier(MODEL, num_threads=1, flip_average=True) as classifier:
        order = [classifier.labels.index(label) for label in LABELS]
        each = [classifier.predict_faces(moved_faces(faces, *m))[:, order] for m in moves]
    views = teacher_probabilities([MODEL], faces, threads=1, views="flip-shift-zoom")
    np.testing.assert_allclose(views, np.mean(each, axis=0), atol=1e-6)
    assert not np.allclose(views, each[0], atol=1e-4), "the moved views changed nothing"
    with pytest.raises(TeacherError, match="teacher_views"):
        teacher_probabilities([MODEL], faces, threads=1, views="crops")


def test_cached_teacher_probabilities_recompute_when_the_views_change(tmp_path, monkeypatch):
    from host_training import distill

    faces = np.stack(make_faces(n_per_class=1)["happy"] + make_faces(1, seed=1)["sad"])
    flip = distill.cached_teacher_probabilities([MODEL], faces, tmp_path, "flip")
    assert json.loads((tmp_path / "teacher_probs.json").read_text())["views"] == "flip"
    views = distill.cached_teacher_probabilities([MODEL], faces, tmp_path, "flip-shift-zoom")
    assert not np.allclose(flip, views, atol=1e-4)
    assert json.loads((tmp_path / "teacher_probs.json").read_text())["views"] == "flip-shift-zoom"

    def not_again(*args, **kwargs):
        raise AssertionError("the cached probabilities were recomputed")

    monkeypatch.setattr(distill, "teacher_probabilities", not_again)
    again = distill.cached_teacher_probabilities([MODEL], faces, tmp_path, "flip-shift-zoom")
    np.testing.assert_array_equal(again, views)


@pytest.mark.slow
def test_train_with_a_teacher(tmp_path):
    _, run_dir, config = tiny_run(tmp_path, 4, 1, f'teachers = ["{MODEL}"]')
    python("host_training.train", "--config", str(config))
    assert np.load(run_dir / "teacher_probs.npy").shape == (28, 7)
    assert json.loads((run_dir / "state.json").read_text())["finished"]

    missing = tmp_path / "missing.tflite"
    _, _, config = tiny_run(tmp_path, 4, 1, f'teachers = ["{missing}"]', name="run2")
    proc = run_module("host_training.train", "--config", str(config))
    assert proc.returncode == 2
    assert "train.teachers" in proc.stderr and "missing.tflite" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_weight_average_is_the_mean_and_survives_a_restart(tmp_path):
    import keras

    from host_training.averaging import WeightAverage

    def model_with(value: float) -> keras.Model:
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.set_weights([np.full(w.shape, value, np.float32) for w in model.get_weights()])
        return model

    average = WeightAverage(tmp_path / "sum.npz")
    average.add(model_with(1.0), epoch=5)
    average.add(model_with(4.0), epoch=6)
    average.add(model_with(100.0), epoch=6)  # epoch 6 redone after a crash: not counted twice
    reloaded = WeightAverage(tmp_path / "sum.npz")
    assert reloaded.epochs == [5, 6]
    target = model_with(0.0)
    reloaded.apply(target, batches=[])
    for weights in target.get_weights():
        np.testing.assert_allclose(weights, 2.5)


def test_batch_norm_statistics_are_the_mean_over_all_batches():
    import keras

    from host_training.averaging import recompute_batch_norm

    model = keras.Sequential([keras.Input((2,)), keras.layers.BatchNormalization(momentum=0.9)])
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc, 1.0, (64, 2)).astype(np.float32) for loc in (0.0, 4.0, 8.0)]
    assert recompute_batch_norm(model, batches) == 3
    bn = model.layers[0]
    # Equal-size batches: the mean of the batch means (a decayed average would favour the last).
    expected_mean = np.mean([b.mean(axis=0) for b in batches], axis=0)
    expected_var = np.mean([b.var(axis=0) for b in batches], axis=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_mean), expected_mean, rtol=1e-4)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(bn.moving_variance), expected_var, rtol=1e-3
    )
    assert bn.momentum == 0.9


@pytest.mark.slow
def test_weight_averaging_run_is_what_quantize_converts(tmp_path):
    import keras

    from host_training.data import load_splits

    # Heavy augmentation, so statistics taken from augmented batches would differ.
    extra = "average_epochs = 2\n[augment]\nerasing = 1.0\nbrightness = 0.5"
    data, run_dir, config = tiny_run(tmp_path, 4, 3, extra)
    python("host_training.train", "--config", str(config))
    state = json.loads((run_dir / "state.json").read_text())
    assert state["averaged_epochs"] == [2, 3] and 0 <= state["averaged_val_accuracy"] <= 1
    # The averaged model's batch-norm statistics are those of the training faces
    # as inference sees them: unaugmented.
    averaged = keras.models.load_model(run_dir / "averaged.keras", compile=False)
    faces = load_splits(data, cache_dir=None)["train"].x[..., None].astype(np.float32)
    conv = keras.Model(averaged.input, averaged.get_layer("block1_conv1").output)
    outputs = keras.ops.convert_to_numpy(conv(faces)).reshape(-1, 8)
    norm = averaged.get_layer("block1_bn1")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(norm.moving_mean), outputs.mean(axis=0), rtol=1e-3, atol=1e-4
    )

    # Interrupted after the last epoch, before the average was written: resume writes it.
    (run_dir / "averaged.keras").unlink()
    python("host_training.train", "--config", str(config), "--resume")
    assert (run_dir / "averaged.keras").is_file()
    assert len((run_dir / "log.csv").read_text().splitlines()) == 4  # no epoch trained again

    model = tmp_path / "m.tflite"
    python("host_training.quantize", "--run", str(run_dir), "--out", str(model))
    training = json.loads(model.with_suffix(".json").read_text())["training"]
    assert training["checkpoint"] == "averaged.keras" and training["averaged_epochs"] == [2, 3]
    # --checkpoint picks another model of the same run.
    python(
        "host_training.quantize",
        "--run",
        str(run_dir),
        "--out",
        str(model),
        "--force",
        "--checkpoint",
        "best",
    )
    assert (
        json.loads(model.with_suffix(".json").read_text())["training"]["checkpoint"] == "best.keras"
    )


def _int8_cnn(tmp_path):
    """A small trained-looking cnn, its int8 file, and the faces it separates."""
    import keras

    from host_training.averaging import batch_norm_layers, recompute_batch_norm
    from host_training.models import build_model
    from host_training.quantize import convert_int8

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    # Blotchy images rather than pixel noise, whose pooled features barely differ.
    blotches = rng.integers(0, 256, (160, 6, 6)).astype(np.float32)
    faces = np.kron(blotches, np.ones((8, 8), np.float32))[..., None]
    original = build_model("cnn", widths=(8, 16), dense=8)
    # Batch-norms far from identity (scale, offset, and statistics of these
    # faces), so a wrong unfolding shows in the outputs; large logits, so the
    # predicted class depends on the face.
    for norm in batch_norm_layers(original):
        norm.gamma.assign(rng.uniform(0.5, 2.0, norm.gamma.shape))
        norm.beta.assign(rng.normal(0.0, 0.5, norm.beta.shape))
    recompute_batch_norm(original, [faces[i : i + 40] for i in range(0, len(faces), 40)])
    logits = original.get_layer("logits")
    logits.kernel.assign(keras.ops.convert_to_numpy(logits.kernel) * 10.0)
    path = tmp_path / "m.tflite"
    path.write_bytes(convert_int8(original, faces[:64, ..., 0]))
    return original, path, faces


def test_weights_recovered_from_int8_tflite_compute_the_same_function(tmp_path):
    import keras

    from host_training.from_tflite import TFLiteWeightsError, load_tflite_weights
    from host_training.models import build_model
    from host_training.train import load_initial_weights

    original, path, faces = _int8_cnn(tmp_path)
    recovered = build_model("cnn", widths=(8, 16), dense=8)
    load_tflite_weights(recovered, path, faces)
    want = original.predict(faces, verbose=0)
    got = recovered.predict(faces, verbose=0)
    assert len(set(want.argmax(1))) >= 3  # a function of the face, not a constant
    assert np.abs(got - want).mean() < 0.01
    assert (got.argmax(1) == want.argmax(1)).mean() > 0.9
    # In training mode the batch-norms use the batch's own statistics: the
    # recomputed ones make that (nearly) the same function too.
    for layer in recovered.layers:
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
    trained_mode = keras.ops.convert_to_numpy(recovered(faces[:70], training=True))
    assert np.abs(trained_mode - got[:70]).mean() < 0.02

    # Through train's entry point, as train.init_from does it.
    fresh = build_model("cnn", widths=(8, 16), dense=8)
    load_initial_weights(fresh, path, faces)
    np.testing.assert_allclose(fresh.predict(faces, verbose=0), got, atol=0.02)

    wider = build_model("cnn", widths=(8, 32), dense=8)
    with pytest.raises(TFLiteWeightsError, match="does not fit layer block2_conv1"):
        load_tflite_weights(wider, path, faces)
    (tmp_path / "bad.tflite").write_bytes(b"not a model")
    with pytest.raises(TFLiteWeightsError, match="not a readable TFLite model"):
        load_tflite_weights(recovered, tmp_path / "bad.tflite", faces)


def test_a_deepened_model_starts_from_the_int8_models_function(tmp_path):
    import keras

    from host_training.config import ConfigError
    from host_training.from_tflite import TFLiteWeightsError, load_tflite_weights
    from host_training.models import build_model
    from host_training.train import load_initial_weights

    original, path, faces = _int8_cnn(tmp_path)
    want = original.predict(faces, verbose=0)
    deeper = build_model("cnn", widths=(8, 16), convs_per_block=[3, 4], dense=8)
    with pytest.raises(TFLiteWeightsError, match=r"has 6 conv/dense layers, .* 9: .*init_deepen"):
        load_tflite_weights(deeper, path, faces)
    load_initial_weights(deeper, path, faces, deepen=True)
    # The file's convs come first in each block; the extra ones are the identity.
    same_depth = build_model("cnn", widths=(8, 16), dense=8)
    load_tflite_weights(same_depth, path, faces)

    def kernel(model, name):
        return keras.ops.convert_to_numpy(model.get_layer(name).kernel)

    for name in ("block1_conv2", "block2_conv1", "block2_conv2", "head_dense", "logits"):
        np.testing.assert_array_equal(kernel(deeper, name), kernel(same_depth, name))
    for name, width in (("block1_conv3", 8), ("block2_conv3", 16), ("block2_conv4", 16)):
        identity = np.zeros((3, 3, width, width), np.float32)
        identity[1, 1] = np.eye(width)
        np.testing.assert_array_equal(kernel(deeper, name), identity)
    got = deeper.predict(faces, verbose=0)
    assert np.abs(got - want).mean() < 0.01
    assert (got.argmax(1) == want.argmax(1)).mean() > 0.9

    # An extra conv that cannot be the identity (it changes the width) still fails.
    wider_end = build_model("cnn", widths=(8, 16, 32), dense=8)
    with pytest.raises(TFLiteWeightsError, match="does not fit layer block3_conv1"):
        load_tflite_weights(wider_end, path, faces, deepen=True)
    shallower = build_model("cnn", widths=(8, 16), convs_per_block=[2, 1], dense=8)
    with pytest.raises(TFLiteWeightsError, match="does not fit layer"):
        load_tflite_weights(shallower, path, faces, deepen=True)
    deeper.save(tmp_path / "deeper.keras")
    with pytest.raises(ConfigError, match=r"train.init_deepen: .*\.tflite"):
        load_initial_weights(deeper, tmp_path / "deeper.keras", faces, deepen=True)
    with pytest.raises(ValueError, match="convs_per_block has 3 counts for 2 blocks"):
        build_model("cnn", widths=(8, 16), convs_per_block=[2, 2, 2])


def test_training_plot_marks_the_weight_average(tmp_path):
    from host_training.report import _averaged, plot_training

    log = tmp_path / "log.csv"
    log.write_text(
        "epoch,accuracy,loss,val_accuracy,val_loss\n0,0.5,1.4,0.45,1.5\n1,0.6,1.3,0.5,1.4\n"
    )
    assert _averaged(tmp_path / "state.json") is None  # no state: a plain curve
    (tmp_path / "state.json").write_text(
        json.dumps({"averaged_epochs": [1, 2], "averaged_val_accuracy": 0.55})
    )
    assert _averaged(tmp_path / "state.json") == ((1, 2), 0.55)
    assert plot_training(log, tmp_path / "training.png").stat().st_size > 0


def test_without_tensorflow_the_batches_are_shuffled_and_augmented_by_the_backend():
    """A GPU host without TensorFlow: every face once per epoch, a new order
    each epoch, augmented, and mixup still blends faces and targets alike."""
    from host_training.batches import BackendBatches
    from host_training.config import parse_config
    from host_training.train import make_augmenter

    n = len(LABELS)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (70, 8, 8, 1)).astype(np.float32)
    x[:, 0, 0, 0] = np.arange(70)  # each face's id, which only a flip or shift moves
    y = np.eye(n, dtype=np.float32)[np.arange(70) % n]
    plain = parse_config(
        {
            "augment": {
                "flip": False,
                "shift": 0,
                "rotation_deg": 0,
                "zoom": 0,
                "brightness": 0,
                "contrast": 0,
                "erasing": 0,
            }
        }
    )
    batches = BackendBatches(x, y, 32, make_augmenter(plain), seed=0)
    assert len(batches) == 3
    first = np.concatenate([batches[i][0][:, 0, 0, 0] for i in range(3)])
    assert sorted(first.tolist()) == list(range(70)) and (first != np.arange(70)).any()
    batches.on_epoch_end()
    second = np.concatenate([batches[i][0][:, 0, 0, 0] for i in range(3)])
    assert sorted(second.tolist()) == list(range(70)) and (second != first).any()

    augmented = BackendBatches(x, y, 70, make_augmenter(parse_config({})), seed=0)[0][0]
    # Shuffled, so compared as sorted pixel values: the default augmentation moves them.
    assert not np.allclose(np.sort(augmented.ravel()), np.sort(x.ravel()))

    mixed, targets = BackendBatches(x, y, 70, make_augmenter(plain), mixup=0.4, seed=0)[0]
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)
    assert (targets.max(axis=1) < 1.0).any() and (targets.max(axis=1) >= 0.5).all()
    assert (mixed[:, 0, 0, 0] % 1 != 0).any()  # face ids blended with other faces' ids


def test_one_warp_per_face_moves_it_as_the_matrix_says_and_within_the_layers_ranges():
    """The backend path's flip/rotation/shift/zoom: exact on whole-pixel moves,
    and draws inside the configured ranges."""
    from host_training.warp import RandomAffine, warp

    faces = np.random.default_rng(0).integers(0, 256, (4, 12, 12, 1)).astype(np.float32)

    def moved(matrix):
        return warp(faces, np.tile(np.asarray(matrix, np.float32), (4, 1, 1)))

    np.testing.assert_allclose(moved([[1, 0, 0], [0, 1, 0]]), faces, atol=1e-3)
    np.testing.assert_allclose(moved([[-1, 0, 0], [0, 1, 0]]), faces[:, :, ::-1], atol=1e-3)
    # A quarter turn about the centre, and one pixel (2/12 of the 2-unit side) to the left.
    np.testing.assert_allclose(
        moved([[0, -1, 0], [1, 0, 0]]), np.rot90(faces, 1, axes=(1, 2)), atol=1e-3
    )
    left = moved([[1, 0, 2 / 12], [0, 1, 0]])
    np.testing.assert_allclose(left[:, :, :-1], faces[:, :, 1:], atol=1e-3)
    np.testing.assert_allclose(left[:, :, -1], faces[:, :, -1], atol=1e-3)  # edge repeated

    matrices = RandomAffine(flip=True, rotation_deg=10, shift=0.1, zoom=0.1).matrices(2000)
    linear = matrices[:, :, :2]
    gram = np.einsum("nij,nik->njk", linear, linear)
    np.testing.assert_allclose(gram[:, 0, 1], 0, atol=1e-6)  # rotated and scaled, never sheared
    scales = np.linalg.norm(linear, axis=1)  # each column: that axis's zoom
    angles = np.degrees(np.arctan2(linear[:, 1, 0] / scales[:, 0], linear[:, 1, 1] / scales[:, 1]))
    assert scales.min() >= 0.9 - 1e-6 and scales.max() <= 1.1 + 1e-6
    assert np.abs(angles).max() <= 10 + 1e-3 and np.abs(angles).max() > 9
    assert np.abs(matrices[:, :, 2]).max() <= 0.2 and np.abs(matrices[:, :, 2]).max() > 0.19
    assert 0.4 < (np.linalg.det(linear) < 0).mean() < 0.6  # mirrored half the time
    plain = RandomAffine(flip=False).matrices(3)
    np.testing.assert_allclose(plain, np.tile(np.eye(2, 3), (3, 1, 1)), atol=1e-6)


def test_torch_resamples_the_warp_as_keras_does():
    """The fast resampler a GPU host uses gives the faces the Keras one does."""
    pytest.importorskip("torch", reason="torch is only on GPU hosts")
    from host_training.warp import RandomAffine, warp, warp_torch

    faces = np.random.default_rng(0).integers(0, 256, (4, 12, 12, 1)).astype(np.float32)
    random = RandomAffine(True, 10, 0.1, 0.1, seed=1).matrices(4)
    np.testing.assert_allclose(warp_torch(faces, random), warp(faces, random), atol=0.01)


def test_train_step_speed_times_each_config_it_is_given(tmp_path):
    """The script that sized the GPU route: one line per config, its own parameters."""
    from host_training.config import load_config
    from host_training.models import build_model

    small = tmp_path / "small.toml"
    small.write_text(tiny_config(tmp_path, tmp_path / "fer", tmp_path / "run", 1))
    wide = tmp_path / "wide.toml"
    wide.write_text(small.read_text().replace("widths = [8, 16]", "widths = [16, 32]"))
    proc = python("scripts.train_step_speed", small, wide, "--steps", "1", "--rounds", "1")
    for path in (small, wide):
        config = load_config(path)
        params = build_model("cnn", num_classes=7, **config.model.builder_kwargs()).count_params()
        line = next(line for line in proc.stdout.splitlines() if f" {path.stem}:" in line)
        assert f"{params / 1e6:.2f} M parameters, batch 32:" in line, line
        assert float(line.split(": ")[-1].split(" s per step")[0]) > 0
