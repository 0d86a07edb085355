import tracemalloc

import numpy as np
import pytest

from edge.stats import STAGES, RateMeter, Sketch, Stats, format_line, percentiles


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


def test_rate_meter_memory_is_bounded_at_any_rate():
    meter = RateMeter(window_s=5.0, max_events=100)
    for i in range(10_000):
        meter.tick(100.0 + i * 1e-4)  # 10,000 events per second
    assert len(meter._times) == 100
    assert meter.rate(101.0) == pytest.approx(10_000, rel=0.02)


def test_snapshot_has_every_figure_and_final_covers_the_whole_run():
    stats = Stats(window=3)
    for i in range(10):
        stats.captured_frame(1.0)
        stats.processed_frame(
            {"capture": 1.0, "detect": float(i + 1), "classify": 2.0, "render": 1.0},
            latency_ms=10.0 + i,
            labels=["happy"] * (i % 2),
        )
    recent, final = stats.snapshot(), stats.snapshot(final=True)
    assert set(recent["stage_ms"]) == set(final["stage_ms"]) == set(STAGES)
    assert recent["stage_ms"]["detect"]["p50"] == 9.0  # last 3 samples: 8, 9, 10
    assert final["stage_ms"]["detect"]["p50"] == pytest.approx(5.0, rel=0.02)  # all 10
    assert final["latency_ms"]["max"] == 19.0
    assert final["faces"] == 5 and final["labels"] == {"happy": 5}
    assert final["frames_processed"] == 10
    assert "latency" in format_line(recent)


def test_final_percentiles_are_within_one_percent():
    rng = np.random.default_rng(0)
    values = rng.lognormal(2.0, 0.6, 20_000)  # latency-like: a long right tail
    sketch = Sketch()
    for value in values:
        sketch.add(value)
    for q, got in sketch.percentiles((50, 95, 99)).items():
        exact = np.percentile(values, int(q[1:]))
        assert got == pytest.approx(exact, rel=0.02), q
    assert sketch.max == values.max() and len(sketch) == len(values)


def test_memory_does_not_grow_with_the_number_of_frames():
    """Deterministic (tracemalloc counts bytes, not time): the second 100k frames
    add nothing that the first 100k did not already allocate."""
    stats = Stats()
    stage_ms = {"capture": 1.0, "detect": 4.0, "classify": 1.0, "render": 2.0}

    def feed(n: int, start: int) -> None:
        for i in range(start, start + n):
            stats.captured_frame(1.0 + (i % 97) / 10)
            stage_ms["detect"] = 2.0 + (i % 1013) / 100
            stats.processed_frame(stage_ms, 5.0 + (i % 997) / 10, ["happy"])

    feed(100_000, 0)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        feed(100_000, 100_000)
        stats.snapshot(final=True)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, f"{grown} bytes more after 100k more frames"
    assert stats.snapshot(final=True)["frames_processed"] == 200_000
