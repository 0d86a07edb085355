"""The ship rule's paired comparison (host_training/compare.py): what it
reports from two models' right/wrong answers on the same faces."""

import numpy as np
import pytest

from host_training.paired import mcnemar_p, paired_difference


def test_a_clear_gain_has_an_interval_above_zero_and_a_small_p():
    rng = np.random.default_rng(1)
    shipped = rng.random(2000) < 0.70
    candidate = shipped.copy()
    candidate[np.flatnonzero(~shipped)[:120]] = True  # right on 120 faces it got wrong
    result = paired_difference(shipped, candidate)
    assert result["gained"] == 120 and result["lost"] == 0
    assert result["difference"] == pytest.approx(0.06, abs=1e-4)
    assert 0 < result["interval_95"][0] < 0.06 < result["interval_95"][1]
    assert result["mcnemar_p"] < 1e-6


def test_noise_the_size_of_a_few_faces_is_not_a_difference():
    rng = np.random.default_rng(2)
    shipped = rng.random(300) < 0.65
    candidate = shipped.copy()
    flip = rng.choice(300, 6, replace=False)  # three faces each way change
    candidate[flip[:3]] = ~candidate[flip[:3]]
    candidate[flip[3:]] = ~candidate[flip[3:]]
    result = paired_difference(shipped, candidate)
    assert result["interval_95"][0] < 0 < result["interval_95"][1] or result["difference"] == 0
    assert result["mcnemar_p"] > 0.2


def test_mcnemar_is_the_exact_binomial_tail():
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(5, 5) == 1.0
    assert mcnemar_p(0, 6) == pytest.approx(2 / 64)  # all six disagreements one way
    assert mcnemar_p(1, 9) == pytest.approx(2 * 11 / 1024)


def test_answers_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="one per face"):
        paired_difference(np.ones(3, bool), np.ones(4, bool))


def test_the_verdict_is_the_written_rule_on_the_figures():
    from host_training.compare import verdict

    rng = np.random.default_rng(3)
    shipped = rng.random(3000) < 0.70
    better = shipped.copy()
    better[np.flatnonzero(~shipped)[:150]] = True
    result = {
        "ferplus_majority": paired_difference(shipped, better),
        "fer2013_labels": paired_difference(shipped, shipped),  # even
        "recall_fer2013": {"candidate": {"angry": 0.6, "disgust": 0.31, "happy": 0.9}},
    }
    assert all(ok for _, ok, _ in verdict(result))
    result["recall_fer2013"]["candidate"]["disgust"] = 0.29  # one class below the floor
    failed = [rule for rule, ok, said in verdict(result) if not ok]
    assert failed == ["every class's recall at least 0.30"]
    worse = shipped.copy()
    worse[np.flatnonzero(shipped)[:150]] = False  # FER-2013 labels: clearly worse
    result["fer2013_labels"] = paired_difference(shipped, worse)
    failed = {rule for rule, ok, said in verdict(result) if not ok}
    assert "FER-2013 labels: not worse beyond noise" in failed
