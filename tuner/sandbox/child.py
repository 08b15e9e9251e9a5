"""The child side of :mod:`tuner.sandbox`: confine this process, then run code in one of three roles.

Started by :mod:`tuner.sandbox.runner` as::

    python -I -S -B -X utf8 child.py ROLE WORKDIR MEMORY_BYTES CPU_SECONDS FILE_BYTES KERNEL
                                     VERDICT_FD [REQUESTS_FD REPLIES_FD]

with its input on stdin: one JSON object (``secret``, and ``source``, or ``solution`` /
``entry_point``, or ``context`` / ``tests`` / ``entry_point``), read before anything else and then
replaced by ``/dev/null``. Roles:

``program``
    Run ``source`` as ``__main__`` (:func:`tuner.sandbox.run_python`).
``solver``
    Run the untrusted ``solution``, then answer calls of its function ``entry_point``: each request
    on REQUESTS_FD is the arguments, each reply on REPLIES_FD the return value or the exception's
    name, both as plain data (:func:`encode` / :func:`decode`) (:func:`tuner.sandbox.run_tests`).
``checker``
    Run the trusted ``context`` and ``tests``, then ``check(candidate)`` where ``candidate``
    forwards each call to the solver: the checks run in a process the solution never runs in, with this
    process's own builtins, on values rebuilt here from plain data (no object of the solution's
    making, so no ``__eq__`` of its own), and this process cannot be read by the solver (it is
    made non-dumpable).

Standard library only, and nothing runs at import time (the parent imports this module for its
constants). ``main`` does, in order:

1. read stdin;
2. the kernel layers, each where the kernel permits it (Linux, CAP_SYS_ADMIN): a new network
   namespace (no interface but a loopback that is down); a new mount namespace in which every mount
   is read-only, nosuid and nodev, and WORKDIR is a fresh, size-limited, noexec tmpfs; then every
   capability is dropped, so that nothing later can undo the above;
3. resource limits (address space, CPU time, file size, open files, processes, no core files);
4. the audit hook (:func:`install_audit_hook`), which nothing can remove once it is installed;
5. the role's code.

**The verdict.** Every line this process reports to the parent goes to VERDICT_FD and starts with
the per-run ``secret`` (the parent ignores lines without it): ``started`` (with the kernel layers)
just before the role's code runs, then one outcome, ``passed`` only after that code ran to its end
without raising. An exit before that (``os._exit``, a signal, a crash) leaves no outcome, which the
parent reads as a failure, whatever the exit code. Outcomes carry no text of the code's making: an
exception is named only when it is a built-in one, a denied action by its audit event (from a
fixed list), a line by its number.
"""

from __future__ import annotations

import sys

PASSED = 0
"""Exit code: the code ran to its end without raising (the verdict line says so too)."""
FAILED = 10
"""Exit code: the code raised (the traceback is on stderr) or called ``exit()``."""
MEMORY = 11
"""Exit code: the code raised ``MemoryError``."""
BLOCKED = 12
"""Exit code: the audit hook denied an action (``BLOCKED_MARKER`` + the action, on stderr)."""
SETUP_ERROR = 13
"""Exit code: the sandbox itself could not be set up (nothing of the code ran)."""

ROLES = ("program", "solver", "checker")

BLOCKED_MARKER = "[sandbox] blocked:"

MESSAGE_LIMIT = 64 * 1024 * 1024
"""The largest request or reply between checker and solver, in bytes."""

DEPTH_LIMIT = 200
"""The deepest nesting of plain data a request or reply may hold."""

TMPFS_BYTES = 64 * 1024 * 1024
"""Size of the tmpfs that replaces the work directory when a mount namespace is available."""

# Linux constants (include/uapi/linux/{sched,mount,capability,prctl}.h); identical on x86-64 and arm64.
_CLONE_NEWNS, _CLONE_NEWNET = 0x00020000, 0x40000000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 0x2, 0x4, 0x8, 0x4000, 0x40000
_MOUNT_ATTR_RDONLY, _MOUNT_ATTR_NOSUID, _MOUNT_ATTR_NODEV = 0x1, 0x2, 0x4
_SYS_MOUNT_SETATTR, _AT_FDCWD, _AT_RECURSIVE = 442, -100, 0x8000
_PR_CAPBSET_DROP, _PR_SET_NO_NEW_PRIVS, _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 24, 38, 47, 4
_PR_SET_DUMPABLE = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# --- the audit policy -------------------------------------------------------------------------------

_DENIED_EVENTS = frozenset({
    # processes and signals to other processes
    "os.system", "os.exec", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.startfile",
    "subprocess.Popen", "pty.spawn", "os.kill", "os.killpg", "signal.pthread_kill", "webbrowser.open",
    # loosening the confinement
    "resource.setrlimit", "resource.prlimit", "cpython.PyInterpreterState_New", "os.chdir",
    "os.symlink", "fcntl.ioctl", "sqlite3.enable_load_extension", "sqlite3.load_extension",
})
_DENIED_PREFIXES = ("socket.", "ctypes.", "syslog.")

_PATH_EVENTS = {  # event -> positions of the arguments that name a path the event writes
    "os.mkdir": (0,), "os.rmdir": (0,), "os.remove": (0,), "os.rename": (0, 1), "os.link": (0, 1),
    "os.truncate": (0,), "os.chmod": (0,), "os.chown": (0,), "os.utime": (0,),
    "os.setxattr": (0,), "os.removexattr": (0,), "shutil.rmtree": (0,), "shutil.chown": (0,),
    "shutil.unpack_archive": (1,), "sqlite3.connect": (0,),
}

_DENIED_MODULES = frozenset({
    # native code, processes, shared memory, subinterpreters (which have no audit hook), and modules
    # that open files or sockets in C, where no audit event sees them
    "ctypes", "_ctypes", "_posixsubprocess", "_posixshmem", "_multiprocessing",
    "_xxsubinterpreters", "_xxinterpchannels", "_sqlite3", "_ssl", "readline", "_tkinter", "nis",
    "ossaudiodev", "_dbm", "_gdbm",
})
_DENIED_MODULE_PREFIXES = ("ctypes.", "_test", "_xx")

_UNAUDITED = (  # (module, function, the event reported): functions that raise no audit event
    ("posix", "mkfifo", "os.mkfifo"),            # create files (a FIFO, a node) anywhere
    ("posix", "mknod", "os.mknod"),
    ("posix", "pidfd_open", "os.pidfd_open"),    # with pidfd_send_signal: signals to any process
    ("_signal", "pidfd_send_signal", "signal.pidfd_send_signal"),
    ("_imp", "create_builtin", "_imp.create_builtin"),  # a fresh posix without the stubs above
)
_MIRRORS = {"posix": "os", "_signal": "signal"}  # modules that re-export those functions

REPORTED_EVENTS = frozenset(_DENIED_EVENTS | set(_PATH_EVENTS) | {"open", "import"}
                            | {event for _, _, event in _UNAUDITED}) | {"_posixsubprocess.fork_exec",
    "socket.__new__", "socket.bind", "socket.connect", "socket.getaddrinfo",
    "socket.gethostbyname", "socket.gethostbyaddr", "socket.gethostname", "socket.getnameinfo",
    "socket.getservbyname", "socket.getservbyport", "socket.sendmsg", "socket.sendto",
    "socket.sethostname", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "syslog.openlog",
    "syslog.syslog"}
"""Audit events a blocked verdict may name; the parent shows any other as its prefix + ``*``
(an event name can be made up by the code: ``sys.audit("socket.<anything>")``)."""

BLOCKED_REASONS = {"": "", "outside": "outside the work directory", "device": "a device",
                   "directory": "a directory outside the work directory",
                   "unverifiable": "a path that cannot be checked"}
"""Why an action was denied, as reported (key) and shown (value)."""


def install_audit_hook(root: str, report=None) -> None:
    """Deny, for the rest of this process, what a test program has no business doing.

    ``root`` is the resolved work directory, which is also the working directory (``os.chdir`` is
    denied). Denied: creating processes, signalling other processes, sockets of any kind, ctypes,
    changing resource limits, subinterpreters, symlinks, ioctl; any file operation that writes
    (open for writing, mkdir, remove, rename, link, truncate, chmod, chown, utime, xattrs,
    rmtree, unpacking archives) to a path that does not resolve inside ``root``; opening a directory
    outside ``root`` (its descriptor would let relative paths escape); writing to a device; and
    the functions that raise no audit event at all (``os.mkfifo``, ``os.mknod``, pidfds), which
    are replaced by stubs that deny (a fresh copy of their module cannot be made: every built-in
    module is imported first and ``_imp.create_builtin`` is replaced too). A denied action writes
    ``BLOCKED_MARKER`` and what was denied to stderr, calls ``report(event, reason)`` (which writes
    the verdict line), and ends the process at once with exit code ``BLOCKED``, so that no ``try``
    in the program can hide it. Importing a denied module raises ``ModuleNotFoundError``, as if
    this Python had been built without it.

    The hook only calls C functions captured here, so that monkeypatching ``os`` or ``os.path``
    cannot change its decisions.
    """
    import posix

    write, exit_now, fspath = posix.write, posix._exit, posix.fspath
    lstat, stat, readlink = posix.lstat, posix.stat, posix.readlink
    decode, str_copy = bytes.decode, str.__str__
    write_flags = posix.O_WRONLY | posix.O_RDWR | posix.O_CREAT | posix.O_TRUNC | posix.O_APPEND
    dir_flags = posix.O_DIRECTORY | getattr(posix, "O_PATH", 0)
    s_ifmt, s_iflnk, s_ifdir, s_ifchr, s_ifblk = 0o170000, 0o120000, 0o040000, 0o020000, 0o060000
    watched = frozenset(_DENIED_EVENTS | set(_PATH_EVENTS) | {"open", "import"})
    denied_events, denied_prefixes, path_events = _DENIED_EVENTS, _DENIED_PREFIXES, _PATH_EVENTS
    denied_modules, denied_module_prefixes = _DENIED_MODULES, _DENIED_MODULE_PREFIXES
    marker = BLOCKED_MARKER.encode()

    def deny(event: str, reason: str = "") -> None:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # a closed or replaced stream must not keep the process alive
            pass
        try:
            shown = (event + " " + BLOCKED_REASONS.get(reason, "")).strip()
            write(2, b"\n" + marker + b" " + shown.encode("utf-8", "replace")[:300] + b"\n")
            if report is not None:
                report(event, reason)
        finally:
            exit_now(BLOCKED)

    def as_text(path: object) -> str | None:
        """The path as an exact ``str`` (None for a file descriptor or no path), without running the
        program's code on a ``str`` / ``bytes`` subclass."""
        if path is None or isinstance(path, int):
            return None
        if isinstance(path, str):
            return str_copy(path)
        if isinstance(path, bytes):
            return decode(path, "utf-8", "surrogateescape")
        text = fspath(path)  # an os.PathLike: its __fspath__ runs here
        return str_copy(text) if isinstance(text, str) else decode(text, "utf-8", "surrogateescape")

    def resolve(path: str) -> str:
        """Like os.path.realpath (relative to ``root``), built on captured C functions only."""
        todo = (path if path.startswith("/") else root + "/" + path).split("/")[::-1]
        parts: list[str] = []
        links = 0
        while todo:
            name = todo.pop()
            if name in ("", "."):
                continue
            if name == "..":
                if parts:
                    parts.pop()
                continue
            parts.append(name)
            try:
                mode = lstat("/" + "/".join(parts)).st_mode
            except (OSError, ValueError):
                continue  # does not exist (yet): taken literally
            if mode & s_ifmt == s_iflnk:
                links += 1
                if links > 40:
                    raise OSError("too many levels of symbolic links")
                target = readlink("/" + "/".join(parts))
                parts.pop()
                if target.startswith("/"):
                    parts = []
                todo.extend(target.split("/")[::-1])
        return "/" + "/".join(parts)

    def inside(path: str) -> bool:
        return path == root or path.startswith(root + "/")

    def file_type(path: str) -> int:
        try:
            return stat(path).st_mode & s_ifmt
        except (OSError, ValueError):
            return 0

    def check_write(event: str, path: object) -> None:
        text = as_text(path)
        if text is not None and not inside(resolve(text)):
            deny(event, "outside")

    def check_open(path: object, mode: object, flags: object) -> None:
        text = as_text(path)
        if text is None:
            return
        flags = flags if isinstance(flags, int) else 0
        writing = bool(flags & write_flags) or (isinstance(mode, str) and any(c in mode for c in "wax+"))
        if writing:
            resolved = resolve(text)
            if not inside(resolved):
                deny("open", "outside")
            if file_type(resolved) in (s_ifchr, s_ifblk):
                deny("open", "device")
        elif flags & dir_flags or file_type(text) == s_ifdir:
            if not inside(resolve(text)):
                deny("open", "directory")

    def hook(event: str, args: tuple) -> None:
        if event not in watched and not event.startswith(denied_prefixes):
            return
        if event == "import":
            name = args[0] if isinstance(args[0], str) else ""
            if name in denied_modules or name.startswith(denied_module_prefixes):
                raise ModuleNotFoundError(f"No module named {name!r} (not available in the sandbox)")
            return
        try:
            if event in denied_events or event.startswith(denied_prefixes):
                deny(event)
            elif event == "open":
                check_open(*args[:3])
            else:
                for position in path_events[event]:
                    check_write(event, args[position])
        except Exception:  # a path we cannot judge is a path we do not allow
            deny(event, "unverifiable")

    _stub_fork_exec(deny)  # first: once the hook is in, importing _posixsubprocess is denied
    _stub_unaudited(deny)
    sys.addaudithook(hook)


def _stub_fork_exec(deny) -> None:
    """``_posixsubprocess.fork_exec`` starts processes without an audit event: replace it, so that
    ``import subprocess`` still works and a direct call is denied like ``subprocess.Popen``. A fresh
    import of the module is then denied (it is in ``_DENIED_MODULES``)."""
    try:
        import _posixsubprocess
    except ImportError:
        return

    def fork_exec(*args: object, **kwargs: object) -> None:
        deny("_posixsubprocess.fork_exec")

    _posixsubprocess.fork_exec = fork_exec


def _stub_unaudited(deny) -> None:
    """Replace the functions of :data:`_UNAUDITED` by stubs that deny. The stubs hold no reference
    to the originals. Every built-in module is imported first, so that ``_imp.create_builtin`` (which
    would build a fresh ``posix`` with the originals) is no longer needed."""
    import importlib

    for name in sys.builtin_module_names:
        if name not in _DENIED_MODULES and not name.startswith(_DENIED_MODULE_PREFIXES):
            try:
                importlib.import_module(name)
            except ImportError:
                pass

    def stub(event: str):
        def denied(*args: object, **kwargs: object) -> None:
            deny(event)
        return denied

    for module_name, function, event in _UNAUDITED:
        for holder in (module_name, _MIRRORS.get(module_name)):
            module = sys.modules.get(holder) if holder else None
            if module is not None and hasattr(module, function):
                setattr(module, function, stub(event))


# --- the kernel layers ------------------------------------------------------------------------------

def _kernel_layers(root: str) -> list[str]:
    """Apply the namespace and capability layers that the kernel permits; name those applied."""
    if not sys.platform.startswith("linux"):
        return []
    try:
        import ctypes
    except ImportError:
        return []
    layers: list[str] = []
    try:
        libc = ctypes.CDLL(None, use_errno=True)

        def ok(result: int) -> bool:
            return result == 0

        if ok(libc.unshare(_CLONE_NEWNET)):
            layers.append("network-namespace")
        if ok(libc.unshare(_CLONE_NEWNS)) and _readonly_mounts(ctypes, libc, root):
            layers.append("read-only-filesystem")
        if _drop_capabilities(ctypes, libc):
            layers.append("no-capabilities")
    finally:
        # The program may not reach ctypes through sys.modules; a fresh import is then denied.
        for name in [n for n in sys.modules if n == "_ctypes" or n == "ctypes" or n.startswith("ctypes.")]:
            del sys.modules[name]
    return layers


def _readonly_mounts(ctypes, libc, root: str) -> bool:
    """In a fresh mount namespace: every mount read-only, nosuid, nodev; ``root`` a writable but
    noexec tmpfs. False (and nothing half done that matters) when the kernel refuses."""

    class MountAttr(ctypes.Structure):
        _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                    ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]

    setattr_ = libc.syscall
    setattr_.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint,
                         ctypes.c_void_p, ctypes.c_size_t]
    target = root.encode()
    if libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        return False
    options = f"size={TMPFS_BYTES},mode=0700".encode()
    if libc.mount(b"tmpfs", target, b"tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, options) != 0:
        return False
    everything = MountAttr(attr_set=_MOUNT_ATTR_RDONLY | _MOUNT_ATTR_NOSUID | _MOUNT_ATTR_NODEV)
    if setattr_(_SYS_MOUNT_SETATTR, _AT_FDCWD, b"/", _AT_RECURSIVE, ctypes.byref(everything),
                ctypes.sizeof(everything)) != 0:
        return False
    writable = MountAttr(attr_clr=_MOUNT_ATTR_RDONLY)
    return setattr_(_SYS_MOUNT_SETATTR, _AT_FDCWD, target, 0, ctypes.byref(writable),
                    ctypes.sizeof(writable)) == 0


def _drop_capabilities(ctypes, libc) -> bool:
    """Empty the bounding, ambient, effective, permitted and inheritable sets; no new privileges.
    True when there were capabilities to drop and they are gone."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            effective = next(line for line in status if line.startswith("CapEff:"))
        with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as last:
            last_cap = int(last.read())
    except (OSError, StopIteration, ValueError):
        return False
    if int(effective.split()[1], 16) == 0:
        return False

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    for cap in range(last_cap + 1):
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    return libc.capset(ctypes.byref(Header(_LINUX_CAPABILITY_VERSION_3, 0)), (Data * 2)()) == 0


def _not_dumpable() -> bool:
    """PR_SET_DUMPABLE 0: processes of the same user can no longer read this one's memory or file
    descriptors through /proc (the checker's tests and secret stay out of the solver's reach, even
    where ptrace is not restricted). True when it took effect."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes
    except ImportError:
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    finally:
        for name in [n for n in sys.modules if n == "_ctypes" or n == "ctypes" or n.startswith("ctypes.")]:
            del sys.modules[name]


def _set_limits(memory_bytes: int, cpu_seconds: int, file_bytes: int) -> None:
    import resource

    # Soft = hard, except for CPU time: the soft limit sends SIGXCPU (read as a timeout), the hard
    # one SIGKILL. RLIMIT_NPROC = 0: no new process or thread, except for root, which the kernel
    # exempts (the audit hook still denies processes).
    for limit, soft, hard in ((resource.RLIMIT_AS, memory_bytes, memory_bytes),
                              (resource.RLIMIT_CPU, cpu_seconds, cpu_seconds + 1),
                              (resource.RLIMIT_FSIZE, file_bytes, file_bytes),
                              (resource.RLIMIT_NOFILE, 64, 64),
                              (resource.RLIMIT_CORE, 0, 0),
                              (resource.RLIMIT_NPROC, 0, 0)):
        resource.setrlimit(limit, (soft, hard))


# --- the verdict -----------------------------------------------------------------------------------

class _Verdict:
    """Writes this process's report lines to the parent: ``SECRET STATUS key=value ...``.

    Every value is an exact ``int`` or a ``str`` of ``[A-Za-z0-9_.,*-]`` checked here, so that no
    text of the code's making reaches the parent. The lines that need no values are encoded before
    the code runs (writing them allocates nothing, and calls nothing the code could replace)."""

    _ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.,*-")

    def __init__(self, fd: int, secret: str) -> None:
        import posix

        self._write, self._fd, self._secret = posix.write, fd, secret
        self._passed = self._line("passed")
        self._memory = self._line("memory")

    def _clean(self, value: object) -> str:
        if type(value) is int:
            return int.__repr__(value)
        text = str.__str__(value) if isinstance(value, str) else "?"
        text = "".join(c if c in self._ALLOWED else "?" for c in text[:80])
        return text or "-"

    def _line(self, status: str, **fields: object) -> bytes:
        parts = [self._secret, status] + [f"{key}={self._clean(value)}"
                                          for key, value in fields.items()]
        return (" ".join(parts) + "\n").encode("ascii")

    def send(self, status: str, **fields: object) -> None:
        """Write one line; raises OSError when the parent cannot be told."""
        line = (self._passed if status == "passed" and not fields else
                self._memory if status == "memory" and not fields else self._line(status, **fields))
        view = memoryview(line)
        while view:
            view = view[self._write(self._fd, view):]

    def quietly(self, status: str, **fields: object) -> None:
        try:
            self.send(status, **fields)
        except BaseException:  # the outcome is then "no verdict", never a pass
            pass


_BUILTIN_EXCEPTIONS = {}
"""Filled by ``main`` before the code runs: name -> class of every built-in exception."""


def _exception_name(err: BaseException) -> str:
    """The class name of ``err`` when it is a built-in exception, else ``*`` (the code's own class,
    whose name it chose)."""
    cls = type(err)
    name = type.__dict__["__name__"].__get__(cls)  # not a metaclass's __name__ of its own
    return name if _BUILTIN_EXCEPTIONS.get(name) is cls else "*"


def _where(err: BaseException, filenames: tuple[str, ...]) -> tuple[str, int | None]:
    """(file, line) of the innermost frame of ``err`` in one of ``filenames`` (for a syntax error
    in one of them, the line it names); ("-", None) when there is none."""
    tb = BaseException.__dict__["__traceback__"].__get__(err)
    found: tuple[str, int | None] = ("-", None)
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name in filenames:
            found = (name, tb.tb_lineno)
        tb = tb.tb_next
    if found[1] is None and isinstance(err, SyntaxError):
        name = SyntaxError.__dict__["filename"].__get__(err)
        value = SyntaxError.__dict__["lineno"].__get__(err)
        if type(name) is str and name in filenames and type(value) is int:
            found = (name, value)
    return found


# --- the roles --------------------------------------------------------------------------------------

def _run_program(spec: dict, verdict: _Verdict, channel: tuple | None) -> int:
    """Run ``spec["source"]`` as ``__main__``; the exit code that describes how it ended."""
    return _run_code([(spec["source"], "program.py")], verdict, lambda namespace: None)


def _run_code(steps: list, verdict: _Verdict, then) -> int:
    """Run each step in turn in one fresh ``__main__`` (a (source, filename) is compiled and run, a
    function is called with the namespace), then ``then(namespace)``; report how it ended.
    ``passed`` is written only when all of it returned."""
    filenames = tuple(step[1] for step in steps if isinstance(step, tuple))
    try:
        module = type(sys)("__main__")
        sys.modules["__main__"] = module
        for step in steps:
            if isinstance(step, tuple):
                exec(compile(step[0], step[1], "exec"), module.__dict__)
            else:
                step(module.__dict__)
        then(module.__dict__)
    except MemoryError:
        verdict.quietly("memory")
        _report("MemoryError")
        return MEMORY
    except SystemExit as stop:
        code = SystemExit.__dict__["code"].__get__(stop)
        verdict.quietly("exit", code=code if type(code) is int else "*")
        _report("the program called exit() before its end")
        return FAILED
    except _SolutionFailure as failure:
        verdict.quietly("failed", reason=failure.reason, exception=failure.exception,
                        line=failure.line if failure.line is not None else "-")
        _report(f"the solution failed: {failure.reason}")
        return FAILED
    except BaseException as err:
        try:
            filename, line = _where(err, filenames)
            verdict.quietly("failed", reason="raised", exception=_exception_name(err),
                            line=line if line is not None else "-", file=filename)
        except BaseException:
            verdict.quietly("failed", reason="raised", exception="*")
        try:
            sys.__excepthook__(type(err), err, err.__traceback__)
        except BaseException:
            _report("the program raised")
        return FAILED
    else:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        try:
            verdict.send("passed")
        except BaseException:
            return FAILED
        return PASSED


class _SolutionFailure(BaseException):
    """The solver did not answer a call properly (it ended, or sent something that is not plain
    data): a BaseException, so that a test's ``except Exception`` cannot swallow it."""

    def __init__(self, reason: str, exception: str = "-", line: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.exception, self.line = reason, exception, line


def _reply_value(reply: object, failures: list, raised: list) -> object:
    """The value of the solver's reply to one call; a built-in exception the solution raised is
    re-raised fresh (a test may expect it); anything else is recorded as a failure and raised."""
    if type(reply) is not dict or len(reply) != 1:
        failures.append(_SolutionFailure("unreadable"))
        raise failures[-1]
    (kind, value), = reply.items()
    if kind == "value":
        return value
    if kind == "raised" and type(value) is str:
        cls = _BUILTIN_EXCEPTIONS.get(value)
        if cls is not None and issubclass(cls, Exception):
            raised.append(cls())  # a test may expect it; nothing of the solution's making
            raise raised[-1]
        failures.append(_SolutionFailure("raised", value if cls is not None else "*"))
        raise failures[-1]
    if kind == "unsupported":
        failures.append(_SolutionFailure("unsupported"))
        raise failures[-1]
    failures.append(_SolutionFailure("unreadable"))
    raise failures[-1]


def _solver_ready(receive, verdict: _Verdict) -> bool:
    """Whether the solver loaded the solution and waits for calls; else the verdict says why."""
    try:
        ready = receive()
    except _SolutionFailure as failure:
        verdict.quietly("failed", reason=failure.reason, exception="-", line="-")
        return False
    if type(ready) is dict and ready.get("load") is not None:
        load = ready["load"]
        line = ready.get("line")
        verdict.quietly("failed", reason="load" if load != "missing" else "missing",
                        exception=load if type(load) is str and load in _BUILTIN_EXCEPTIONS
                        else "*",
                        line=line if type(line) is int else "-")
        return False
    if ready != {"ready": True}:
        verdict.quietly("failed", reason="unreadable", exception="-", line="-")
        return False
    return True


def _run_checker(spec: dict, verdict: _Verdict, channel: tuple) -> int:
    """Run the trusted ``context`` and ``tests``, then ``check(candidate)``; ``candidate`` calls
    the solver's function. Passed only when check returned and every call was answered."""
    requests, replies = channel
    failures: list[_SolutionFailure] = []
    raised: list[BaseException] = []  # exceptions the solution raised, re-raised here

    def receive() -> object:
        try:
            message = _read_message(replies)
            if message is None:
                raise _SolutionFailure("ended")
            return _decode_message(message)
        except _SolutionFailure as failure:
            failures.append(failure)
            raise
        except (ValueError, TypeError, RecursionError, MemoryError, OverflowError):
            failures.append(_SolutionFailure("unreadable"))
            raise failures[-1] from None

    def candidate(*args: object, **kwargs: object) -> object:
        if failures:
            raise failures[0]
        try:
            _write_message(requests, _encode([list(args), kwargs]))
        except OSError:
            failures.append(_SolutionFailure("ended"))
            raise failures[-1] from None
        return _reply_value(receive(), failures, raised)

    def after_tests(namespace: dict) -> None:
        check = namespace.get("check")
        if not callable(check):
            raise _SolutionFailure("no-check")
        try:
            check(candidate)
        except Exception as err:
            if any(err is mine for mine in raised):
                raise _SolutionFailure("raised", _exception_name(err)) from None
            raise
        if failures:
            raise failures[0]

    if not _solver_ready(receive, verdict):
        return FAILED

    def bind(namespace: dict) -> None:  # tests may call the function by its own name (HumanEval/33)
        namespace[spec["entry_point"]] = candidate

    return _run_code([(spec.get("context", ""), "context.py"), bind, (spec["tests"], "tests.py")],
                     verdict, after_tests)


def _run_solver(spec: dict, verdict: _Verdict, channel: tuple) -> int:
    """Run the untrusted ``solution``, tell the checker it is ready (or why not), then answer
    calls of ``entry_point`` until the checker closes its end."""
    requests, replies = channel
    entry = spec["entry_point"]
    namespace = None
    try:
        module = type(sys)("__main__")
        sys.modules["__main__"] = module
        exec(compile(spec["solution"], "solution.py", "exec"), module.__dict__)
        namespace = module.__dict__
        function = namespace.get(entry)
        if not callable(function):
            _write_message(replies, _encode({"load": "missing"}))
            verdict.quietly("failed", reason="missing")
            return FAILED
    except MemoryError:
        _quiet_write(replies, {"load": "MemoryError"})
        verdict.quietly("memory")
        return MEMORY
    except BaseException as err:
        name, (_, line) = _exception_name(err), _where(err, ("solution.py",))
        _quiet_write(replies, {"load": name, "line": line})
        verdict.quietly("failed", reason="load", exception=name,
                        line=line if line is not None else "-")
        return FAILED
    _write_message(replies, _encode({"ready": True}))
    while True:
        message = _read_message(requests)
        if message is None:
            verdict.quietly("served")
            return PASSED
        args, kwargs = _decode_message(message)
        try:
            result = function(*args, **kwargs)
        except BaseException as err:  # SystemExit included: it is an answer, not the end
            reply = {"raised": _exception_name(err)}
        else:
            try:
                reply = {"value": result}
                payload = _encode(reply)
            except (TypeError, ValueError, RecursionError):
                payload = _encode({"unsupported": True})
            _write_message(replies, payload)
            continue
        _write_message(replies, _encode(reply))


def _quiet_write(fd: int, value: object) -> None:
    try:
        _write_message(fd, _encode(value))
    except BaseException:
        pass


# --- plain data between checker and solver ----------------------------------------------------------

def _encode(value: object) -> bytes:
    """``value`` as tagged JSON: only None, bool, int, float, complex, str, bytes, list, tuple, dict,
    set and frozenset (subclasses as their base type: a namedtuple travels as a tuple), at most
    ``DEPTH_LIMIT`` deep. Raises TypeError for anything else."""
    import json

    def tag(item: object, depth: int) -> object:
        if depth > DEPTH_LIMIT:
            raise ValueError("nested too deeply")
        if item is None or item is True or item is False:
            return item
        if isinstance(item, bool):
            return bool(item)
        if isinstance(item, int):
            return {"i": hex(int.__index__(item))}
        if isinstance(item, float):
            return {"f": float.hex(item)}
        if isinstance(item, complex):
            return {"c": [float.hex(complex.__getattribute__(item, "real")),
                          float.hex(complex.__getattribute__(item, "imag"))]}
        if isinstance(item, str):
            return str.__str__(item)
        if isinstance(item, (bytes, bytearray)):
            return {"b": bytes(item).hex()}
        for kind, key in ((tuple, "t"), (list, "l"), (frozenset, "fs"), (set, "set")):
            if isinstance(item, kind):
                return {key: [tag(x, depth + 1) for x in kind.__iter__(item)]}
        if isinstance(item, dict):
            return {"d": [[tag(k, depth + 1), tag(v, depth + 1)] for k, v in dict.items(item)]}
        raise TypeError(f"{type(item).__name__} is not plain data")

    return json.dumps(tag(value, 0), ensure_ascii=True, allow_nan=False).encode("ascii")


def _decode_message(message: bytes) -> object:
    """The value of a message of :func:`_encode`, rebuilt from exact built-in types only; raises
    ValueError (or TypeError, RecursionError) for anything else."""
    import json

    def build(node: object, depth: int) -> object:
        if depth > DEPTH_LIMIT:
            raise ValueError("nested too deeply")
        if node is None or type(node) is bool or type(node) is str:
            return node
        if type(node) is not dict or len(node) != 1:
            raise ValueError("not plain data")
        (key, value), = node.items()
        if key == "i" and type(value) is str:
            return int(value, 16)
        if key == "f" and type(value) is str:
            return float.fromhex(value)
        if key == "c" and type(value) is list and len(value) == 2:
            return complex(float.fromhex(value[0]), float.fromhex(value[1]))
        if key == "b" and type(value) is str:
            return bytes.fromhex(value)
        if type(value) is not list:
            raise ValueError("not plain data")
        if key == "d":
            out = {}
            for pair in value:
                if type(pair) is not list or len(pair) != 2:
                    raise ValueError("not plain data")
                out[build(pair[0], depth + 1)] = build(pair[1], depth + 1)
            return out
        kinds = {"l": list, "t": tuple, "set": set, "fs": frozenset}
        if key not in kinds:
            raise ValueError("not plain data")
        return kinds[key](build(x, depth + 1) for x in value)

    return build(json.loads(message.decode("ascii")), 0)


def _write_message(fd: int, payload: bytes) -> None:
    import posix

    if len(payload) > MESSAGE_LIMIT:
        raise ValueError("message too large")
    view = memoryview(len(payload).to_bytes(4, "big") + payload)
    while view:
        view = view[posix.write(fd, view):]


def _read_message(fd: int) -> bytes | None:
    """The next message on ``fd``; None at its end (the other side closed or died)."""
    import posix

    def exactly(n: int) -> bytes | None:
        chunks, left = [], n
        while left:
            chunk = posix.read(fd, min(left, 1 << 20))
            if not chunk:
                return None
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    head = exactly(4)
    if head is None:
        return None
    size = int.from_bytes(head, "big")
    if size > MESSAGE_LIMIT:
        raise ValueError("message too large")
    return exactly(size)


# --- main -------------------------------------------------------------------------------------------

_ROLES = {"program": _run_program, "solver": _run_solver, "checker": _run_checker}


def _read_spec() -> dict:
    """The JSON object on stdin; stdin is then ``/dev/null``."""
    import json
    import posix

    chunks = []
    while True:
        chunk = posix.read(0, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    null = posix.open("/dev/null", posix.O_RDONLY)
    posix.dup2(null, 0)
    posix.close(null)
    spec = json.loads(b"".join(chunks).decode("utf-8"))
    if type(spec) is not dict or type(spec.get("secret")) is not str:
        raise ValueError("the sandbox's input is not a JSON object with a secret")
    return spec


def main(argv: list[str]) -> None:
    import builtins
    import posix

    exit_now = posix._exit
    try:
        role, root = argv[0], argv[1]
        memory_bytes, cpu_seconds, file_bytes = int(argv[2]), int(argv[3]), int(argv[4])
        kernel, verdict_fd = argv[5] == "1", int(argv[6])
        channel = (int(argv[7]), int(argv[8])) if role in ("solver", "checker") else None
        run = _ROLES[role]
        spec = _read_spec()
        verdict = _Verdict(verdict_fd, spec["secret"])
        _BUILTIN_EXCEPTIONS.update({name: value for name, value in vars(builtins).items()
                                    if isinstance(value, type) and issubclass(value, BaseException)})
        layers = _kernel_layers(root) if kernel else []
        if role == "checker" and not _not_dumpable() and sys.platform.startswith("linux"):
            raise OSError("cannot make the checker non-dumpable")
        posix.chdir(root)  # after the mounts: the working directory is the tmpfs when there is one
        _set_limits(memory_bytes, cpu_seconds, file_bytes)

        def report(event: str, reason: str) -> None:
            verdict.quietly("blocked", event=event, reason=reason or "-")

        install_audit_hook(root, report)
        verdict.send("started", layers=",".join(layers) or "-")
    except BaseException as err:  # the sandbox is not in place: the code must not run
        try:
            sys.stderr.write(f"sandbox setup failed: {type(err).__name__}: {err}\n")
            sys.stderr.flush()
        finally:
            exit_now(SETUP_ERROR)
    exit_now(run(spec, verdict, channel))


def _report(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
    except BaseException:
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
