"""Load shedding: a bounded number of expensive requests in the service at once.

Each expensive route has a gate of ``workers + queue`` places. A request
that finds its gate full is answered 503 with ``Retry-After`` at once,
before its body is read, instead of queueing without bound (20 clients
used to wait 2–3 s each). Cheap routes (/health, /ready, /metrics, reads
of single references) pass ungated so probes keep answering under load.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.errors import problem_response


@dataclass
class Gate:
    """Places for requests of one kind: ``capacity`` in the service at once."""

    name: str
    capacity: int
    inside: int = 0

    def try_enter(self) -> bool:
        if self.inside >= self.capacity:
            return False
        self.inside += 1
        return True

    def leave(self) -> None:
        self.inside -= 1


class AdmissionMiddleware:
    """Admit requests to ``gates[(method, path)]`` while it has room; 503 otherwise.

    Runs on the event loop only, so the counters need no lock.
    """

    def __init__(
        self, app: ASGIApp, gates: dict[tuple[str, str], Gate], retry_after_s: int
    ) -> None:
        self.app = app
        self.gates = gates
        self.retry_after_s = retry_after_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gate = (
            self.gates.get((scope.get("method", ""), scope.get("path", "")))
            if (scope["type"] == "http")
            else None
        )
        if gate is None:
            await self.app(scope, receive, send)
            return
        if not gate.try_enter():
            busy = problem_response(
                503,
                "overloaded",
                "The server is busy",
                f"all {gate.capacity} places for {gate.name} are taken (workers and queue); "
                f"retry after {self.retry_after_s} s",
                instance=scope.get("path"),
                headers={"Retry-After": str(self.retry_after_s)},
                capacity=gate.capacity,
            )
            await busy(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            gate.leave()
