"""Blocking drivers at the edge: a blocking batch iterator runs in a thread of its own and
hands its batches to the event loop over a bounded queue; a blocking call that usually ends
quickly (a small query, whole after one call) runs in a worker thread (`call_in_thread`).

    async for batch in stream_in_thread(produce, interrupt, timeout=120):
        ...

`produce` runs entirely in one thread (drivers that keep per-thread state, such as Spark
Connect's operation tags, see one thread). At most `depth` batches wait in the queue, so
a slow client holds the driver back instead of filling memory. Closing the iterator
early, cancelling the task that iterates it, or the timeout calls `interrupt` (in a
worker thread: it may block on the network), which must make `produce` stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pyarrow as pa

from semproxy.errors import QueryCanceled

_DONE = object()
_POLL_S = 0.1
T = TypeVar("T")
# Engine work only, so that slow queries never hold up the loop's default executor (which
# describe, the HTTP port and file checks share); idle workers cost nothing.
_WORKERS = ThreadPoolExecutor(max_workers=64, thread_name_prefix="semproxy-engine")


async def call_in_thread(
    work: Callable[[], T], interrupt: Callable[[], None], release: Callable[[T], None]
) -> T:
    """`work()` in a worker thread: one hop to a pool and back, no thread of its own.

    When the caller is cancelled meanwhile, `interrupt` (in a thread of its own, so that it
    runs even when every worker is busy) must make `work` stop; if `work` returns anyway,
    `release` (on the event loop) frees its result."""
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(_WORKERS, work)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        threading.Thread(target=interrupt, name="semproxy-interrupt", daemon=True).start()

        def settle(done: asyncio.Future[T]) -> None:
            if not done.cancelled() and done.exception() is None:
                release(done.result())

        future.add_done_callback(settle)
        raise


async def stream_in_thread(
    produce: Callable[[], Iterator[pa.RecordBatch]],
    interrupt: Callable[[], None],
    *,
    timeout: float | None = None,
    depth: int = 2,
) -> AsyncIterator[pa.RecordBatch]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    room = threading.Semaphore(depth)
    stopped = threading.Event()

    def hand_over(item: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed under a forgotten stream
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def run() -> None:
        try:
            for batch in produce():
                while not room.acquire(timeout=_POLL_S):
                    if stopped.is_set():
                        return
                if stopped.is_set():
                    return
                hand_over(batch)
            hand_over(_DONE)
        except BaseException as exc:  # noqa: BLE001 - every failure belongs to the consumer
            hand_over(exc)

    def time_out() -> None:
        queue.put_nowait(QueryCanceled("canceling statement due to statement timeout"))

    threading.Thread(target=run, name="semproxy-engine", daemon=True).start()
    timer = loop.call_later(timeout, time_out) if timeout else None
    finished = False
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                finished = True
                return
            if isinstance(item, BaseException):
                finished = True  # the statement failed by itself: nothing left to interrupt
                raise item
            room.release()
            assert isinstance(item, pa.RecordBatch)
            yield item
    finally:
        stopped.set()
        if timer is not None:
            timer.cancel()
        if not finished:
            await asyncio.to_thread(interrupt)
