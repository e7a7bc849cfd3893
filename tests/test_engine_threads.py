"""engines.threads.call_in_thread: one hop to a worker thread, and what a cancel does to it."""

from __future__ import annotations

import asyncio
import threading

import pytest

from semproxy.engines.threads import call_in_thread


async def test_returns_what_work_returns() -> None:
    assert await call_in_thread(lambda: threading.current_thread().name, lambda: None, lambda _: None) != (
        threading.current_thread().name
    )


async def test_a_cancel_interrupts_and_releases_what_work_returns_anyway() -> None:
    stop, released = threading.Event(), asyncio.Event()
    got: list[str] = []

    def work() -> str:
        stop.wait(10)  # a query that runs until interrupted
        return "result"

    def release(result: str) -> None:
        got.append(result)
        released.set()

    task = asyncio.create_task(call_in_thread(work, stop.set, release))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(released.wait(), 5)
    assert got == ["result"]


async def test_an_interrupt_runs_while_every_worker_is_busy() -> None:
    stop = threading.Event()
    busy = [
        asyncio.create_task(call_in_thread(lambda: stop.wait(10), stop.set, lambda _: None))
        for _ in range(80)
    ]
    await asyncio.sleep(0.1)  # 64 workers are busy, 16 calls wait for one
    started = asyncio.get_running_loop().time()
    busy[0].cancel()  # its interrupt must not wait behind the busy workers
    results = await asyncio.gather(*busy, return_exceptions=True)
    assert asyncio.get_running_loop().time() - started < 5
    assert isinstance(results[0], asyncio.CancelledError) and results[1:] == [True] * 79
