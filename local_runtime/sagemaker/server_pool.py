"""A warm pool of model server processes, like SageMaker's warm pools: a server a job or endpoint
no longer needs waits, idle, for the next one that needs an identical server.

Reuse is safe because a model server is stateless between uses. Its process holds the model that
``model_fn`` loaded once from files whose content the key pins, and the inference module; each
request runs ``input_fn``/``predict_fn``/``output_fn`` on its own body and keeps nothing. It holds no
credentials either: it reads only its local model and code directories, so a server started for one
role (the scoring role) serves another (the serving role) no differently, and each taker's own role
is still checked for the image pull and the S3 reads before it is given a server. A server is owned
by one job or endpoint at a time: ``take`` removes it from the pool, so it is never shared while in use.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # hosting imports this module to pool its servers
    from local_runtime.sagemaker.hosting import ModelServer

DEFAULT_IDLE_SECONDS = 300.0


@dataclass(frozen=True)
class ServerKey:
    """Everything that makes a model server what it is; servers with equal keys are interchangeable."""

    image: str
    model_data_etag: str  # the content of the ModelDataUrl archive, as S3 names it
    code_etag: str  # the content of the SAGEMAKER_SUBMIT_DIRECTORY archive
    program: str
    environment: tuple[tuple[str, str], ...]  # the container's and the job's environment, sorted


@dataclass
class _IdleServer:
    server: ModelServer
    idle_until: float


class ModelServerPool:
    """Idle model servers by key; each waits at most ``idle_seconds`` before it is stopped."""

    def __init__(self, idle_seconds: float = DEFAULT_IDLE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._idle: dict[ServerKey, list[_IdleServer]] = {}
        self._closed = False
        self._changed = threading.Condition()
        self._reaper: threading.Thread | None = None
        self.taken_warm = 0  # servers handed out warm instead of started: the pool's saving, for the bench

    def take(self, key: ServerKey) -> ModelServer | None:
        """An idle server with this key, now owned by the caller alone, or None: the caller starts one."""
        while True:
            with self._changed:
                waiting = self._idle.get(key)
                if not waiting:
                    return None
                server = waiting.pop().server
                if not waiting:
                    del self._idle[key]
            # Checked outside the lock: the server is already out of the pool, so no one else can take it.
            if server.process.poll() is None and server.ping():
                with self._changed:
                    self.taken_warm += 1
                return server
            server.stop()

    def give_back(self, key: ServerKey, server: ModelServer) -> None:
        """Keeps a server its owner is done with, if it is healthy and the pool still open; else stops it."""
        if self.idle_seconds <= 0 or server.process.poll() is not None or not server.ping():
            server.stop()
            return
        with self._changed:
            if not self._closed:
                self._idle.setdefault(key, []).append(_IdleServer(server, self._clock() + self.idle_seconds))
                self._start_reaper()
                self._changed.notify_all()
                return
        server.stop()

    def idle_servers(self) -> list[ModelServer]:
        """The servers waiting in the pool now, for inspection: taking one is ``take``'s job."""
        with self._changed:
            return [idle.server for waiting in self._idle.values() for idle in waiting]

    def expire(self) -> None:
        """Stops the servers idle past their time."""
        now = self._clock()
        expired: list[ModelServer] = []
        with self._changed:
            for key, waiting in list(self._idle.items()):
                expired += [idle.server for idle in waiting if idle.idle_until <= now]
                waiting[:] = [idle for idle in waiting if idle.idle_until > now]
                if not waiting:
                    del self._idle[key]
        for server in expired:
            server.stop()

    def close(self) -> None:
        """Stops every idle server; servers given back later are stopped, not kept."""
        with self._changed:
            self._closed = True
            servers = [idle.server for waiting in self._idle.values() for idle in waiting]
            self._idle.clear()
            self._changed.notify_all()
        for server in servers:
            server.stop()

    def _start_reaper(self) -> None:
        if self._reaper is None:
            self._reaper = threading.Thread(target=self._reap, name="model-server-pool-reaper", daemon=True)
            self._reaper.start()

    def _reap(self) -> None:
        """Sleeps until the next server's idle time ends (or the pool changes), then stops the expired."""
        while True:
            with self._changed:
                if self._closed:
                    return
                deadlines = [idle.idle_until for waiting in self._idle.values() for idle in waiting]
                timeout = max(0.0, min(deadlines) - self._clock()) if deadlines else None
                self._changed.wait(timeout)
            self.expire()
