"""`mailsift ARGS` as a child process forked from one that has already imported mailsift.

Why: a test that drives `mailsift learn` or `eval` runs the command ten times or more, and a
fresh interpreter spends most of each run importing (pydantic, dnspython, click, the public
suffix list): over 400 such runs cost the suite minutes. The stdlib's forkserver imports mailsift
once; each run is then a process of its own forked from it, with its own arguments, environment
and standard streams on real file descriptors, ending through `mailsift.cli.main` as the console
script does. What a test sees is what a subprocess gives: exit status, stdout and stderr.

The entry point itself (`python -m mailsift`, the `mailsift` script) is still run as a fresh
interpreter by the milter, check, readme and CLI-option tests.
"""

from __future__ import annotations

import atexit
import io
import multiprocessing
import os
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Mapping
from pathlib import Path

_FORKSERVER = multiprocessing.get_context("forkserver")
# What the commands the tests drive import; whatever fails to import is left to the child.
_FORKSERVER.set_forkserver_preload(["mailsift.cli", "mailsift.training.commands",
                                    "mailsift.scanner", "mailsift.network.identities"])


def run_mailsift(args: list[str], *, stdin: bytes = b"", env: Mapping[str, str] | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `mailsift *args` to its end and return what `subprocess.run(..., text=True)` would:
    the environment is this process's with `env` on top, as for a subprocess."""
    with tempfile.TemporaryDirectory(prefix="mailsift-cli-") as directory:
        streams = Path(directory)
        (streams / "stdin").write_bytes(stdin)
        child = _FORKSERVER.Process(target=_child, args=(args, {**os.environ, **(env or {})},
                                                         directory, os.getcwd()))
        child.start()
        child.join(timeout)
        if child.is_alive():
            child.kill()
            child.join()
            raise subprocess.TimeoutExpired(["mailsift", *args], timeout)
        return subprocess.CompletedProcess(
            ["mailsift", *args], child.exitcode if child.exitcode is not None else -1,
            _text(streams / "stdout"), _text(streams / "stderr"))


def _text(path: Path) -> str:
    """A stream as `text=True` decodes it (the locale's encoding, UTF-8 here)."""
    return path.read_bytes().decode() if path.exists() else ""


def _child(args: list[str], env: dict[str, str], directory: str, cwd: str) -> None:
    """In the forked process: take the run's environment and streams, run the command, end."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    for fd, name, flags in ((0, "stdin", os.O_RDONLY),
                            (1, "stdout", os.O_WRONLY | os.O_CREAT),
                            (2, "stderr", os.O_WRONLY | os.O_CREAT)):
        opened = os.open(os.path.join(directory, name), flags, 0o600)
        os.dup2(opened, fd)
        os.close(opened)
    # Text streams over the new descriptors with the encoding and error handling the
    # interpreter gave its own, so output is encoded as a fresh `mailsift` would encode it.
    sys.stdin = _stream(0, "r", sys.__stdin__)
    sys.stdout = _stream(1, "w", sys.__stdout__)
    sys.stderr = _stream(2, "w", sys.__stderr__)
    sys.argv = ["mailsift", *args]
    code = 0
    try:
        from mailsift.cli import main

        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    except BaseException:  # what the interpreter prints and exits with for an uncaught one
        traceback.print_exc()
        code = 1
    finally:
        atexit._run_exitfuncs()  # the interpreter's own exit would run them
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _stream(fd: int, mode: str, like: io.TextIOWrapper | None) -> io.TextIOWrapper:
    binary = open(fd, mode + "b", closefd=False)  # noqa: SIM115 - it is the stream for the run
    encoding = like.encoding if like is not None else "utf-8"
    errors = like.errors if like is not None else "strict"
    return io.TextIOWrapper(binary, encoding=encoding, errors=errors,  # type: ignore[arg-type]
                            write_through=mode == "w")
