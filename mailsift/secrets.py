"""Reading secrets: from a file named in the config, else from the environment — never from the
config itself (configs get pasted into tickets) nor the command line (visible in `ps`)."""

from __future__ import annotations

import os
import re
from pathlib import Path

REDIS_PASSWORD_ENV = "MAILSIFT_REDIS_PASSWORD"
# The password of a URL's user part (scheme://user:PASSWORD@host), slashes mistyped or not.
URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*:/*[^/:@\s'\"]*):[^/\s'\"]*@", re.IGNORECASE)


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
    config error, goes to the log, the terminal and the tickets pasted from them."""
    return URL_PASSWORD.sub(r"\1:***@", text)
