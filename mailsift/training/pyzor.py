"""Passing reports on to Pyzor, the shared spam-digest network many SpamAssassin sites use.

Our own digests are shared between our own hosts; Pyzor shares with everyone. It is optional
(`bayes.pyzor`) and best-effort: a missing command or an unreachable server is reported in the
learn summary, never a reason to fail the learning itself.
"""

from __future__ import annotations

import shutil
import subprocess

COMMANDS = {"report": "report", "revoke": "whitelist"}
TIMEOUT_S = 20


def tell_pyzor(mode: str, messages: list[bytes]) -> str:
    """Run `pyzor report|whitelist` on each message; one summary line."""
    command = shutil.which("pyzor")
    if command is None:
        return "Pyzor: not told (the pyzor command is not installed)"
    told, failed = 0, 0
    for raw in messages:
        try:
            done = subprocess.run([command, COMMANDS[mode]], input=raw, capture_output=True,
                                  timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            failed += 1
            continue
        told += done.returncode == 0
        failed += done.returncode != 0
    line = f"Pyzor: {COMMANDS[mode]} sent for {told} message(s)"
    return line + (f", {failed} failed" if failed else "")
