"""The warm runner: `mlops up` keeps one process with the platform imported and forks it for
each `mlops` command of its home, so a repeated command does not pay ~5 s of imports.

A command hands the runner its arguments, environment, working directory and its own stdin,
stdout and stderr (the descriptors themselves, over a Unix socket). The runner forks a child
that runs the command as `mlops` would in its own process (fresh state, the user's terminal)
and sends back how it ended; the command exits the same way (the same status, or the same
signal). Signals sent to the command go to the child; a command killed outright takes its
child with it. The runner declines, and the command runs in its own process, when the
environment that libraries read at import differs from its own or the platform's code or
training libraries changed since it started.

Only modules are loaded before a fork: no threads of our own, no clients, no TensorFlow
runtime, so every child starts as clean as a new process.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import sys
import time
from pathlib import Path

# Commands that stay in their own process: they start or stop the runner, or run for hours.
LOCAL_COMMANDS = frozenset({"up", "down", "serve", "runner"})
# Environment that libraries read once, at import: a command whose values differ runs cold.
IMPORT_TIME_ENV = (
    "PREFECT_",
    "KERAS_",
    "TF_",
    "CUDA_",
    "XLA_",
    "JAX_",
    "OMP_",
    "MKL_",
    "OPENBLAS_",
    "MALLOC_",
    "PYTHON",
    "LD_",
    "HOME",
    "VIRTUAL_ENV",
)
PRELOAD = (
    "flows.cli",
    "flows.training",
    "flows.inference",
    "flows.promotion",
    "keras",
    "great_expectations",
    "mlflow.keras",
    "mlflow.sklearn",
    # What a job imported on its way otherwise (python -X importtime of a job after the above):
    # the embedded MLflow store (0.5 s: SQLAlchemy models, Alembic), the engines Prefect runs
    # flows and tasks with, GitPython (the git_commit tag), MLflow's model loaders and tracing.
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "mlflow.pyfunc.loaders",
    "mlflow.tracing.processor.base_mlflow",
    "prefect.flow_engine",
    "prefect.task_engine",
    "git",
)
SOCKET_NAME = "runner.sock"
_SUN_PATH_MAX = 100  # a Unix socket's path is at most 107 bytes on Linux


# The command's side


def hand_over(argv: list[str]) -> int | None:
    """Run `mlops ARGV` in this home's warm runner and return how it ended (an exit status,
    or minus the signal that ended it); None when there is no runner to take it."""
    command = command_name(argv)
    if command is None or command in LOCAL_COMMANDS or "--help" in argv:
        return None
    try:
        from tasks.settings import load_settings

        settings = load_settings()
        if not settings.warm_runner:
            return None
        settings.prepare()  # the environment a command sees, as the runner saw its own
        path = json.loads(settings.local_servers_file.read_text()).get("runner_socket")
    except Exception:  # no runner, or settings that the command itself will report
        return None
    if not path:
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as channel:
        try:
            channel.connect(path)
            request = {"argv": [sys.argv[0], *argv], "env": dict(os.environ), "cwd": os.getcwd()}
            socket.send_fds(channel, [b"\0"], [0, 1, 2])
            channel.sendall(json.dumps(request).encode() + b"\n")
        except OSError:  # up.json outlived its runner
            return None
        replies = channel.makefile("rb")
        first = json.loads(replies.readline() or b"{}")
        if "pid" not in first:
            reason = first.get("declined", "it did not answer")
            sys.stderr.write(f"note: the warm runner of `mlops up` declined ({reason}); ")
            sys.stderr.write("running in this process\n")
            return None
        _forward_signals(first["pid"])
        last = replies.readline()
    if not last:
        sys.stderr.write("error: the warm runner stopped during the command (mlops down?)\n")
        return 1
    return json.loads(last)["status"]


def command_name(argv: list[str]) -> str | None:
    """The `mlops` command that arguments (without the program's name) run, if any."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _forward_signals(pid: int) -> None:
    def forward(signum, _frame) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, forward)


def exit_like(status: int) -> None:
    """End this process as the command ended: its status, or killed by the same signal."""
    if status < 0:
        with contextlib.suppress(OSError):  # SIGKILL has no handler to reset
            signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
    os._exit(status if status >= 0 else 128 - status)


# The runner's side


def socket_path(home: Path) -> Path:
    """Beside the home's state; in a private temporary folder when that path is too long."""
    path = home / SOCKET_NAME
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        return path
    import tempfile

    return Path(tempfile.mkdtemp(prefix="mlops-")) / SOCKET_NAME


def import_time_env(env: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in env.items() if name.startswith(IMPORT_TIME_ENV)}


class Runner:
    """Accepts commands on a Unix socket and runs each in a forked child; one thread."""

    def __init__(self, path: Path):
        import importlib

        from tasks import jobs

        for module in PRELOAD:
            importlib.import_module(module)
        self.code = jobs.code_fingerprint()  # children inherit it: the code that they run
        self.env = import_time_env(dict(os.environ))
        self.path = path
        self.selector = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        path.unlink(missing_ok=True)
        self.listener.bind(str(path))
        path.chmod(0o600)  # the commands run as us, with what they send: only we may send
        self.listener.listen(16)
        self.selector.register(self.listener, selectors.EVENT_READ, ("accept",))

    def serve_forever(self) -> None:
        try:
            while True:
                for key, _ in self.selector.select():
                    kind, *details = key.data
                    if kind == "accept":
                        self._accept()
                    elif kind == "client":
                        self._client_readable(key.fileobj, *details)
                    else:
                        self._job_ended(key.fileobj, *details)
        finally:
            self.listener.close()
            self.path.unlink(missing_ok=True)
            if self.path.parent.name.startswith("mlops-"):  # socket_path's temporary folder
                with contextlib.suppress(OSError):
                    self.path.parent.rmdir()

    def _decline(self, env: dict[str, str]) -> str | None:
        from tasks import jobs

        theirs = import_time_env(env)
        differing = sorted(
            name for name in {*theirs, *self.env} if theirs.get(name) != self.env.get(name)
        )
        if differing:
            return f"it started with other values of {', '.join(differing)}"
        if jobs.code_fingerprint.__wrapped__() != self.code:
            return "the platform's code or training libraries changed since; restart mlops up"
        return None

    def _accept(self) -> None:
        connection, _ = self.listener.accept()
        connection.settimeout(5)
        fds: list[int] = []
        try:
            message, fds, _, _ = socket.recv_fds(connection, 1, 3)
            if not message:  # `mlops up` seeing whether the runner is ready
                connection.close()
                return
            request = json.loads(connection.makefile("rb").readline())
            if len(fds) != 3:
                raise ValueError("a command sends its stdin, stdout and stderr")
            if reason := self._decline(request["env"]):
                connection.sendall(json.dumps({"declined": reason}).encode() + b"\n")
                raise ValueError(reason)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _log(f"refused a command: {exc}")
            for fd in fds:
                os.close(fd)
            connection.close()
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._run_in_child(connection, fds, request)
        for fd in fds:
            os.close(fd)
        _log(f"job {pid}: mlops {command_name(request['argv'][1:]) or ''}")
        connection.settimeout(None)
        ended = os.pidfd_open(pid)
        self.selector.register(connection, selectors.EVENT_READ, ("client", pid))
        self.selector.register(ended, selectors.EVENT_READ, ("ended", pid, connection, time.time()))
        with contextlib.suppress(OSError):
            connection.sendall(json.dumps({"pid": pid}).encode() + b"\n")

    def _client_readable(self, connection: socket.socket, pid: int) -> None:
        """A command sends nothing after its request: readable means it is gone. It was killed
        outright (it forwards every signal it can catch), so its child is killed the same way."""
        with contextlib.suppress(OSError):
            if connection.recv(64):
                return
        self.selector.unregister(connection)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _log(f"job {pid}: its command is gone; killed")

    def _job_ended(self, ended: int, pid: int, connection: socket.socket, start: float) -> None:
        _, wait_status, usage = os.wait4(pid, 0)
        status = os.waitstatus_to_exitcode(wait_status)
        self.selector.unregister(ended)
        os.close(ended)
        with contextlib.suppress(KeyError):
            self.selector.unregister(connection)
        how = f"exit {status}" if status >= 0 else f"signal {-status}"
        cpu, peak = usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024  # KiB on Linux
        seconds = time.time() - start
        # Logged before the command hears of it: once the command has ended, its line is there.
        _log(f"job {pid}: {how} after {seconds:.1f} s (CPU {cpu:.1f} s, peak RSS {peak} MiB)")
        with contextlib.suppress(OSError):
            connection.sendall(json.dumps({"status": status}).encode() + b"\n")
        connection.close()

    def _run_in_child(self, connection: socket.socket, fds: list[int], request: dict) -> None:
        """Become the command: its descriptors, directory, environment and arguments."""
        try:
            for key in list(self.selector.get_map().values()):  # other commands' channels
                if key.fileobj is not self.listener:
                    os.close(key.fd)
            self.selector.close()
            self.listener.close()
            connection.close()
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
                os.close(fd)
            for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
                signal.signal(signum, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            sys.stdout.reconfigure(line_buffering=os.isatty(1))
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            sys.argv = request["argv"]
            from flows.cli import run_here

            run_here()  # leaves through os._exit with the command's status
        except BaseException as exc:
            sys.stderr.write(f"error: the warm runner could not run the command: {exc}\n")
            sys.stderr.flush()
        os._exit(1)


def _log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {message}", flush=True)


def serve(path: Path) -> None:
    """Run the warm runner on `path` until SIGTERM (what `mlops down` sends)."""

    def stop(_signum, _frame) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    runner = Runner(path)
    _log(f"warm runner ready on {path} (pid {os.getpid()})")
    runner.serve_forever()
