"""Run untrusted Python (e.g. model-written code with its unit tests) in a confined child process.

:func:`run_python` writes the program into a fresh temporary directory, runs it there in a new
``python -I -S -B`` process (isolated mode: ``PYTHON*`` variables ignored; no user or site packages,
so only the standard library is importable; no bytecode written) and deletes the directory
afterwards. The child (:mod:`tuner.sandbox.child`) confines itself before the program's first line
runs.

What it protects against
    * Runaway time: a wall-clock limit (the whole process group is killed) and a CPU-time limit.
    * Runaway memory: an address-space limit (``MemoryError`` in the child, never in the caller);
      output and files are size-limited, and the caller only keeps the tail of stderr.
    * Network: a new network namespace when the kernel permits it (root, or CAP_SYS_ADMIN); and in
      every case the audit hook denies sockets of any kind (also Unix sockets, which a network
      namespace does not cover).
    * Files: the audit hook denies every write (open for writing, mkdir, remove, rename, link,
      chmod, truncate, rmtree, ...) whose resolved path leaves the work directory, symlinks, and
      ``chdir``. Where the kernel permits, the child also gets a mount namespace in which every
      mount is read-only, nosuid and nodev, and the work directory is a fresh 64 MiB noexec tmpfs.
    * Processes: the audit hook denies fork, exec, spawn, ``os.system``, ``subprocess``, signals to
      other processes, ctypes, subinterpreters, raising resource limits, and modules that reach
      processes, sockets or files from C (``_posixsubprocess``, ``_ssl``, ``_sqlite3``, ...).
      ``RLIMIT_NPROC`` is 0 (the kernel ignores it for root; for other users it also stops
      threads); after the namespaces are set up a root child drops every capability, so it cannot
      undo them, mount, chroot or mknod.
    * stdin is ``/dev/null``; the environment is reduced to PATH, HOME and TMPDIR (both the work
      directory) and a UTF-8 locale.

What it does not protect against
    * Reading: the program may read any file its user may read (the standard library lives
      there; only opening a directory outside the work directory is denied, because its
      descriptor would anchor relative writes); what it reads can only leave through its own
      stdout/stderr, of which the caller keeps a tail.
    * Deliberate subversion of the interpreter. CPython's audit hooks are not a security boundary:
      code that sets out to defeat them (crafted bytecode or other memory-corruption bugs, loading
      an extension module through importlib's internals, rewriting frames) can. Against such code
      only the kernel layers hold, and they are present only where the kernel permits them (check
      ``SandboxResult.layers``); the namespaces do not hide other processes (no PID namespace), so
      native code running as the same user could still signal them. Such code can also fake a
      pass, e.g. by ending the process with ``os._exit(0)``. For hostile code, run the workers
      themselves in a container or VM as an unprivileged user.
    * Disk use without the mount namespace is bounded per file (``RLIMIT_FSIZE``), not in total.

Outcome: ``passed`` means the program ran to its end without raising; a program that calls
``exit()`` before its end fails, whatever the exit code (a completion must not skip the tests).
"""

from __future__ import annotations

import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import child

__all__ = ["SandboxResult", "STATUSES", "run_python"]

STATUSES = ("passed", "failed", "timeout", "memory", "blocked", "error")
"""Every ``SandboxResult.status``: only ``passed`` has ``passed=True``."""

FILE_LIMIT_BYTES = 64 * 1024 * 1024
"""The largest file (stdout and stderr included) the program may write."""

_CHILD_SCRIPT = Path(child.__file__).resolve()
_TAIL_BYTES = 4096


@dataclass(frozen=True)
class SandboxResult:
    """How a sandboxed program ended.

    ``status``: one of :data:`STATUSES`. ``detail``: one short line (the exception, the action
    that was denied, the limit that was hit). ``layers``: the kernel layers that were active
    (``network-namespace``, ``read-only-filesystem``, ``no-capabilities``), empty when the
    kernel permitted none; the audit hook and the resource limits are always active.
    """

    passed: bool
    status: str
    detail: str = ""
    layers: tuple[str, ...] = ()


def run_python(program: str, *, timeout_s: float = 10, memory_mb: int = 1024,
               kernel_layers: bool = True) -> SandboxResult:
    """Run ``program`` (Python source) in a confined child process; see the module docstring.

    ``timeout_s``: wall-clock limit, interpreter start included. ``memory_mb``: address-space
    limit of the child (the interpreter itself takes some tens of MiB of it). ``kernel_layers``:
    False skips the namespaces and the capability drop, leaving the audit hook and the resource
    limits (what every machine gets where the kernel refuses them; the tests check both).
    """
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s!r}.")
    if memory_mb < 64:
        raise ValueError(f"memory_mb must be at least 64, got {memory_mb!r}.")
    workdir = os.path.realpath(tempfile.mkdtemp(prefix="tuner-sandbox-"))
    try:
        Path(workdir, "program.py").write_text(program, encoding="utf-8")
        with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
            returncode, timed_out = _execute(workdir, timeout_s, memory_mb, kernel_layers,
                                             stdout, stderr)
            err_tail = _tail(stderr)
            layers = _layers(stderr)
    finally:
        _remove(workdir)
    return _outcome(returncode, timed_out, timeout_s, err_tail, layers)


def _execute(workdir: str, timeout_s: float, memory_mb: int, kernel_layers: bool,
             stdout, stderr) -> tuple[int, bool]:
    """Start the child, wait for it (at most ``timeout_s``), kill its process group; return its
    exit status and whether the wall-clock limit ended it."""
    cpu_seconds = math.ceil(timeout_s) + 1
    command = [sys.executable, "-I", "-S", "-B", "-X", "utf8", str(_CHILD_SCRIPT), workdir,
               str(memory_mb * 1024 * 1024), str(cpu_seconds), str(FILE_LIMIT_BYTES),
               "1" if kernel_layers else "0"]
    env = {"PATH": os.defpath, "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8",
           "LC_ALL": "C.UTF-8"}
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                               cwd=workdir, env=env, close_fds=True, start_new_session=True)
    try:
        exited = _wait_unreaped(process.pid, timeout_s)
        if exited is None:  # no pidfd: wait the portable way, kill the group only on a timeout
            try:
                process.wait(timeout=timeout_s)
                exited = True
            except subprocess.TimeoutExpired:
                exited = False
                _kill_group(process.pid)
        else:  # the child is not reaped yet, so its process group id cannot have been reused
            _kill_group(process.pid)
    finally:
        if process.poll() is None:  # interrupted (e.g. Ctrl-C): leave nothing running
            _kill_group(process.pid)
        process.wait()
    return process.returncode, not exited


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


def _layers(stderr) -> tuple[str, ...]:
    """The kernel layers the child reported on the first line of its stderr."""
    stderr.seek(0)
    first = stderr.readline(512).decode("utf-8", "replace").strip()
    if not first.startswith(child.LAYERS_MARKER):
        return ()
    names = first[len(child.LAYERS_MARKER):].strip()
    return () if names in ("", "none") else tuple(names.split(","))


def _remove(workdir: str) -> None:
    """Delete the work directory, even where the program took away its own permissions."""

    def make_writable_and_retry(function, path, _exc_info):
        os.chmod(os.path.dirname(path), 0o700)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o700)
        function(path)

    shutil.rmtree(workdir, onerror=make_writable_and_retry)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.startswith(child.LAYERS_MARKER)]
    return lines[-1][:300] if lines else ""


def _outcome(returncode: int, timed_out: bool, timeout_s: float, err_tail: str,
             layers: tuple[str, ...]) -> SandboxResult:
    def result(status: str, detail: str) -> SandboxResult:
        return SandboxResult(passed=status == "passed", status=status, detail=detail, layers=layers)

    if timed_out:
        return result("timeout", f"no result within {timeout_s:g} s (killed)")
    if returncode == child.PASSED:
        return result("passed", "")
    if returncode == child.FAILED:
        return result("failed", _last_line(err_tail) or "the program raised")
    if returncode == child.MEMORY:
        return result("memory", "MemoryError (address-space limit)")
    if returncode == child.BLOCKED:
        marked = [line for line in err_tail.splitlines() if line.startswith(child.BLOCKED_MARKER)]
        what = marked[-1][len(child.BLOCKED_MARKER):].strip() if marked else "a denied action"
        return result("blocked", what)
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
        return result("error", f"killed by {name}")
    if returncode == child.SETUP_ERROR:
        return result("error", _last_line(err_tail) or "sandbox setup failed")
    return result("error", f"exit code {returncode}: {_last_line(err_tail)}".rstrip(": "))
