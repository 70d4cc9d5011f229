"""How AUTO's timed rounds keep other work out of what they time: the first half of a device's
turn (the previous device's threads still spinning), the application's own inferences (held
back during a turn), and a left-out device's first inference still running.

The timed objects are plain stand-ins whose call takes a known time: what is checked is which
calls count, not any engine's speed.
"""

import contextlib
import itertools
import threading
import time
from types import SimpleNamespace

from ember.runtime import auto, auto_measure


class Timed:
    """Stands for a compiled model: each call sleeps the next of ``durations`` (then the last)."""

    def __init__(self, *durations: float) -> None:
        self.durations = list(durations)
        self.calls = 0

    def _infer_arrays(self, inputs):
        duration = self.durations[min(self.calls, len(self.durations) - 1)]
        self.calls += 1
        time.sleep(duration)
        return []

    infer = _infer_arrays  # as a device model, when it serves for AUTO


def test_only_the_second_half_of_a_turn_counts():
    # The first calls are slow (another engine's threads spinning), the rest are not.
    device = Timed(0.008, 0.008, 0.001)
    times = auto_measure._timed_block(device, [])
    assert device.calls >= 6
    assert max(times) < 0.006, "a slow first call of the turn was counted"


def test_a_slowish_model_still_counts_the_last_calls_of_its_turn():
    device = Timed(0.04, 0.04, 0.025)
    times = auto_measure._timed_block(device, [])
    assert device.calls == auto_measure.MIN_BLOCK_CALLS
    assert len(times) == auto_measure.MIN_BLOCK_CALLS // 2 and max(times) < 0.035


def test_a_slow_devices_turn_ends_after_two_calls():
    # two calls already last longer than a long turn: a device far slower than the others is
    # not kept for four
    device = Timed(auto_measure.LONG_BLOCK_SECONDS - 0.05, 0.06)
    times = auto_measure._timed_block(device, [])
    assert device.calls == 2 and len(times) == 1 and times[0] < 0.08


class Stamped(Timed):
    """A Timed device that notes when its first call started."""

    first_call: float | None = None

    def _infer_arrays(self, inputs):
        if self.first_call is None:
            self.first_call = time.perf_counter()
        return super()._infer_arrays(inputs)


def test_a_turn_starts_after_a_pause_for_the_previous_devices_threads():
    device = Stamped(0.001)
    called = time.perf_counter()
    auto_measure._timed_block(device, [])
    assert device.first_call is not None
    assert device.first_call - called >= auto_measure.SETTLE_SECONDS


def pauses(*quiet: bool):
    """A ``pause_app`` whose turns begin with the application quiet or not, in turn; the list
    it returns counts the turns entered."""
    entered = []

    @contextlib.contextmanager
    def pause():
        entered.append(True)
        yield quiet[min(len(entered) - 1, len(quiet) - 1)]

    return pause, entered


def test_a_turn_that_began_during_an_application_inference_is_timed_again():
    pause, entered = pauses(False, True)
    device = Timed(0.001)
    auto_measure._timed_block(device, [], pause)
    assert len(entered) == 2, "the overlapped turn was not timed again"
    assert device.calls >= 2 * 20  # two whole turns of about 30 one-millisecond calls


def test_turns_overlapped_every_time_give_up_after_a_bound():
    pause, entered = pauses(False)
    auto_measure._timed_block(Timed(0.001), [], pause)
    assert len(entered) == auto_measure.BLOCK_ATTEMPTS


def test_the_applications_inferences_wait_while_a_turn_is_timed():
    # AUTO serving on one device while it times another: the application's inference started
    # during a turn runs after it, not beside it
    app, timed = Timed(0.001), Timed(0.002)
    switch = auto._Switch(SimpleNamespace(inputs=[], outputs=[], device_model=app))
    spans = {}

    def application():
        time.sleep(auto_measure.SETTLE_SECONDS / 2)  # inside the turn's pause
        start = time.perf_counter()
        switch.infer([])
        spans["app"] = (start, time.perf_counter())

    thread = threading.Thread(target=application)
    start = time.perf_counter()
    thread.start()
    auto_measure._timed_block(timed, [], switch.paused)
    spans["turn"] = (start, time.perf_counter())
    thread.join()
    assert app.calls == 1
    assert spans["app"][1] >= spans["turn"][1] - 0.001, "the application ran during the turn"


def test_an_application_inferring_in_a_loop_runs_between_turns():
    # turns back to back must not starve it: it runs in the window after each turn
    app, timed = Timed(0.002), Timed(0.002)
    switch = auto._Switch(SimpleNamespace(inputs=[], outputs=[], device_model=app))
    stop = threading.Event()

    def application():
        while not stop.is_set():
            switch.infer([])

    thread = threading.Thread(target=application)
    thread.start()
    try:
        counts = []
        for _ in range(4):
            auto_measure._timed_block(timed, [], switch.paused)
            counts.append(app.calls)
    finally:
        stop.set()
        thread.join()
    assert all(later > earlier for earlier, later in itertools.pairwise(counts)), counts


def test_a_turn_waits_for_the_applications_running_inference():
    app = Timed(0.1)
    switch = auto._Switch(SimpleNamespace(inputs=[], outputs=[], device_model=app))
    thread = threading.Thread(target=switch.infer, args=([],))
    thread.start()
    time.sleep(0.02)
    start = time.perf_counter()
    with switch.paused() as quiet:
        waited = time.perf_counter() - start
    thread.join()
    assert quiet and waited >= 0.05


def test_the_rounds_wait_for_a_left_out_first_inference_to_end():
    release = threading.Event()
    slow = threading.Thread(target=release.wait, args=(5,))
    slow.start()
    threading.Timer(0.2, release.set).start()
    start = time.perf_counter()
    auto_measure._wait_for([slow], limit=5)
    assert not slow.is_alive()
    assert 0.15 < time.perf_counter() - start < 4


def test_the_wait_for_a_left_out_first_inference_is_bounded():
    release = threading.Event()
    slow = threading.Thread(target=release.wait, args=(5,))
    slow.start()
    try:
        start = time.perf_counter()
        auto_measure._wait_for([slow], limit=0.2)
        assert slow.is_alive() and time.perf_counter() - start < 1
    finally:
        release.set()
        slow.join()


def test_one_slow_turn_does_not_drop_a_device():
    # Its first turn shares the cores with something else (slow), its later turns do not.
    fast, hindered = Timed(0.001), Timed(0.001, 0.05, 0.05, 0.001)
    found = auto_measure.measure({"A": fast, "B": hindered}, [[]])
    assert set(found.seconds) == {"A", "B"}, found.describe()


def test_a_device_slow_in_two_turns_is_dropped_and_the_others_timed_again():
    fast, slow = Timed(0.001), Timed(0.02)
    found = auto_measure.measure({"A": fast, "B": slow}, [[]])
    assert set(found.seconds) == {"A"} and "B" in found.left_out, found.describe()
