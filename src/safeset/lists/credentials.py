"""Credentials for the exchanges ``safeset lists fetch`` pulls from.

From, in order: the file given with ``--credentials``; the environment variable that
python-threatexchange itself reads (``TX_NCMEC_CREDENTIALS=user:password``,
``TX_STOPNCII_KEYS=fetch_function_key,subscription_key``, ``TX_ACCESS_TOKEN=token``); the file
``$XDG_CONFIG_HOME/safeset/credentials.toml`` (``~/.config/...``) if there is one. A file is
TOML, one table per exchange, keys as python-threatexchange names them:

```toml
[ncmec]
user = "..."
password = "..."

[stop_ncii]
fetch_function_key = "..."
subscription_key = "..."

[fb_threatexchange]
api_token = "..."
```

A credentials file that its group or others can read is refused: these keys open lists of
abuse hashes. python-threatexchange's own fallback files (``~/.tx_ncmec_credentials``...) are
never consulted, since it does not check their permissions: credentials are always passed to
its clients explicitly. Credentials are never printed.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from safeset.errors import SafesetError

HINTS = {
    "ncmec": ("TX_NCMEC_CREDENTIALS=user:password", "user and password"),
    "stop_ncii": (
        "TX_STOPNCII_KEYS=fetch_function_key,subscription_key",
        "fetch_function_key and subscription_key",
    ),
    "fb_threatexchange": ("TX_ACCESS_TOKEN=token", "api_token"),
}


def default_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "safeset" / "credentials.toml"


def _credential_cls(exchange: str) -> type:
    if exchange == "ncmec":
        from threatexchange.exchanges.impl.ncmec_api import NCMECCredentials

        return NCMECCredentials
    if exchange == "stop_ncii":
        from threatexchange.exchanges.impl.stop_ncii_api import StopNCIICredentials

        return StopNCIICredentials
    from threatexchange.exchanges.impl.fb_threatexchange_api import FBThreatExchangeCredentials

    return FBThreatExchangeCredentials


def load_credentials(exchange: str, path: Path | None) -> Any | None:
    """python-threatexchange credentials for ``exchange`` (None: it needs none)."""
    if exchange not in HINTS:
        return None
    cls = _credential_cls(exchange)
    if path is not None:
        return _from_file(exchange, cls, path, required=True)
    value = os.environ.get(cls.ENV_VARIABLE)
    if value:
        try:
            creds = cls._from_str(value)
        except ValueError:
            creds = None
        if creds is None or not creds._are_valid():
            raise SafesetError(f"{cls.ENV_VARIABLE} is malformed: expected {HINTS[exchange][0]}")
        return creds
    found = _from_file(exchange, cls, default_file(), required=False)
    if found is not None:
        return found
    env, keys = HINTS[exchange]
    raise SafesetError(
        f"no credentials for {exchange}: set {env}, or give --credentials FILE "
        f"(TOML, chmod 600) with [{exchange}] {keys}"
    )


def _from_file(exchange: str, cls: type, path: Path, *, required: bool) -> Any | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        if required:
            raise SafesetError(f"credentials file not found: {path}") from None
        return None
    except OSError as exc:
        raise SafesetError(f"cannot read credentials file {path}: {exc.strerror}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SafesetError(
            f"credentials file {path} is readable by others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); chmod 600 {path}"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SafesetError(f"cannot read credentials file {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        # The decoder's message quotes the file: never echo a credentials file.
        raise SafesetError(f"credentials file {path} is not valid TOML") from None
    table = data.get(exchange)
    if table is None:
        if required:
            raise SafesetError(f"credentials file {path} has no [{exchange}] table")
        return None
    known = {f.name for f in fields(cls)}
    if not isinstance(table, dict) or set(table) - known:
        raise SafesetError(
            f"credentials file {path}: [{exchange}] takes {', '.join(sorted(known))}"
        )
    try:
        creds = cls(**{k: str(v) for k, v in table.items()})
    except TypeError:
        needs = HINTS[exchange][1]
        raise SafesetError(f"credentials file {path}: [{exchange}] needs {needs}") from None
    if not creds._are_valid():
        raise SafesetError(f"credentials file {path}: [{exchange}] credentials are not valid")
    return creds
