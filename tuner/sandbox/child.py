"""The child side of :mod:`tuner.sandbox`: confine this process, then run the program.

Started by :func:`tuner.sandbox.run_python` as::

    python -I -S -B -X utf8 child.py WORKDIR MEMORY_BYTES CPU_SECONDS FILE_BYTES KERNEL

(``KERNEL``: ``1`` to apply the kernel layers of step 2, ``0`` to skip them.)

Standard library only, and nothing runs at import time (the parent imports this module for its exit
codes). ``main`` does, in order:

1. read ``WORKDIR/program.py``;
2. the kernel layers, each where the kernel permits it (Linux, CAP_SYS_ADMIN): a new network
   namespace (no interface but a loopback that is down); a new mount namespace in which every mount
   is read-only, nosuid and nodev, and WORKDIR is a fresh, size-limited, noexec tmpfs; then every
   capability is dropped, so that nothing later can undo the above;
3. resource limits (address space, CPU time, file size, open files, processes, no core files);
4. the audit hook (:func:`install_audit_hook`), which nothing can remove once it is installed;
5. the program, run as ``__main__``; the exit code tells the parent how it ended.

The first line written to stderr names the kernel layers that are active (``LAYERS_MARKER``).
"""

from __future__ import annotations

import sys

PASSED = 0
"""Exit code: the program ran to its end without raising."""
FAILED = 10
"""Exit code: the program raised (the traceback is on stderr) or called ``exit()``."""
MEMORY = 11
"""Exit code: the program raised ``MemoryError``."""
BLOCKED = 12
"""Exit code: the audit hook denied an action (``BLOCKED_MARKER`` + the action, on stderr)."""
SETUP_ERROR = 13
"""Exit code: the sandbox itself could not be set up."""

LAYERS_MARKER = "[sandbox] layers:"
BLOCKED_MARKER = "[sandbox] blocked:"

TMPFS_BYTES = 64 * 1024 * 1024
"""Size of the tmpfs that replaces the work directory when a mount namespace is available."""

# Linux constants (include/uapi/linux/{sched,mount,capability,prctl}.h); identical on x86-64 and arm64.
_CLONE_NEWNS, _CLONE_NEWNET = 0x00020000, 0x40000000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 0x2, 0x4, 0x8, 0x4000, 0x40000
_MOUNT_ATTR_RDONLY, _MOUNT_ATTR_NOSUID, _MOUNT_ATTR_NODEV = 0x1, 0x2, 0x4
_SYS_MOUNT_SETATTR, _AT_FDCWD, _AT_RECURSIVE = 442, -100, 0x8000
_PR_CAPBSET_DROP, _PR_SET_NO_NEW_PRIVS, _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 24, 38, 47, 4
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


def install_audit_hook(root: str) -> None:
    """Deny, for the rest of this process, what a test program has no business doing.

    ``root`` is the resolved work directory, which is also the working directory (``os.chdir`` is
    denied). Denied: creating processes, signalling other processes, sockets of any kind, ctypes,
    changing resource limits, subinterpreters, symlinks, ioctl; any file operation that writes
    (open for writing, mkdir, remove, rename, link, truncate, chmod, chown, utime, xattrs,
    rmtree, unpacking archives) to a path that does not resolve inside ``root``; opening a directory
    outside ``root`` (its descriptor would let relative paths escape); writing to a device. A denied
    action writes ``BLOCKED_MARKER`` and what was denied to stderr and ends the process at once with
    exit code ``BLOCKED``, so that no ``try`` in the program can hide it. Importing a denied module
    raises ``ModuleNotFoundError``, as if this Python had been built without it.

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

    def deny(what: str) -> None:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # a closed or replaced stream must not keep the process alive
            pass
        try:
            write(2, b"\n" + marker + b" " + what.encode("utf-8", "replace")[:300] + b"\n")
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
            deny(f"{event} {text!r} (outside the work directory)")

    def check_open(path: object, mode: object, flags: object) -> None:
        text = as_text(path)
        if text is None:
            return
        flags = flags if isinstance(flags, int) else 0
        writing = bool(flags & write_flags) or (isinstance(mode, str) and any(c in mode for c in "wax+"))
        if writing:
            resolved = resolve(text)
            if not inside(resolved):
                deny(f"open {text!r} for writing (outside the work directory)")
            if file_type(resolved) in (s_ifchr, s_ifblk):
                deny(f"open {text!r} for writing (a device)")
        elif flags & dir_flags or file_type(text) == s_ifdir:
            if not inside(resolve(text)):
                deny(f"open directory {text!r} (outside the work directory)")

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
        except Exception as err:  # a path we cannot judge is a path we do not allow
            deny(f"{event} (unverifiable path: {type(err).__name__})")

    _stub_fork_exec(deny)  # first: once the hook is in, importing _posixsubprocess is denied
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


# --- running the program ----------------------------------------------------------------------------

def main(argv: list[str]) -> None:
    import posix

    exit_now = posix._exit
    try:
        root, memory_bytes, cpu_seconds, file_bytes = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
        with open(root + "/program.py", "rb") as handle:
            source = handle.read()
        layers = _kernel_layers(root) if argv[4] == "1" else []
        posix.chdir(root)  # after the mounts: the working directory is the tmpfs when there is one
        if "read-only-filesystem" in layers:  # the tmpfs hides the parent's copy: keep one for tracebacks
            with open("program.py", "wb") as handle:
                handle.write(source)
        sys.stderr.write(f"{LAYERS_MARKER} {','.join(layers) or 'none'}\n")
        sys.stderr.flush()
        _set_limits(memory_bytes, cpu_seconds, file_bytes)
        install_audit_hook(root)
    except BaseException as err:  # the sandbox is not in place: the program must not run
        try:
            sys.stderr.write(f"sandbox setup failed: {type(err).__name__}: {err}\n")
            sys.stderr.flush()
        finally:
            exit_now(SETUP_ERROR)
    exit_now(_run(source))


def _run(source: bytes) -> int:
    """Run ``source`` as ``__main__``; the exit code that describes how it ended."""
    code = PASSED
    try:
        module = type(sys)("__main__")
        sys.modules["__main__"] = module
        exec(compile(source, "program.py", "exec"), module.__dict__)
    except MemoryError:
        code = MEMORY
        _report("MemoryError")
    except SystemExit as stop:
        code = FAILED
        _report(f"the program called exit({stop.code!r}) before its end")
    except BaseException as err:
        code = FAILED
        try:
            sys.__excepthook__(type(err), err, err.__traceback__)
        except BaseException:
            _report(type(err).__name__)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    return code


def _report(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
    except BaseException:
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
