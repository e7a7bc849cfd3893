"""Models edited on disk go live: poll the served model files' times and sizes, reload on change.

Polling (every 0.2 s by default) needs no extra dependency and behaves the same on every
file system, network mounts and container volumes included. The reload validates as
always: a broken file leaves the last good models serving and is reported by
`/api/health/ready` and the logs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

from semproxy.errors import ModelError
from semproxy.semantic.registry import NEVER_SERVED

log = structlog.get_logger("semproxy.watch")
POLL_S = 0.2

Snapshot = frozenset[tuple[str, int, int]]


def snapshot(root: Path) -> Snapshot:
    """(path, mtime_ns, size) of every file the loader would read under `root`."""
    found = set()
    try:
        folders = [p for p in root.iterdir() if p.is_dir()]
    except OSError:
        return frozenset()
    for folder in folders:
        if folder.name.startswith(".") or folder.name in NEVER_SERVED:
            continue
        try:
            for path in folder.iterdir():
                if path.suffix in (".yaml", ".yml"):
                    st = path.stat()
                    found.add((str(path), st.st_mtime_ns, st.st_size))
        except OSError:
            continue  # a folder or file removed while we looked: the next poll sees it
        found.add((str(folder), 0, 0))
    return frozenset(found)


class ModelWatcher:
    def __init__(
        self, root: Path, reload: Callable[[], Awaitable[list[ModelError]]], poll_s: float = POLL_S
    ) -> None:
        self.root = root
        self.reload = reload
        self.poll_s = poll_s
        self.seen = snapshot(root)

    def settle(self) -> None:
        """Take the files as they are now as already served (after a write through the API)."""
        self.seen = snapshot(self.root)

    async def run(self, stop: asyncio.Event) -> None:
        # one waiter for the whole run, and the stat calls on the loop (a few files, tens of
        # microseconds): a task and a thread hop per poll cost 2-5% of the server's CPU
        stopped = asyncio.ensure_future(stop.wait())
        try:
            while not (await asyncio.wait({stopped}, timeout=self.poll_s))[0]:
                await self._poll()
        finally:
            stopped.cancel()

    async def _poll(self) -> None:
        now = snapshot(self.root)
        if now == self.seen:
            return
        self.seen = now
        log.info("model files changed on disk; reloading")
        try:
            await self.reload()
        except Exception as exc:  # noqa: BLE001 - the watcher must outlive one bad reload
            log.error("reloading the models failed; the previous models keep serving", error=repr(exc))
