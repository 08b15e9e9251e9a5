"""Run untrusted Python (model-written code with its unit tests) in a confined child process.

    from tuner.sandbox import run_python
    result = run_python(program, timeout_s=10, memory_mb=1024)   # a SandboxResult

:mod:`tuner.sandbox.runner` starts the child and reads how it ended (what the sandbox protects
against, and what not, is in its docstring); :mod:`tuner.sandbox.child` is the child: standard
library only, it confines itself and then runs the program.
"""

from __future__ import annotations

from .runner import FILE_LIMIT_BYTES, STATUSES, SandboxResult, run_python

__all__ = ["SandboxResult", "STATUSES", "FILE_LIMIT_BYTES", "run_python"]
