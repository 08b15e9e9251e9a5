"""Run untrusted Python (model-written code with its unit tests) in confined child processes.

    from tuner.sandbox import run_python, run_tests
    result = run_python(program, timeout_s=10, memory_mb=1024)            # a SandboxResult
    result = run_tests(solution, tests, "entry_point", context=prompt)     # the checks apart

:mod:`tuner.sandbox.runner` starts the children and reads their verdicts (what the sandbox
guarantees, with and without the kernel layers, and what not, is in its docstring);
:mod:`tuner.sandbox.child` is the child: standard library only, it confines itself and then runs
the program, the solution (solver) or the tests (checker).
"""

from __future__ import annotations

from .runner import FILE_LIMIT_BYTES, STATUSES, SandboxResult, run_python, run_tests

__all__ = ["SandboxResult", "STATUSES", "FILE_LIMIT_BYTES", "run_python", "run_tests"]
