import pytest

from edge.stats import STAGES, RateMeter, Stats, format_line, percentiles


def test_percentiles():
    values = list(range(1, 101))
    p = percentiles(values, (50, 95, 99))
    assert p["p50"] == pytest.approx(50.5)
    assert p["p95"] == pytest.approx(95.05)
    assert percentiles([]) == {"p50": 0.0, "p95": 0.0}


def test_rate_meter_counts_over_its_window():
    meter = RateMeter(window_s=1.0)
    for i in range(11):
        meter.tick(100.0 + i * 0.1)  # 10 intervals in 1 s
    assert meter.rate(101.0) == pytest.approx(10.0)
    assert meter.rate(103.0) == 0.0  # window passed


def test_snapshot_has_every_figure_and_final_uses_all_samples():
    stats = Stats(window=3)
    for i in range(10):
        stats.captured_frame(1.0)
        stats.processed_frame(
            {"capture": 1.0, "detect": float(i), "classify": 2.0, "render": 1.0},
            latency_ms=10.0 + i,
            labels=["happy"] * (i % 2),
        )
    recent, final = stats.snapshot(), stats.snapshot(final=True)
    assert set(recent["stage_ms"]) == set(STAGES)
    assert recent["stage_ms"]["detect"]["p50"] == 8.0  # last 3 samples: 7, 8, 9
    assert final["stage_ms"]["detect"]["p50"] == 4.5  # all 10
    assert final["latency_ms"]["max"] == 19.0
    assert final["faces"] == 5 and final["labels"] == {"happy": 5}
    assert final["frames_processed"] == 10
    assert "latency" in format_line(recent)
