"""Run untrusted Python (e.g. model-written code with its unit tests) in confined child processes.

Two entry points:

:func:`run_python` runs one program in a fresh ``python -I -S -B`` process (isolated mode:
``PYTHON*`` variables ignored; no user or site packages, so only the standard library is
importable; no bytecode written) in a fresh temporary work directory, deleted afterwards.
``passed`` means: the program ran to its end without raising.

:func:`run_tests` scores an untrusted *solution* against trusted *tests* (HumanEval's ``check``):
the solution runs in one confined process (the solver), the tests in another (the checker), and the
tests call the solution's function through a pipe, with arguments and results passed as plain
data (numbers, strings, bytes, None, lists, tuples, dicts, sets) and rebuilt on the other side from
exact built-in types. ``passed`` means: ``check(candidate)`` returned in the checker and every call
was answered. Use it, not :func:`run_python`, whenever the code under test is not trusted.

Each child (:mod:`tuner.sandbox.child`) confines itself before the code's first line runs.

The verdict
    A pass needs positive evidence: the child writes a line with a per-run secret (given on its
    stdin, never on disk or on its command line) to a pipe of its own only after the code ran to
    its end; an exit before that (``os._exit(0)`` at top level or in a function, a signal, a
    crash) leaves no such line and is a failure whatever the exit code. Under :func:`run_tests` the
    verdict comes from the checker, which never runs the solution's code, so nothing the solution
    does in its own process counts: an ``os._exit``, a replaced ``builtins.abs``, a result whose
    ``__eq__`` always says True (only plain data crosses, rebuilt from exact built-in types), or
    reading the expected value from its caller's frame (its caller is the solver's own loop; the
    tests, their constants and the secret exist only in the checker, which gets them through
    stdin, not a file, and is non-dumpable, so that its ``/proc/<pid>/{mem,environ,fd/*}`` are
    closed to a solver of the same user; a solver running as root keeps CAP_SYS_PTRACE, which
    opens them, unless the kernel layers dropped its capabilities). ``SandboxResult.detail``
    carries no text of the code's making: an exception's name only when it is a built-in one, a
    line number, a denied audit event from a fixed list; never messages, paths or file contents.

What it protects against, always (audit hook and resource limits, every machine)
    * Runaway time: a wall-clock limit (the whole process group is killed) and a CPU-time limit.
    * Runaway memory: an address-space limit (``MemoryError`` in the child, never in the caller);
      output and files are size-limited, and the caller only keeps the tail of stderr.
    * Network: the audit hook denies sockets of any kind (also Unix sockets).
    * Files: the audit hook denies every write (open for writing, mkdir, remove, rename, link,
      chmod, truncate, rmtree, ...) whose resolved path leaves the work directory, symlinks, and
      ``chdir``; ``os.mkfifo`` and ``os.mknod``, which raise no audit event, are replaced by stubs
      that deny (and a fresh ``posix`` module with the originals cannot be built).
    * Processes: the audit hook denies fork, exec, spawn, ``os.system``, ``subprocess``, signals to
      other processes (pidfds included), ctypes, subinterpreters, raising resource limits, and
      modules that reach processes, sockets or files from C (``_posixsubprocess``, ``_ssl``,
      ``_sqlite3``, ...). ``RLIMIT_NPROC`` is 0 (the kernel ignores it for root; for other users
      it also stops threads).
    * stdin is ``/dev/null`` once the child has read its input; the environment is reduced to
      PATH, HOME and TMPDIR (both the work directory) and a UTF-8 locale.

With the kernel layers (``kernel_layers=True`` where the kernel permits them: root or
CAP_SYS_ADMIN; ``SandboxResult.layers`` names those applied), in addition
    * a new network namespace (no interface but a loopback that is down);
    * a mount namespace in which every mount is read-only, nosuid and nodev, and the work directory
      is a fresh 64 MiB noexec tmpfs (disk use bounded in total, not only per file);
    * every capability dropped after the namespaces are set up, so that nothing can undo them,
      mount, chroot or mknod, even code that defeats the audit hook.

What it does not protect against
    * Reading: the code may read any file its user may read (the standard library lives there;
      only opening a directory outside the work directory is denied, because its descriptor would
      anchor relative writes); what it reads can only leave through its own stdout/stderr, which
      the caller does not return.
    * Deliberate subversion of the interpreter. CPython's audit hooks are not a security boundary:
      code that sets out to defeat them (crafted bytecode or other memory-corruption bugs, loading
      an extension module through importlib's internals, rewriting frames) can; without the kernel
      layers nothing else then stands between it and the user's files and network. Under
      :func:`run_python` such code can also forge its own verdict (the secret is in its process);
      under :func:`run_tests` it cannot forge the checker's, but it still runs with the worker's
      user rights. The namespaces do not hide other processes (no PID namespace). For hostile
      code, run the workers themselves in a container or VM as an unprivileged user.
    * Disk use without the mount namespace is bounded per file (``RLIMIT_FSIZE``), not in total.

Outcome: ``passed`` only with the verdict line; a program that calls ``exit()`` before its end
fails, whatever the exit code (a completion must not skip the tests).
"""

from __future__ import annotations

import builtins
import json
import math
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import child

__all__ = ["SandboxResult", "STATUSES", "run_python", "run_tests"]

STATUSES = ("passed", "failed", "timeout", "memory", "blocked", "error")
"""Every ``SandboxResult.status``: only ``passed`` has ``passed=True``."""

FILE_LIMIT_BYTES = 64 * 1024 * 1024
"""The largest file (stdout and stderr included) the program may write."""

_CHILD_SCRIPT = Path(child.__file__).resolve()
_TAIL_BYTES = 4096
_VERDICT_BYTES = 64 * 1024
_LAYERS = ("network-namespace", "read-only-filesystem", "no-capabilities")
_EXCEPTIONS = frozenset(name for name, value in vars(builtins).items()
                        if isinstance(value, type) and issubclass(value, BaseException))


@dataclass(frozen=True)
class SandboxResult:
    """How a sandboxed program ended.

    ``status``: one of :data:`STATUSES`. ``detail``: one short line of the sandbox's own words
    (which built-in exception, at which line; which audit event was denied; which limit was hit);
    never text of the code's making. ``layers``: the kernel layers that were active
    (``network-namespace``, ``read-only-filesystem``, ``no-capabilities``), empty when the kernel
    permitted none; the audit hook and the resource limits are always active.
    """

    passed: bool
    status: str
    detail: str = ""
    layers: tuple[str, ...] = ()


def _check_limits(timeout_s: float, memory_mb: int) -> None:
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s!r}.")
    if memory_mb < 64:
        raise ValueError(f"memory_mb must be at least 64, got {memory_mb!r}.")


def run_python(program: str, *, timeout_s: float = 10, memory_mb: int = 1024,
               kernel_layers: bool = True) -> SandboxResult:
    """Run ``program`` (Python source) in a confined child process; see the module docstring.

    ``timeout_s``: wall-clock limit, interpreter start included. ``memory_mb``: address-space
    limit of the child (the interpreter itself takes some tens of MiB of it). ``kernel_layers``:
    False skips the namespaces and the capability drop, leaving the audit hook and the resource
    limits (what every machine gets where the kernel refuses them; the tests check both).
    """
    _check_limits(timeout_s, memory_mb)
    with _Child("program", {"source": program}, timeout_s, memory_mb, kernel_layers) as one:
        one.start()
        timed_out = not one.wait(timeout_s)
        one.stop()
        return one.outcome(timed_out, timeout_s)


def run_tests(solution: str, tests: str, entry_point: str, *, context: str = "",
              timeout_s: float = 10, memory_mb: int = 1024,
              kernel_layers: bool = True) -> SandboxResult:
    """Score the untrusted ``solution`` against the trusted ``tests``; see the module docstring.

    ``solution`` must define the function ``entry_point``; ``tests`` must define
    ``check(candidate)``, which raises when the candidate is wrong (HumanEval's convention).
    ``context`` is trusted code run before ``tests`` in the checker (HumanEval's prompt, whose
    helper functions some tests call). The solution and the checks run in two processes, each
    with the limits of :func:`run_python` (``timeout_s`` bounds the whole).
    """
    _check_limits(timeout_s, memory_mb)
    if not isinstance(entry_point, str) or not entry_point.isidentifier():
        raise ValueError(f"entry_point must be a Python identifier, got {entry_point!r}.")
    requests, replies = os.pipe(), os.pipe()  # (read, write): checker -> solver, solver -> checker
    try:
        with _Child("solver", {"solution": solution, "entry_point": entry_point}, timeout_s,
                    memory_mb, kernel_layers, channel=(requests[0], replies[1])) as solver, \
             _Child("checker", {"context": context, "tests": tests, "entry_point": entry_point},
                    timeout_s, memory_mb, kernel_layers,
                    channel=(requests[1], replies[0])) as checker:
            solver.start()
            checker.start()
            for fd in (*requests, *replies):  # the children hold their ends: EOF when one dies
                os.close(fd)
            requests = replies = ()
            timed_out = not checker.wait(timeout_s)
            checker.stop()
            solver.stop()
            verdict = checker.outcome(timed_out, timeout_s, entry_point=entry_point)
            if verdict.passed or verdict.status == "timeout":
                return verdict
            own = solver.outcome(False, timeout_s, records_only=True)
            # why the solution stopped answering; a SIGKILL is not evidence of memory here: the
            # sandbox itself kills a solver still running when the checks have ended
            sigkill = own is not None and "SIGKILL" in own.detail
            if own is not None and own.status in ("blocked", "memory") and not sigkill:
                return SandboxResult(False, own.status, f"the solution: {own.detail}",
                                     verdict.layers)
            return verdict
    finally:
        for fd in (*requests, *replies):
            os.close(fd)


class _Child:
    """One confined child process: its work directory, input, captured output and verdict pipe."""

    def __init__(self, role: str, spec: dict, timeout_s: float, memory_mb: int,
                 kernel_layers: bool, channel: tuple[int, int] | None = None) -> None:
        self.role, self.spec, self.channel = role, spec, channel
        self.timeout_s, self.memory_mb, self.kernel_layers = timeout_s, memory_mb, kernel_layers
        self.secret = secrets.token_hex(16)
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "_Child":
        self.workdir = os.path.realpath(tempfile.mkdtemp(prefix="tuner-sandbox-"))
        self.stdout, self.stderr = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        self.verdict_r, self.verdict_w = os.pipe()
        return self

    def start(self) -> None:
        cpu_seconds = math.ceil(self.timeout_s) + 1
        fds = [self.verdict_w, *(self.channel or ())]
        command = [sys.executable, "-I", "-S", "-B", "-X", "utf8", str(_CHILD_SCRIPT), self.role,
                   self.workdir, str(self.memory_mb * 1024 * 1024), str(cpu_seconds),
                   str(FILE_LIMIT_BYTES), "1" if self.kernel_layers else "0", *map(str, fds)]
        env = {"PATH": os.defpath, "HOME": self.workdir, "TMPDIR": self.workdir,
               "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        # The input (code and secret) goes through an unnamed file: nothing on disk to find.
        with tempfile.TemporaryFile() as stdin:
            stdin.write(json.dumps({**self.spec, "secret": self.secret}).encode("utf-8"))
            stdin.seek(0)
            self.process = subprocess.Popen(command, stdin=stdin, stdout=self.stdout,
                                            stderr=self.stderr, cwd=self.workdir, env=env,
                                            close_fds=True, pass_fds=fds, start_new_session=True)
        os.close(self.verdict_w)
        self.verdict_w = None

    def wait(self, timeout_s: float) -> bool:
        """Wait for the child to exit, at most ``timeout_s``; True when it exited."""
        exited = _wait_unreaped(self.process.pid, timeout_s)
        if exited is None:  # no pidfd: wait the portable way
            try:
                self.process.wait(timeout=timeout_s)
                exited = True
            except subprocess.TimeoutExpired:
                exited = False
        return exited

    def stop(self) -> None:
        """Kill the child's process group (it leads one) and reap the child."""
        if self.process is None:
            return
        if self.process.returncode is None:  # not reaped: its group id cannot have been reused
            _kill_group(self.process.pid)
        self.process.wait()

    def outcome(self, timed_out: bool, timeout_s: float, *, entry_point: str = "",
                records_only: bool = False) -> SandboxResult | None:
        """How the child ended. ``records_only``: from its verdict lines alone (None without
        an outcome line), e.g. for a solver that the runner itself killed at the end."""
        records = _read_records(self.verdict_r, self.secret)
        if records_only and not any(status not in ("started",) for status, _ in records):
            return None
        return _outcome(self.role, self.process.returncode, timed_out, timeout_s, records,
                        _tail(self.stderr), entry_point)

    def __exit__(self, *exc_info: object) -> None:
        try:
            if self.process is not None and self.process.poll() is None:
                _kill_group(self.process.pid)  # interrupted (e.g. Ctrl-C): leave nothing running
                self.process.wait()
        finally:
            for fd in (self.verdict_r, self.verdict_w):
                if fd is not None:
                    os.close(fd)
            self.stdout.close()
            self.stderr.close()
            _remove(self.workdir)


def _wait_unreaped(pid: int, timeout_s: float) -> bool | None:
    """Wait for the child to exit without reaping it: True when it exited, False on a timeout,
    None where pidfds are not available (not Linux >= 5.3)."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(timeout_s * 1000))
    finally:
        os.close(pidfd)


def _kill_group(pgid: int) -> None:
    """SIGKILL the child's process group (it leads one: ``start_new_session``)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(stream) -> str:
    """The last few KiB of a captured stream (the program may have written up to the file limit)."""
    stream.seek(0, os.SEEK_END)
    stream.seek(max(0, stream.tell() - _TAIL_BYTES))
    return stream.read().decode("utf-8", "replace")


def _read_records(fd: int, secret: str) -> list[tuple[str, dict[str, str]]]:
    """The child's verdict lines that carry ``secret``: (status, fields), in order. The child is
    dead (or killed), so the pipe is read to its end without waiting."""
    os.set_blocking(fd, False)
    data = b""
    while len(data) < _VERDICT_BYTES:
        try:
            chunk = os.read(fd, _VERDICT_BYTES)
        except BlockingIOError:
            break
        if not chunk:
            break
        data += chunk
    records = []
    for line in data.decode("ascii", "replace").splitlines():
        parts = line.split(" ")
        if len(parts) < 2 or not secrets.compare_digest(parts[0], secret):
            continue
        fields = dict(part.split("=", 1) for part in parts[2:] if "=" in part)
        records.append((parts[1], fields))
    return records


def _remove(workdir: str) -> None:
    """Delete the work directory, even where the program took away its own permissions."""

    def make_writable_and_retry(function, path, _exc_info):
        os.chmod(os.path.dirname(path), 0o700)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o700)
        function(path)

    shutil.rmtree(workdir, onerror=make_writable_and_retry)


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.lstrip("-").isdigit() and len(text) < 12 else None


def _exception(fields: dict[str, str]) -> str:
    name = fields.get("exception", "*")
    return name if name in _EXCEPTIONS else "an exception of its own class"


def _event(name: str) -> str:
    if name in child.REPORTED_EVENTS:
        return name
    prefix = name.split(".", 1)[0]
    return f"{prefix}.*" if prefix in ("socket", "ctypes", "syslog") else "an audit event"


_REASONS = {
    "ended": "the solution's process ended before answering (exit, os._exit or a crash)",
    "unreadable": "the solution answered with something that is not plain data",
    "unsupported": "the solution returned a value that is not plain data (numbers, strings, "
                   "bytes, None, lists, tuples, dicts, sets)",
    "no-check": "the tests define no check(candidate)",
}


def _failure_detail(role: str, fields: dict[str, str], entry_point: str) -> str:
    reason, line = fields.get("reason", "raised"), _int(fields.get("line"))
    at = f" (line {line})" if line is not None else ""
    if reason in _REASONS:
        return _REASONS[reason]
    if reason == "missing":
        return f"the solution defines no function {entry_point!r}"
    if reason == "load":
        return f"the solution failed to load: {_exception(fields)}{at}"
    if reason == "raised" and role == "checker" and fields.get("file") in ("tests.py", "context.py"):
        where = "tests" if fields["file"] == "tests.py" else "context"
        return f"{_exception(fields)} in the {where}{at}"
    if reason == "raised" and role == "checker":
        return f"the solution raised {_exception(fields)}"
    return f"{_exception(fields)}{at}"


def _outcome(role: str, returncode: int, timed_out: bool, timeout_s: float,
             records: list[tuple[str, dict[str, str]]], err_tail: str,
             entry_point: str) -> SandboxResult:
    started = next((fields for status, fields in records if status == "started"), None)
    layers = tuple(name for name in (started or {}).get("layers", "").split(",") if name in _LAYERS)
    final = next(((status, fields) for status, fields in records
                  if started is not None and status != "started"), None)

    def result(status: str, detail: str) -> SandboxResult:
        return SandboxResult(passed=status == "passed", status=status, detail=detail, layers=layers)

    if timed_out:
        return result("timeout", f"no result within {timeout_s:g} s (killed)")
    if started is None:  # nothing of the code ran: the sandbox's own words on stderr
        if returncode == child.SETUP_ERROR:
            lines = [line.strip() for line in err_tail.splitlines() if line.strip()]
            return result("error", (lines[-1] if lines else "sandbox setup failed")[:300])
        return result("error", f"the sandbox did not start (exit code {returncode})")
    if final is not None:
        status, fields = final
        if status in ("passed", "served") and returncode == child.PASSED:
            return result("passed", "") if status == "passed" else result("failed", "no verdict")
        if status == "blocked":
            reason = child.BLOCKED_REASONS.get(fields.get("reason", ""), "")
            return result("blocked", f"{_event(fields.get('event', ''))} {reason}".strip())
        if status == "memory":
            return result("memory", "MemoryError (address-space limit)")
        if status == "exit":
            code = _int(fields.get("code"))
            shown = "" if code is None else str(code)
            return result("failed", f"the program called exit({shown}) before its end")
        if status == "failed":
            if fields.get("reason") == "no-check":
                return result("error", _REASONS["no-check"])
            return result("failed", _failure_detail(role, fields, entry_point))
    if returncode < 0:
        signum = -returncode
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        if signum == signal.SIGXCPU:
            return result("timeout", f"CPU time limit ({name})")
        if signum == signal.SIGXFSZ:
            return result("error", f"file size limit ({name})")
        if signum == signal.SIGKILL:
            return result("memory", "killed by SIGKILL (out of memory?)")
        if "MemoryError" in err_tail or "Cannot allocate memory" in err_tail:
            return result("memory", f"killed by {name} while out of memory")
        return result("failed", f"killed by {name} before its end")
    return result("failed", f"the process ended before the code's end without a verdict (exit "
                            f"code {returncode}: os._exit or a crash)")
