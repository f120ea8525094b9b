"""A pool of workers of one role (media or transfer) as signalling sees it: its
members' bus identities, which are down, and where new work goes."""

from __future__ import annotations

from collections.abc import Iterable

from bus import messages as m


class WorkerPool:
    """``media.workers`` / ``transfer.workers`` members, plus any that join later."""

    def __init__(self, role: m.Process, count: int) -> None:
        self.names: tuple[str, ...] = m.worker_names(role, count)
        self.down: set[str] = set()

    def place(self, busy: Iterable[str]) -> str:
        """The live member holding fewest of ``busy`` (the workers of the sessions it
        already holds); the first member when all are down (a restart is under way)."""
        live = [name for name in self.names if name not in self.down] or list(self.names)
        held = dict.fromkeys(live, 0)
        for worker in busy:
            if worker in held:
                held[worker] += 1
        return min(live, key=lambda name: (held[name], live.index(name)))

    def changed(self, name: str, state: m.WorkerState) -> None:
        """A member exited, came back, or joined (a worker started on its own)."""
        if state is m.WorkerState.EXITED:
            self.down.add(name)
            return
        self.down.discard(name)
        if name not in self.names:
            self.names = (*self.names, name)
