"""The batch flush rules, on reactivex's virtual-time TestScheduler: exact, and without a clock.

Times are ticks (a tick is a second of the scheduler's clock). The source is hot; the batcher is
subscribed at 200. ``size=3, idle=10, max_wait=50`` unless a test says otherwise.
"""

from __future__ import annotations

from reactivex.testing import ReactiveTest, TestScheduler

from pendingops.operators._batches import batches

on_next, on_completed, on_error = ReactiveTest.on_next, ReactiveTest.on_completed, ReactiveTest.on_error


def run(*messages, size: int = 3, idle: float = 10, max_wait: float = 50, disposed: float = 1000) -> list:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(*messages)
    observer = scheduler.start(lambda: source.pipe(batches(size, idle, max_wait)), disposed=disposed)
    return observer.messages


def test_a_full_batch_is_flushed_at_once():
    assert run(on_next(210, "a"), on_next(211, "b"), on_next(212, "c"), on_next(213, "d"), on_completed(300)) == [
        on_next(212, ["a", "b", "c"]),
        on_next(223, ["d"]),
        on_completed(300),
    ]


def test_a_batch_is_flushed_when_no_unit_arrived_for_idle():
    assert run(on_next(210, "a"), on_next(215, "b"), on_next(240, "c"), on_completed(400)) == [
        on_next(225, ["a", "b"]),  # 10 ticks after the last arrival, not after the first
        on_next(250, ["c"]),
        on_completed(400),
    ]


def test_units_arriving_faster_than_idle_are_flushed_when_the_first_waited_max_wait():
    trickle = [on_next(210 + 8 * i, i) for i in range(10)]  # one every 8 ticks, idle is 10
    messages = run(*trickle, on_completed(400), size=100)
    assert messages == [
        on_next(260, [0, 1, 2, 3, 4, 5, 6]),  # the first arrived at 210: flushed at 210 + 50
        on_next(292, [7, 8, 9]),  # idle: the last arrived at 282
        on_completed(400),
    ]


def test_completion_flushes_what_is_left_and_an_empty_batch_is_never_emitted():
    assert run(on_next(210, "a"), on_completed(212)) == [on_next(212, ["a"]), on_completed(212)]
    assert run(on_completed(250)) == [on_completed(250)]
    assert run(on_next(210, "a"), on_next(211, "b"), on_next(212, "c"), on_completed(250)) == [
        on_next(212, ["a", "b", "c"]),
        on_completed(250),
    ]


def test_an_error_is_passed_on_and_the_pending_batch_dropped():
    boom = Exception("boom")
    assert run(on_next(210, "a"), on_error(215, boom)) == [on_error(215, boom)]


def test_disposing_cancels_the_pending_flush():
    assert run(on_next(210, "a"), on_next(211, "b"), disposed=215) == []


def test_a_batch_of_one_flushes_every_unit():
    assert run(on_next(210, "a"), on_next(210, "b"), on_completed(220), size=1) == [
        on_next(210, ["a"]),
        on_next(210, ["b"]),
        on_completed(220),
    ]
