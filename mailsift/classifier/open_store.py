"""Build the token store the configuration names: `sqlite:///PATH` or a Redis URL.

Secrets come from a file or the environment, never from the config itself, so the config can be
shared in tickets and version control without leaking the Redis password.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mailsift.classifier.filter import BayesFilter
from mailsift.classifier.redis_store import RedisStore
from mailsift.classifier.sqlite_store import SQLiteStore
from mailsift.classifier.store import StoreError, TokenStore
from mailsift.config import BayesConfig
from mailsift.domains import NO_SUBADDRESSES, Subaddressing
from mailsift.ownership import make_folders
from mailsift.redis_connect import settings_for
from mailsift.secrets import REDIS_PASSWORD_ENV, SecretError, read_secret

log = logging.getLogger(__name__)

DAY = 86400


def redis_password(config: BayesConfig) -> str | None:
    try:
        return read_secret(config.password_file, REDIS_PASSWORD_ENV, "Redis password")
    except SecretError as exc:
        raise StoreError(f"bayes.password_file: {exc}") from None


def open_store(config: BayesConfig, prefix: str | None = None) -> TokenStore:
    """The configured store, not yet connected; `prefix` overrides the key prefix (per-user Bayes)."""
    prefix = config.key_prefix if prefix is None else prefix
    path = config.sqlite_path
    if path is not None:
        make_folders(Path(path).parent)
        return SQLiteStore(path, prefix)
    settings = settings_for(config, config.store, redis_password(config),
                            connect_timeout=config.timeout, timeout=config.timeout)
    return RedisStore.from_settings(settings, prefix=prefix, token_ttl=config.token_ttl_days * DAY,
                                    hapax_ttl=config.hapax_ttl_days * DAY)


def unmade_sqlite(config: BayesConfig) -> str | None:
    """The path of the configured SQLite store when the file does not exist yet: it holds
    nothing learned, and commands that only look must not create it."""
    path = config.sqlite_path
    return path if path is not None and not Path(path).exists() else None


def existing_filter(config: BayesConfig, subaddressing: Subaddressing = NO_SUBADDRESSES
                    ) -> BayesFilter | None:
    """Bayes for read-only scoring (`mailsift check`): the configured store if there is one to read.

    A SQLite file that does not exist holds nothing learned, so none is created just to look; a
    store that cannot be reached costs one warning and the message is scored by rules alone, as
    in the milter. `subaddressing` (Config.subaddressing): a recipient's mail is scored with its
    store as the milter's workers score it (`check --rcpt jane+shop@...` with Jane's store).
    """
    if not config.enabled:
        return None
    if unmade_sqlite(config) is not None:
        return None
    try:
        return BayesFilter(config, open_store(config), subaddressing=subaddressing)
    except StoreError as exc:
        log.warning("Bayes store unavailable (%s); scoring with rules only", exc)
        return None
