"""Helpers shared by the tests: repository paths, the real data, running Snakemake."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Small real recordings shared by all developers and CI (see its README.md).
REAL_DATA = REPO.parent / "shared" / "data" / "real"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

#: The body of the process that runs every :func:`run_snakemake` call: it imports Snakemake's
#: command line once (about half of a dry run's CPU time), then per request (a JSON line on
#: stdin: argv, cwd, env, output file) forks a child that is the `snakemake` command: its own
#: session (process group), working directory and environment, stdout and stderr into the
#: output file, stdin from /dev/null, exit status that of the command line. It answers the
#: child's pid, then its exit status (JSON lines on stdout).
_FORKING_SNAKEMAKE = r"""
import atexit, json, os, sys, traceback
from snakemake.cli import main
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setsid()
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            null, output = os.open(os.devnull, os.O_RDONLY), os.open(request["output"], os.O_WRONLY | os.O_APPEND)
            os.dup2(null, 0), os.dup2(output, 1), os.dup2(output, 2)
            sys.argv = ["snakemake", *request["argv"]]
            main(request["argv"])
            code = 0
        except SystemExit as exit:  # as the interpreter: an int is the status, None 0, else printed and 1
            code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
            if exit.code is not None and not isinstance(exit.code, int):
                print(exit.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
        finally:
            atexit._run_exitfuncs()  # what snakemake registered, as at the end of its own process
            sys.stdout.flush(), sys.stderr.flush()
            os._exit(code)
    print(json.dumps({"pid": pid}), flush=True)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), flush=True)
"""


class _SnakemakeForker:
    """The :data:`_FORKING_SNAKEMAKE` process of this test session (started on first use,
    with PYTHONHASHSEED=0 as every call's environment), one call at a time."""

    def __init__(self):
        self._process: subprocess.Popen | None = None
        self._unread = b""  # what the process wrote past the last answer line read
        self._lock = threading.Lock()

    def _started(self) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _FORKING_SNAKEMAKE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                bufsize=0, env={**os.environ, "PYTHONHASHSEED": "0"})
            self._unread = b""
            atexit.register(self._stop, self._process)
        return self._process

    @staticmethod
    def _stop(process: subprocess.Popen) -> None:
        process.stdin.close()  # ends its loop
        process.wait()

    def _answer(self, deadline: float | None) -> dict | None:
        """The process's next JSON line; None when ``deadline`` (time.monotonic) passes first."""
        stdout = self._process.stdout.fileno()
        while b"\n" not in self._unread:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([stdout], [], [], wait)[0]:
                return None
            chunk = os.read(stdout, 4096)
            if not chunk:
                raise RuntimeError(f"the forking snakemake process ended (exit status {self._process.wait()})")
            self._unread += chunk
        line, self._unread = self._unread.split(b"\n", 1)
        return json.loads(line)

    def run(self, argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[int, str]:
        """(exit status, stdout and stderr merged) of `snakemake *argv`; raises
        subprocess.TimeoutExpired (after killing the command's process group) past ``timeout`` s."""
        with self._lock, tempfile.NamedTemporaryFile("r", errors="replace", prefix="snakemake-", suffix=".out") as out:
            process = self._started()
            request = json.dumps({"argv": argv, "cwd": str(cwd), "env": env, "output": out.name}) + "\n"
            unwritten = request.encode()
            while unwritten:
                unwritten = unwritten[process.stdin.write(unwritten):]
            pid = self._answer(None)["pid"]
            finished = self._answer(time.monotonic() + timeout)
            if finished is None:
                with contextlib.suppress(ProcessLookupError):  # unless it ended meanwhile
                    os.killpg(pid, signal.SIGKILL)  # the command and the jobs it started
                self._answer(None)
                raise subprocess.TimeoutExpired([*SNAKEMAKE, *argv], timeout, output=out.read())
            return finished["returncode"], out.read()


_FORKER = _SnakemakeForker()


def run_snakemake(*args: str, workdir: Path | None = None, timeout: int = 900,
                  env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run snakemake on the repository's Snakefile from ``cwd`` (``env``: variables to set
    besides the current environment); returns the completed process (stdout and stderr
    merged into ``.stdout``). The command line is Snakemake's own (``snakemake.cli.main``), in
    a process forked from one that imported it once per test session (:data:`_FORKING_SNAKEMAKE`):
    each call saves the import, about half of a dry run's CPU time."""
    argv = ["--snakefile", str(REPO / "Snakefile")]
    if workdir is not None:
        argv += ["--directory", str(workdir)]
    argv += list(args)
    env = {**os.environ, "PYTHONHASHSEED": "0", **(env or {})}
    returncode, output = _FORKER.run(argv, cwd, env, timeout)
    return subprocess.CompletedProcess([*SNAKEMAKE, *argv], returncode, stdout=output)


def require_real_ibl_fixtures() -> Path:
    """The REAL IBL fixtures folder, or skip the test saying where it was looked for."""
    fixtures = REAL_DATA / "ibl_fixtures"
    if not fixtures.is_dir():
        pytest.skip(f"real IBL fixtures not found at {fixtures}")
    return fixtures


def modules_loaded_by(code: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` are in ``sys.modules`` after running ``code`` in a new interpreter
    (a job's start-up imports, issue 17)."""
    probe = f"import json, sys\n{code}\nprint('LOADED=' + json.dumps([m for m in {modules!r} if m in sys.modules]))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, timeout=600)
    assert result.returncode == 0, result.stdout
    return json.loads(result.stdout.rsplit("LOADED=", 1)[1])
