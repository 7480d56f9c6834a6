"""The API's micro-batcher: concurrent requests share one call, each gets its own results back."""

from __future__ import annotations

import asyncio
import threading
import time

from nonrecours.serving.batching import Batcher, Overloaded


class Recorder:
    """A batch function that doubles its inputs, takes ``seconds``, and records each call."""

    def __init__(self, seconds: float = 0.2, fail_on=None):
        self.calls: list[list[int]] = []
        self.seconds, self.fail_on = seconds, fail_on
        self.lock = threading.Lock()

    def __call__(self, items):
        with self.lock:
            self.calls.append(list(items))
        time.sleep(self.seconds)
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"bad item {self.fail_on}")
        return [2 * x for x in items]


def test_concurrent_requests_share_one_call_and_get_their_own_results():
    fn = Recorder()

    async def main():
        b = Batcher(fn, linger_seconds=0.05, max_batch=200, max_waiting=5000)
        return await asyncio.gather(*(b.submit([i, 100 + i]) for i in range(16)))

    results = asyncio.run(main())
    assert results == [[2 * i, 2 * (100 + i)] for i in range(16)]
    assert len(fn.calls) == 1 and len(fn.calls[0]) == 32


def test_clients_answered_together_come_back_together():
    # Eight clients in a loop: with the linger, every batch after the first holds all of them
    # (no alternating half-size cohorts).
    fn = Recorder(seconds=0.1)

    async def client(b, i):
        for _ in range(4):
            await b.submit([i])
            await asyncio.sleep(0.005)  # the client's own turnaround

    async def main():
        b = Batcher(fn, linger_seconds=0.03, max_batch=200, max_waiting=5000)
        await asyncio.gather(*(client(b, i) for i in range(8)))
        return b

    b = asyncio.run(main())
    assert b.batches == [8, 8, 8, 8]


def test_a_lone_request_waits_only_the_linger():
    fn = Recorder(seconds=0.0)

    async def main():
        b = Batcher(fn, linger_seconds=0.05, max_batch=200, max_waiting=5000)
        t = time.perf_counter()
        await b.submit([1])
        return time.perf_counter() - t

    assert asyncio.run(main()) < 0.5


def test_batches_are_capped_and_the_rest_runs_next():
    fn = Recorder(seconds=0.05)

    async def main():
        b = Batcher(fn, max_batch=10, linger_seconds=0.05, max_waiting=5000)
        return await asyncio.gather(*(b.submit([i] * 4) for i in range(5)))

    results = asyncio.run(main())
    assert results == [[2 * i] * 4 for i in range(5)]
    assert [len(c) for c in fn.calls] == [8, 8, 4]


def test_a_failing_batch_fails_only_the_request_at_fault_and_the_next_batch_still_runs():
    fn = Recorder(seconds=0.05, fail_on=3)

    async def main():
        b = Batcher(fn, linger_seconds=0.05, max_batch=200, max_waiting=5000)
        first = await asyncio.gather(*(b.submit([i]) for i in range(5)), return_exceptions=True)
        second = await b.submit([7])
        return b, first, second

    b, first, second = asyncio.run(main())
    assert isinstance(first[3], ValueError) and [first[i] for i in (0, 1, 2, 4)] == [[0], [2], [4], [8]]
    assert (
        b.isolated == 1 and fn.calls[0] == [0, 1, 2, 3, 4] and [0] in fn.calls[1:]
    )  # the shared call, then one by one
    assert second == [14]


def test_too_many_waiting_households_are_refused():
    fn = Recorder(seconds=0.3)

    async def main():
        b = Batcher(fn, linger_seconds=0.0, max_waiting=10, max_batch=200)
        return await asyncio.gather(*(b.submit([i] * 4) for i in range(4)), return_exceptions=True)

    results = asyncio.run(main())
    assert sum(isinstance(r, Overloaded) for r in results) >= 1
    assert any(r == [0] * 4 for r in results)
