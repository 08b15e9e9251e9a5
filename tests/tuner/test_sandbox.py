"""The sandbox of model-written code: limits, the audit hook, the kernel layers, cleanup.

Hostile programs run twice: with the kernel layers (where the kernel permits them) and without,
i.e. with the audit hook and the resource limits alone, which is what every machine gets.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tuner.sandbox import STATUSES, SandboxResult, child, run_python

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
    ("assert 1 + 1 == 3, 'arithmetic'\n", "AssertionError: arithmetic"),
    ("def f(:\n", "SyntaxError"),
    ("print(input())\n", "EOFError"),                                    # stdin is closed
    ("import sys\nsys.exit(0)\nassert False\n", "called exit(0) before its end"),
    ("import ctypes\n", "No module named 'ctypes'"),
])
def test_failures_name_their_cause(program, detail):
    result = run(program)
    assert result.status == "failed"
    assert detail in result.detail


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
        assert str(target) in result.detail
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


def test_the_work_directory_is_removed_afterwards():
    result = run("import os\nopen('left.txt', 'w').write('x')\nraise RuntimeError(os.getcwd())\n")
    workdir = re.search(r"RuntimeError: (\S+)", result.detail).group(1)
    assert Path(workdir).name.startswith("tuner-sandbox-")
    assert not Path(workdir).exists()


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
