"""Run a module as a job in its own process and report that process's own peak memory.

    python -m bench.job REPORT.json MODULE[:FUNCTION] [ARGS...]

runs `python -m MODULE ARGS...` in this process (via runpy), or calls MODULE.FUNCTION(ARGS) (a
command-line main taking its argument list), and writes {exit_code, seconds, cpu_s, peak_mb}
to REPORT.json. `run_job` starts it from a benchmark.

Why VmHWM and not getrusage: on Linux a process's ru_maxrss survives exec, so a job started by
a benchmark process that had grown to 2 GB reports at least 2 GB from getrusage(RUSAGE_SELF),
and the parent's getrusage(RUSAGE_CHILDREN) says the same (measured here). /proc/self/status
VmHWM is the peak resident set of the job's own address space, which exec starts afresh.
"""

from __future__ import annotations

import importlib
import json
import resource
import runpy
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def own_peak_mb() -> float:
    """Peak resident memory of this process since it exec'd (VmHWM), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    # no /proc (not Linux): the best there is, which may include the parent's peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_job(target: str, args: list[str]) -> dict:
    """Run MODULE[:FUNCTION] with args in a child process; its times and own peak memory."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        started = time.perf_counter()
        finished = subprocess.run(
            [sys.executable, "-m", "bench.job", str(report), target, *args],
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        if finished.returncode != 0 or not report.exists():
            raise RuntimeError(
                f"{target} failed ({finished.returncode}): {finished.stderr.strip()[-2000:]}"
            )
        result = json.loads(report.read_text())
    return {**result, "wall_s": round(seconds, 3), "stdout_tail": finished.stdout[-1500:]}


def main(argv: list[str]) -> int:
    report, target, *args = argv
    started = time.perf_counter()
    code = _run(target, args)
    usage = resource.getrusage(resource.RUSAGE_SELF)  # CPU time is this process's own
    result = {
        "exit_code": code,
        "seconds": round(time.perf_counter() - started, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_mb": round(own_peak_mb(), 1),
    }
    Path(report).write_text(json.dumps(result))
    return code


def _run(target: str, args: list[str]) -> int:
    module, _, function = target.partition(":")
    try:
        if function:
            returned = getattr(importlib.import_module(module), function)(args)
            return int(returned or 0)
        sys.argv = [module, *args]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
