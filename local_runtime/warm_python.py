"""Warm Pythons: a process per container or Lambda execution environment, forked from an interpreter that
has already imported the libraries they use, as a warm pool hands out an instance that is ready.

Importing scikit-learn costs about 1.2 s of CPU, and a pipeline run starts three SageMaker containers that
import it (training, evaluation, the transform's model server); boto3 and Powertools cost about 0.3 s per
Lambda execution environment. A fork server pays for them once per process: it imports its preload list,
then forks a child per container. The child is still a process of its own (own memory, environment,
working directory, argv and output files) and runs its script as ``python script.py`` would, as
``__main__``, so each job run or environment stays isolated.

What a fork cannot give a fresh interpreter: environment variables that a library reads while it is
imported (``OMP_NUM_THREADS`` is applied again through threadpoolctl), and interpreter options other than
``-u`` and ``-m`` (the server of an isolated flavour runs with ``-I`` itself). Seeds are drawn again in each
child, so two jobs never share "random" numbers.

Run as ``python [-I] warm_python.py FD MODULE...``: FD is a SOCK_SEQPACKET socket. Each request is a JSON
message with the child's stdout, stderr and extra descriptors attached (SCM_RIGHTS); the server answers
``{"id", "pid"}`` at once and ``{"id", "exit"}`` when the child ends.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import itertools
import json
import os
import runpy
import select
import signal
import socket
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import IO, Any

_MESSAGE = 1 << 20
_MAX_FDS = 8


# ----------------------------------------------------------------- the server (its own process)
def serve(fd: int, preload: list[str]) -> None:
    if not sys.flags.isolated:
        sys.path.pop(0)  # this file's folder, whose modules are not the children's
    for module in preload:
        with contextlib.suppress(ImportError):
            __import__(module)
    channel = socket.socket(fileno=fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.set_wakeup_fd(wake_w)
    children: dict[int, int] = {}  # pid -> request id
    while True:
        ready = select.select([channel, wake_r], [], [])[0]
        if wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 4096)
            _reap(channel, children)
        if channel not in ready:
            continue
        data, fds, _, _ = socket.recv_fds(channel, _MESSAGE, _MAX_FDS)
        if not data:  # the runtime is gone: so are its containers
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return
        request = json.loads(data)
        pid = os.fork()
        if pid == 0:
            for handle in (channel.fileno(), wake_r, wake_w):
                os.close(handle)
            _run_child(request, fds)  # never returns
        for handle in fds:
            os.close(handle)
        children[pid] = request["id"]
        channel.send(json.dumps({"id": request["id"], "pid": pid}).encode())


def _reap(channel: socket.socket, children: dict[int, int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        request_id = children.pop(pid, None)
        if request_id is not None:
            channel.send(json.dumps({"id": request_id, "exit": os.waitstatus_to_exitcode(status)}).encode())


def _run_child(request: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: becomes the container's process, runs the script and exits with its code."""
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGCHLD, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)
    # stdin from /dev/null, stdout and stderr as given, extra descriptors as 3, 4, ...: first out of the way.
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, 64) for fd in fds]
    for fd in fds:
        os.close(fd)
    moved.insert(0, os.open(os.devnull, os.O_RDONLY))
    for target, fd in enumerate(moved):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    _fresh_per_process_state()
    argv = list(request["argv"])
    if argv[0] == "-u":
        argv.pop(0)
        for stream in (sys.stdout, sys.stderr):
            stream.reconfigure(write_through=True)
    sys.argv = argv[1:] if argv[0] == "-m" else argv
    extra = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
    code: Any = 0
    if not sys.flags.isolated:  # as `python` puts the script's folder (or, with -m, the cwd) first
        first = os.getcwd() if argv[0] == "-m" else str(Path(argv[0]).resolve().parent)
        sys.path[:1] = [first, *extra]
    try:
        if argv[0] == "-m":
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as exit_:
        code = exit_.code
    except BaseException as error:
        # The script's frames only, as `python script.py` would print them.
        tb = error.__traceback__
        while tb and (tb.tb_frame.f_code.co_filename == __file__ or tb.tb_frame.f_code.co_filename.startswith("<")):
            tb = tb.tb_next
        traceback.print_exception(type(error), error, tb)
        code = 1
    _exit(code)


def _exit(code: Any) -> None:
    """Ends the child as the interpreter would, less tearing down every module: that alone takes 0.3 s
    with scikit-learn and XGBoost loaded, and the process's memory goes with it anyway."""
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _fresh_per_process_state() -> None:
    """What a new interpreter would start with: new seeds, and OpenMP/BLAS threads as the environment asks."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit():
        from threadpoolctl import threadpool_limits

        threadpool_limits(int(threads))


# ----------------------------------------------------------------- the runtime's side
def unsupported_options(argv: list[str]) -> str | None:
    """The first interpreter option in ``argv`` that a forked child cannot honour, if any."""
    options = argv[1:] if argv[:1] == ["-u"] else argv
    if not options:
        return "(no script)"
    return options[0] if options[0].startswith("-") and options[0] != "-m" else None


class WarmProcess:
    """A container process forked by the server; the part of ``subprocess.Popen`` the runtime uses."""

    def __init__(self, stdout: IO[bytes] | None) -> None:
        self.stdout = stdout
        self.pid = 0
        self.returncode: int | None = None
        self._started = threading.Event()
        self._ended = threading.Event()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def _ended_with(self, code: int) -> None:
        self.returncode = code
        self._ended.set()


class WarmPython:
    """A fork server that has imported ``preload`` (modules not installed are left out), started on first
    use and stopped when this process exits; ``isolated`` runs it, and so every child, as ``python -I``."""

    def __init__(self, preload: tuple[str, ...], isolated: bool = False) -> None:
        self.preload = preload
        self.isolated = isolated
        self._lock = threading.Lock()
        self._server: subprocess.Popen[bytes] | None = None
        self._channel: socket.socket | None = None
        self._waiting: dict[int, WarmProcess] = {}
        self._ids = itertools.count(1)
        atexit.register(self.stop)

    def start(self) -> None:
        """Starts the server now, so its imports overlap other work; every call after the first is free."""
        with self._lock:
            self._ensure_running()

    def popen(
        self,
        argv: list[str],
        cwd: Path,
        env: dict[str, str],
        stdout: Any,
        stderr: Any = None,
        pass_fds: tuple[int, ...] = (),
    ) -> WarmProcess:
        """``python *argv`` with output to ``stdout`` and ``stderr`` (open files, ``subprocess.PIPE``, or
        ``subprocess.STDOUT`` for stderr); ``pass_fds`` arrive in the child as 3, 4, ... ``argv`` is
        ``[-u] script args...`` or ``[-u] -m module args...``; other interpreter options raise ValueError."""
        if unsupported := unsupported_options(argv):
            raise ValueError(f"python option {unsupported} is not supported locally (only -u and -m)")
        read_end = None
        if stdout == subprocess.PIPE:
            read_fd, out_fd = os.pipe()
            read_end = os.fdopen(read_fd, "rb")
        else:
            out_fd = os.dup(stdout.fileno())
        err_fd = os.dup(out_fd) if stderr in (None, subprocess.STDOUT) else os.dup(stderr.fileno())
        process = WarmProcess(read_end)
        try:
            with self._lock:
                self._ensure_running()
                assert self._channel
                request_id = next(self._ids)
                self._waiting[request_id] = process
                request = {"id": request_id, "argv": argv, "cwd": str(cwd), "env": env}
                socket.send_fds(self._channel, [json.dumps(request).encode()], [out_fd, err_fd, *pass_fds])
        finally:
            os.close(out_fd)
            os.close(err_fd)
        if not process._started.wait(300) or not process.pid:  # the first waits for the imports
            raise RuntimeError("the warm Python did not start the container")
        return process

    def stop(self) -> None:
        with self._lock:
            if self._channel:
                self._channel.close()
            if self._server and self._server.poll() is None:
                try:
                    self._server.wait(5)  # it kills its children when the channel closes
                except subprocess.TimeoutExpired:
                    self._server.kill()
            self._server = self._channel = None

    def _ensure_running(self) -> None:
        """Starts the server unless it runs (a dead one is replaced); called with the lock held."""
        if self._server is not None and self._server.poll() is None:
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._server = subprocess.Popen(
            [sys.executable, *(["-I"] if self.isolated else []), __file__, str(theirs.fileno()), *self.preload],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        theirs.close()
        self._channel = ours
        threading.Thread(target=self._read, args=(ours,), name="warm-python", daemon=True).start()

    def _read(self, channel: socket.socket) -> None:
        while True:
            try:
                data = channel.recv(_MESSAGE)
            except OSError:
                data = b""
            if not data:
                break
            message = json.loads(data)
            process = self._waiting.get(message["id"])
            if process is None:
                continue
            if "pid" in message:
                process.pid = message["pid"]
                process._started.set()
            else:
                del self._waiting[message["id"]]
                process._ended_with(message["exit"])
        # The server is gone (killed, or stopped): nothing it started can still be reported.
        with self._lock:
            for process in self._waiting.values():
                process._ended_with(-signal.SIGKILL)
                process._started.set()
            self._waiting.clear()


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2:])
