"""Reading secrets: from a file named in the config, else from the environment — never from the
config itself (configs get pasted into tickets) nor the command line (visible in `ps`)."""

from __future__ import annotations

import os
import re
from pathlib import Path

REDIS_PASSWORD_ENV = "MAILSIFT_REDIS_PASSWORD"
# Where a URL starts: its scheme and the slashes after it (mistyped as one or none, too).
URL_START = re.compile(r"\b[a-z][a-z0-9+.-]*:(/*)", re.IGNORECASE)
QUOTES = "'\""


class SecretError(Exception):
    """The secret file named in the config cannot be read; the text names it and why."""


def read_secret(file: str, env: str, what: str) -> str | None:
    """The secret in `file` (stripped), or `$env` when no file is named; None when neither is set."""
    if file:
        try:
            return Path(file).read_text().strip() or None
        except OSError as exc:
            raise SecretError(f"{file}: cannot read the {what}: {exc.strerror}") from None
    return os.environ.get(env) or None


def masked_urls(text: str) -> str:
    """`text` with the password of each URL in it shown as ***. A Redis URL may still carry one
    (redis://:PASSWORD@host, as redis-py reads it), and a message quoting the URL, such as a
    config error, goes to the log, the terminal and the tickets pasted from them.

    The password is all between the user's colon (or, without a user, the slashes) and the
    URL's last @: a password may hold any sign, and those a URL parser stops at (a space, #,
    /, ?, @) left the rest of it in view ('redis://:pass word#@host' was shown whole). A URL
    quoted in the text (a config error's repr) runs to its closing quote, one that is not
    quoted to the next space; what follows an @ with neither slashes nor a colon before it
    (mailto:jane@example.org) is an address, not a password, and stays."""
    parts: list[str] = []
    done = 0
    for start in URL_START.finditer(text):
        if start.start() < done:
            continue
        end = _url_end(text, start.start(), start.end())
        userinfo, at, rest = text[start.end():end].rpartition("@")
        if not at or not (start.group(1) or ":" in userinfo):
            continue
        user = userinfo.partition(":")[0] + ":" if ":" in userinfo else ""
        parts += [text[done:start.end()], user, "***@", rest]
        done = end
    return "".join(parts) + text[done:]


def _url_end(text: str, start: int, after: int) -> int:
    """Where the URL that starts at `start` ends: at the quote that opened it (a repr escapes
    any inside it with a backslash), else at the first space or quote."""
    quote = text[start - 1] if start and text[start - 1] in QUOTES else ""
    at = after
    while at < len(text):
        char = text[at]
        if quote and char == "\\":
            at += 2
            continue
        if char == quote or (not quote and (char.isspace() or char in QUOTES)):
            return at
        at += 1
    return len(text)
