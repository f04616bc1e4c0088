"""``safeset lists fetch``: a hash list pulled from an exchange, kept up to date incrementally.

Programmes deliver lists through APIs that Meta's python-threatexchange already speaks (NCMEC's
hash API, StopNCII, ThreatExchange, and its local-file exchange for lists on disk); safeset uses
those clients as they are (the ``exchanges`` extra) rather than its own.

The folder written is a saved list (``--list FOLDER``, ``lists info FOLDER``) with, beside it,
``fetch/state.json`` (the exchange's checkpoint and its records, in python-threatexchange's own
JSON form for them: never a pickle, so a folder someone hands you cannot run code) and
``fetch/entries.csv`` (the usable entries, in the ThreatExchange CSV form the saved list was
built from; match entry numbers are its lines).
A rerun hands the stored checkpoint back to the client, so only what changed since is fetched,
then merges the changes with the client's own merge rule. Everything is written with 0600
permissions in a 0700 folder; no entry is ever printed or logged (the clients' own logging is
silenced during a fetch, since some of it logs a malformed hash's value).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from safeset.errors import SafesetError
from safeset.lists.credentials import load_credentials
from safeset.lists.hashlist import ListSpec, load_list
from safeset.lists.parse import looks_like_type_name
from safeset.lists.saved import is_saved_list, save_list
from safeset.signals import lookup

EXCHANGES = ("local_file", "ncmec", "stop_ncii", "fb_threatexchange")
STATE_FORMAT = "safeset-fetch-state"
STATE_VERSION = 1
CSV_HEADER = ["signal_type", "signal_str", "collab", "category", "tags"]


@dataclass(frozen=True)
class FetchRequest:
    exchange: str
    out: Path
    name: str | None = None  # the list's name (default: the folder's name)
    file: Path | None = None  # local_file: the signal file
    signal_type: str | None = None  # local_file: the type of a file of bare signals
    environment: str | None = None  # ncmec: which database (Industry, NGO, ...)
    privacy_group: int | None = None  # fb_threatexchange: the collaboration's id
    credentials: Path | None = None
    quiet: bool = False


@dataclass(frozen=True)
class FetchResult:
    name: str
    updates: int  # records the exchange sent this time
    added: int
    removed: int
    counts: dict[str, int]
    skipped: dict[str, int]
    changed: bool
    incremental: bool  # a stored checkpoint was handed back to the client


def _require_threatexchange() -> None:
    try:
        import threatexchange  # noqa: F401
    except ImportError:
        raise SafesetError(
            "lists fetch needs python-threatexchange: pip install 'safeset[exchanges]'"
        ) from None


def _collab_and_api(req: FetchRequest, name: str) -> tuple[Any, type]:
    """The python-threatexchange collaboration config and API class the request names."""
    if req.exchange == "local_file":
        from threatexchange.exchanges.impl.file_api import (
            FileCollaborationConfig,
            LocalFileSignalExchangeAPI,
        )

        if req.file is None:
            raise SafesetError("lists fetch local_file needs --file PATH (the signal file)")
        if not req.file.is_file():
            raise SafesetError(f"signal file not found: {req.file}")
        collab = FileCollaborationConfig(
            name=name,
            api=LocalFileSignalExchangeAPI.get_name(),
            filename=str(req.file.resolve()),
            signal_type=req.signal_type,
        )
        return collab, LocalFileSignalExchangeAPI
    if req.exchange == "ncmec":
        from threatexchange.exchanges.clients.ncmec.hash_api import NCMECEnvironment
        from threatexchange.exchanges.impl.ncmec_api import (
            NCMECCollabConfig,
            NCMECSignalExchangeAPI,
        )

        known = [e.name for e in NCMECEnvironment]
        if req.environment not in known:
            raise SafesetError(f"lists fetch ncmec needs --environment ({', '.join(known)})")
        env = NCMECEnvironment[req.environment]
        return NCMECCollabConfig(name=name, environment=env), NCMECSignalExchangeAPI
    if req.exchange == "stop_ncii":
        from threatexchange.exchanges.collab_config import CollaborationConfigBase
        from threatexchange.exchanges.impl.stop_ncii_api import StopNCIISignalExchangeAPI

        api_name = StopNCIISignalExchangeAPI.get_name()
        return CollaborationConfigBase(name, api_name, True), StopNCIISignalExchangeAPI
    if req.exchange == "fb_threatexchange":
        from threatexchange.exchanges.impl.fb_threatexchange_api import (
            FBThreatExchangeCollabConfig,
            FBThreatExchangeSignalExchangeAPI,
        )

        if req.privacy_group is None:
            raise SafesetError("lists fetch fb_threatexchange needs --privacy-group ID")
        collab = FBThreatExchangeCollabConfig(name=name, privacy_group=req.privacy_group)
        return collab, FBThreatExchangeSignalExchangeAPI
    raise SafesetError(f"unknown exchange {req.exchange!r} (known: {', '.join(EXCHANGES)})")


def _signal_types() -> list[type]:
    """python-threatexchange's signal types, as its CLI installs them by default."""
    from threatexchange.signal_type import md5, raw_text, sha256, trend_query, url, url_md5
    from threatexchange.signal_type.pdq.signal import PdqSignal

    return [
        PdqSignal,
        md5.VideoMD5Signal,
        sha256.VideoSHA256Signal,
        raw_text.RawTextSignal,
        url.URLSignal,
        url_md5.UrlMD5Signal,
        trend_query.TrendQuerySignal,
    ]


@contextmanager
def _private_and_silent() -> Iterator[None]:
    """Files created only readable by their owner; the clients' logging off (it may hold
    entries: python-threatexchange logs a malformed hash's value)."""
    old_umask = os.umask(0o077)
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)
        os.umask(old_umask)


def run_fetch(req: FetchRequest) -> FetchResult:
    _require_threatexchange()
    if req.exchange not in EXCHANGES:
        raise SafesetError(f"unknown exchange {req.exchange!r} (known: {', '.join(EXCHANGES)})")
    out = req.out
    _recover_swap(out)
    name = req.name or out.name
    collab, api_cls = _collab_and_api(req, name)
    state = _load_state(out, req.exchange, collab, api_cls)
    credentials = load_credentials(req.exchange, req.credentials)
    with _private_and_silent():
        try:
            api = (
                api_cls.for_collab(collab, credentials)
                if credentials is not None
                else api_cls.for_collab(collab)
            )
        except Exception as exc:  # a client refusing its credentials, say
            raise SafesetError(_fetch_failure(req.exchange, exc)) from None
        checkpoint = state["checkpoint"] if state else None
        records: dict[Any, Any] = dict(state["records"]) if state else {}
        if checkpoint is not None and checkpoint.is_stale():
            checkpoint, records = None, {}  # the exchange says: start again from scratch
        incremental = checkpoint is not None
        before = set(records)
        updates = 0
        with _progress(req.exchange, req.quiet) as advance:
            try:
                for delta in api.fetch_iter(_signal_types(), checkpoint):
                    api_cls.naive_fetch_merge(records, delta.updates)
                    checkpoint = delta.checkpoint
                    updates += len(delta.updates)
                    advance(len(delta.updates))
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                raise SafesetError(_fetch_failure(req.exchange, exc)) from None
        rows, skipped = _rows(req.exchange, collab, records)
        text = _csv_text(rows)
        previous = _previous_meta(out)
        changed = previous is None or previous.get("sha256") != _sha256(text)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        fetched = {
            "exchange": req.exchange,
            "collab": collab.name,
            "fetched_at": now,
            "first_fetched_at": (previous or {}).get("fetched", {}).get("first_fetched_at", now),
            "checkpoint_time": _checkpoint_time(checkpoint),
            "updates_last_fetch": updates,
            "fetches": (previous or {}).get("fetched", {}).get("fetches", 0) + 1,
        }
        new_state = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "exchange": req.exchange,
            "collab": collab,
            "checkpoint": checkpoint,
            "records": records,
        }
        meta = _write(out, name, text, skipped, fetched, new_state, rebuild=changed)
    after = set(records)
    return FetchResult(
        name=name,
        updates=updates,
        added=len(after - before),
        removed=len(before - after),
        counts=meta["entries"],
        skipped=meta.get("skipped", {}),
        changed=changed,
        incremental=incremental,
    )


def _fetch_failure(exchange: str, exc: Exception) -> str:
    """One line for a failed fetch; the exception's text only where it cannot hold an entry."""
    from threatexchange.exchanges.auth import (
        SignalExchangeAPIInvalidAuthException,
        SignalExchangeAPIMissingAuthException,
    )

    if isinstance(exc, SignalExchangeAPIInvalidAuthException):
        return f"{exchange}: credentials refused: {exc.message}"
    if isinstance(exc, SignalExchangeAPIMissingAuthException):
        return f"{exchange}: no credentials (see safeset lists fetch --help)"
    if isinstance(exc, OSError):
        return f"{exchange}: fetch failed: {exc.strerror or type(exc).__name__}"
    return f"{exchange}: fetch failed ({type(exc).__name__}); rerun to resume from the checkpoint"


@contextmanager
def _progress(exchange: str, quiet: bool) -> Iterator[Any]:
    if quiet:
        yield lambda n: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from safeset.progress import stderr

    progress = Progress(
        SpinnerColumn(),
        TextColumn(f"[bold]fetching from {exchange}"),
        TextColumn("{task.completed:,} records"),
        TimeElapsedColumn(),
        console=stderr,
    )
    with progress:
        task = progress.add_task("fetch", total=None)
        yield lambda n: progress.update(task, advance=n)


def _rows(exchange: str, collab: Any, records: dict[Any, Any]) -> tuple[list[list[str]], Counter]:
    """The usable entries as ThreatExchange CSV rows (sorted, so the same records always give
    the same file), and the others counted by why they were left out."""
    skipped: Counter[str] = Counter()
    rows: list[list[str]] = []
    if exchange == "ncmec":
        items = _ncmec_items(collab, records, skipped)
    elif exchange == "fb_threatexchange":
        items = _threatexchange_items(collab, records)
    else:  # exchanges with simple updates: (signal type name, signal) -> metadata
        items = (
            (type_name, value, _opinion(meta))
            for (type_name, value), meta in records.items()
            if meta is not None
        )
    for type_name, value, (category, tags) in items:
        signal_type = lookup(type_name)
        if signal_type is None:
            named = type_name if looks_like_type_name(type_name) else "(unnamed)"
            skipped[f"unsupported type {named}"] += 1
            continue
        try:
            signal_type.parse(value.strip().lower())
        except ValueError:
            skipped[f"malformed {signal_type.name} value"] += 1
            continue
        rows.append([signal_type.name, value.strip().lower(), collab.name, category, tags])
    rows.sort()
    return rows, skipped


def _opinion(meta: Any) -> tuple[str, str]:
    agg = meta.get_as_aggregate_opinion()
    return agg.category.name, " ".join(sorted(agg.tags))


def _ncmec_items(collab: Any, records: dict[Any, Any], skipped: Counter) -> Iterator[tuple]:
    """NCMEC entries are (entry id -> fingerprints); image MD5s and PDQs are what safeset uses
    (python-threatexchange maps only video MD5s, so the mapping is here)."""
    names = {"md5": "md5", "pdq": "pdq", "pdna": "photodna", "sha1": "sha1", "sha256": "sha256"}
    for entry in records.values():
        if entry.deleted:
            continue
        if collab.only_esp_ids and entry.member_id not in collab.only_esp_ids:
            continue
        tags = entry.classification or ""
        for kind, value in entry.fingerprints.items():
            if entry.entry_type.value != "image":
                skipped[f"unsupported type {entry.entry_type.value}_{kind.lower()}"] += 1
                continue
            yield names.get(kind.lower(), kind.lower()), value, ("POSITIVE_CLASS", tags)


def _threatexchange_items(collab: Any, records: dict[Any, Any]) -> Iterator[tuple]:
    """ThreatExchange keys records by its own indicator types (HASH_PDQ...) and tags; its
    client maps them to signal types (logging silenced by the caller: it logs bad values)."""
    from threatexchange.exchanges.impl.fb_threatexchange_api import (
        FBThreatExchangeSignalExchangeAPI,
    )

    converted = FBThreatExchangeSignalExchangeAPI.naive_convert_to_signal_type(
        _signal_types(), collab, records
    )
    for signal_type, by_value in converted.items():
        for value, meta in by_value.items():
            yield signal_type.get_name(), value, _opinion(meta)


def _csv_text(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(rows)
    return buf.getvalue()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _checkpoint_time(checkpoint: Any) -> str | None:
    ts = checkpoint.get_progress_timestamp() if checkpoint is not None else None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else None


# --- the folder --------------------------------------------------------------------------------


def _state_path(out: Path) -> Path:
    return out / "fetch" / "state.json"


def _previous_meta(out: Path) -> dict[str, Any] | None:
    if not (out / "meta.json").is_file():
        return None
    return json.loads((out / "meta.json").read_text())


def _json_safe(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"cannot store {type(value).__name__} in the fetch state")


def _plain(obj: Any) -> Any:
    """A python-threatexchange dataclass as JSON-ready data."""
    return json.loads(json.dumps(asdict(obj), default=_json_safe))


def _record_cls(exchange: str, api_cls: type) -> type:
    """The class of the records an exchange's client merges (what fetch_iter yields)."""
    if exchange == "ncmec":
        from threatexchange.exchanges.clients.ncmec.hash_api import NCMECEntryUpdate

        return NCMECEntryUpdate
    return api_cls.get_record_cls()


def _state_bytes(state: dict[str, Any]) -> bytes:
    checkpoint = state["checkpoint"]
    data = {
        "format": STATE_FORMAT,
        "version": STATE_VERSION,
        "exchange": state["exchange"],
        "collab": _plain(state["collab"]),
        "checkpoint": None if checkpoint is None else _plain(checkpoint),
        "records": [
            [list(key) if isinstance(key, tuple) else key, _plain(value)]
            for key, value in state["records"].items()
        ],
    }
    return json.dumps(data, default=_json_safe).encode()


def _load_state(out: Path, exchange: str, collab: Any, api_cls: type) -> dict[str, Any] | None:
    """The stored state of an earlier fetch into ``out``, or None for a first fetch."""
    from threatexchange.utils.dataclass_json import dataclass_load_dict

    if not out.exists():
        return None
    path = _state_path(out)
    if not path.is_file():
        raise SafesetError(f"{out} exists and is not a fetched list; choose a new folder")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise SafesetError(f"{out}: unreadable fetch state; fetch into a new folder") from None
    if data.get("format") != STATE_FORMAT or data.get("version") != STATE_VERSION:
        raise SafesetError(f"{out}: fetch state of another safeset version; use a new folder")
    if data["exchange"] != exchange or data["collab"] != _plain(collab):
        raise SafesetError(
            f"{out} was fetched from another exchange or collaboration "
            f"({data['exchange']}); choose a new folder"
        )
    record_cls = _record_cls(exchange, api_cls)
    try:
        checkpoint = data["checkpoint"]
        return {
            "checkpoint": None
            if checkpoint is None
            else dataclass_load_dict(checkpoint, api_cls.get_checkpoint_cls()),
            "records": {
                (tuple(key) if isinstance(key, list) else key): dataclass_load_dict(
                    value, record_cls
                )
                for key, value in data["records"]
            },
        }
    except Exception:  # dacite's errors: a damaged or hand-edited file
        raise SafesetError(f"{out}: damaged fetch state; fetch into a new folder") from None


def _write(
    out: Path,
    name: str,
    text: str,
    skipped: Counter,
    fetched: dict[str, Any],
    state: dict[str, Any],
    *,
    rebuild: bool,
) -> dict[str, Any]:
    """Write the folder (a saved list plus fetch state), replacing an earlier one whole."""
    if not rebuild:  # same entries: the saved list stands; only state and meta move on
        _write_private(_state_path(out), _state_bytes(state))
        meta = json.loads((out / "meta.json").read_text())
        meta["fetched"] = fetched
        _write_private(out / "meta.json", json.dumps(meta, indent=2, sort_keys=True).encode())
        return meta
    staging = out.with_name(f".{out.name}.fetch-new")
    shutil.rmtree(staging, ignore_errors=True)
    work = out.with_name(f".{out.name}.fetch-work")
    shutil.rmtree(work, ignore_errors=True)
    try:
        work.mkdir(mode=0o700, parents=True)
        entries = work / "entries.csv"
        _write_private(entries, text.encode())
        hl = load_list(ListSpec(path=entries, name=name)) if _has_rows(text) else None
        if hl is None:
            raise SafesetError(
                f"the exchange returned no usable hashes for {name} "
                f"({sum(skipped.values())} entries left out: {_describe(skipped)})"
            )
        hl.skipped.update(skipped)
        save_list(replace(hl, path=out / "fetch" / "entries.csv"), staging)
        (staging / "fetch").mkdir(mode=0o700)
        os.replace(entries, staging / "fetch" / "entries.csv")
        _write_private(_state_path(staging), _state_bytes(state))
        meta = json.loads((staging / "meta.json").read_text())
        meta["fetched"] = fetched
        _write_private(staging / "meta.json", json.dumps(meta, indent=2, sort_keys=True).encode())
        _make_private(staging)
        _swap(staging, out)
        return meta
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)


def _has_rows(text: str) -> bool:
    return text.count("\n") > 1


def _describe(skipped: Counter) -> str:
    return ", ".join(f"{k} ({n})" for k, n in sorted(skipped.items())) or "none"


def _write_private(path: Path, data: bytes) -> None:
    """``data`` at ``path``, readable by its owner only, replaced whole (never half-written)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _make_private(folder: Path) -> None:
    os.chmod(folder, 0o700)
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            os.chmod(Path(root) / d, 0o700)
        for f in files:
            os.chmod(Path(root) / f, 0o600)


def _swap(new: Path, out: Path) -> None:
    """Put ``new`` where ``out`` is; a crash in between leaves ``.NAME.fetch-old`` behind,
    which the next fetch puts back (see _recover_swap)."""
    if not out.exists():
        os.replace(new, out)
        return
    old = out.with_name(f".{out.name}.fetch-old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(out, old)
    os.replace(new, out)
    shutil.rmtree(old, ignore_errors=True)


def _recover_swap(out: Path) -> None:
    old = out.with_name(f".{out.name}.fetch-old")
    if old.exists() and not out.exists():
        os.replace(old, out)
    if out.exists() and not is_saved_list(out) and _state_path(out).exists():
        raise SafesetError(f"{out}: damaged fetched list; fetch into a new folder")
