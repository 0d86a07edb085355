import threading
import time

import pytest

from edge.frames import Closed, LatestSlot


def test_live_slot_keeps_the_newest_and_counts_drops():
    slot = LatestSlot(drop=True)
    for i in range(5):
        assert slot.put(i)
    assert slot.get(timeout=0.1) == 4
    assert slot.dropped == 4
    assert slot.get(timeout=0.01) is None


def test_offline_slot_applies_back_pressure():
    slot = LatestSlot(drop=False)
    assert slot.put(1)
    assert slot.put(2, timeout=0.05) is False  # consumer has not taken 1 yet
    taken = []
    consumer = threading.Thread(target=lambda: (time.sleep(0.05), taken.append(slot.get(1))))
    consumer.start()
    assert slot.put(2, timeout=1.0)
    consumer.join()
    assert taken == [1] and slot.get(0.1) == 2 and slot.dropped == 0


def test_close_drains_then_raises():
    slot = LatestSlot(drop=False)
    slot.put("last")
    slot.close()
    assert slot.get(0.1) == "last"
    with pytest.raises(Closed):
        slot.get(0.1)
    with pytest.raises(Closed):
        slot.put("late")


def test_close_wakes_a_waiting_consumer():
    slot = LatestSlot(drop=True)
    threading.Timer(0.05, slot.close).start()
    started = time.monotonic()
    with pytest.raises(Closed):
        slot.get(timeout=5)
    assert time.monotonic() - started < 1
