"""The audit's memory: one SQLite file (`--state`, default `.reviewer/audit.db`).

Everything a killed process would otherwise forget lives here, and every state
transition is one transaction, so a SIGKILL at any instant leaves either the
state before a transition or the state after it. WAL journal, `synchronous=FULL`.

Tables (see `MIGRATIONS`):

    runs          one audit of the repository: status, model, the cached prefix
                  as sent, estimate, and (once final) a summary kept after pruning
    run_files     every file of the walk: audited, or skipped with its reason
    run_chunks    (path, line range) -> content key, for every audited part of
                  every file: how findings fan out to copies and carry over
    requests      one per request of a run: custom_id, key, representative path
                  and lines, the chunk text and its definitions block (zlib),
                  attempt, state, usage, cost
    batches       one per batch: an intent row written *before* the create call,
                  then the API id; see `reviewer.audit.submit`
    submissions   (run, custom_id) primary key: the database itself refuses to
                  submit a custom_id twice in a run
    results       content key -> anchored findings of a valid answer; what later
                  runs carry over for unchanged chunks
    failures      content key -> the last failure of a part that is not transient
                  (quarantined answer, request the API rejected): later runs
                  leave the part out until its key changes or --retry-failed
    splits        content key -> the parts the API made it cut into (context
                  length): later runs plan those parts instead of the whole
    notes         things a report must say (rejected findings, adopted batches)
    identities    (run, path, fresh fingerprint) -> the fingerprint the run's
                  report gave that finding: a restated finding keeps the one it
                  inherited, so the next run inherits it in turn (see
                  `reviewer.audit.report`)

Request states:  planned -> submitting -> submitted -> succeeded | quarantined |
failed | canceled | split (re-chunked; its parts are new requests), and back to
planned (with a new custom_id) when a batch result is errored or expired.
Migrations are an ordered list of small functions (as in simonw/llm); the
`schema_version` table records which ran.

When the file cannot be used (issue 11, item 9), `StateError` (exit 2) names
the cause in one line: a read-only filesystem, a full disk, a lock held by
another process (with its pid), or a damaged file. Only a damaged file is
worth moving aside; the others hold a valid state.

Readers (`status`, `list`, `plan`) open the file with `mode=ro`, take no lock
and never write, so they work while a run holds the lock and on a read-only
filesystem. A WAL database needs its `-shm` file to be read; where that cannot
be created (a read-only folder) and no `-wal` file holds changes, the reader
opens it `immutable=1`: SQLite then reads the file alone, without locks, which
is right only because nothing can write it there. With a non-empty `-wal` it
would silently read an older state, so that case is refused with the reason.

Writers hold `<state>.lock` (flock) and keep a fixed-size record in it: their
pid, for the message another process shows, and the custom_ids of canary
answers that were paid for but could not be saved (see `reviewer.audit.submit`).
That record is rewritten in place, never grown, so it can be written when the
disk is full.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import StateError, UsageError
from ..models import Usage

RUN_STATUSES = ("active", "canceling", "completed", "canceled", "failed", "refused")
OPEN_BATCH = ("creating", "in_progress", "canceling", "ended")

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


def _script(db: sqlite3.Connection, sql: str) -> None:
    # Not executescript(): it commits first, which would split the migration's transaction.
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


@migration
def m001_initial(db: sqlite3.Connection) -> None:
    _script(db, """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL,
            reason TEXT,
            repo_dir TEXT NOT NULL,
            commit_sha TEXT,
            tree_key TEXT NOT NULL,
            model TEXT NOT NULL,
            prompt_version TEXT NOT NULL,
            context_digest TEXT NOT NULL,
            system_json TEXT NOT NULL,
            max_tokens INTEGER NOT NULL,
            canary INTEGER NOT NULL,
            canary_passed INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL,
            max_findings INTEGER NOT NULL,
            files INTEGER NOT NULL,
            skipped INTEGER NOT NULL,
            chunks INTEGER NOT NULL,
            carried INTEGER NOT NULL,
            deduplicated INTEGER NOT NULL,
            estimate_usd REAL,
            summary_json TEXT
        );
        CREATE TABLE run_files (
            run_id INTEGER NOT NULL,
            path TEXT NOT NULL,
            skip_reason TEXT,
            PRIMARY KEY (run_id, path)
        );
        CREATE TABLE run_chunks (
            run_id INTEGER NOT NULL,
            path TEXT NOT NULL,
            start_line INTEGER NOT NULL,
            end_line INTEGER NOT NULL,
            key TEXT NOT NULL,
            PRIMARY KEY (run_id, path, start_line)
        );
        CREATE INDEX run_chunks_key ON run_chunks (run_id, key);
        CREATE TABLE requests (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL,
            base_id TEXT NOT NULL,
            custom_id TEXT NOT NULL,
            key TEXT NOT NULL,
            path TEXT NOT NULL,
            start_line INTEGER NOT NULL,
            end_line INTEGER NOT NULL,
            total_lines INTEGER NOT NULL,
            tokens INTEGER NOT NULL,
            parent_id INTEGER,
            canary INTEGER NOT NULL DEFAULT 0,
            attempt INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL,
            batch_id INTEGER,
            reason TEXT,
            text BLOB,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cache_creation_input_tokens INTEGER NOT NULL DEFAULT 0,
            cache_read_input_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            unpriced INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL,
            UNIQUE (run_id, custom_id)
        );
        CREATE INDEX requests_state ON requests (run_id, state);
        CREATE INDEX requests_batch ON requests (batch_id, custom_id);
        CREATE TABLE batches (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL,
            api_id TEXT UNIQUE,
            state TEXT NOT NULL,
            request_count INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            intent_at TEXT NOT NULL,
            created_at TEXT,
            ended_at TEXT,
            adopted INTEGER NOT NULL DEFAULT 0,
            counts_json TEXT
        );
        CREATE TABLE submissions (
            run_id INTEGER NOT NULL,
            custom_id TEXT NOT NULL,
            request_id INTEGER NOT NULL,
            batch_id INTEGER NOT NULL,
            PRIMARY KEY (run_id, custom_id)
        );
        CREATE TABLE results (
            key TEXT PRIMARY KEY,
            run_id INTEGER NOT NULL,
            custom_id TEXT NOT NULL,
            findings_json TEXT NOT NULL,
            answered_at TEXT NOT NULL
        );
        CREATE TABLE notes (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL,
            text TEXT NOT NULL
        );
    """)


@migration
def m002_requests_by_key(db: sqlite3.Connection) -> None:
    # The report finds each part's request by its content key: without this,
    # one scan of the run's requests per part not audited.
    db.execute("CREATE INDEX requests_key ON requests (run_id, key)")


@migration
def m003_remembered_failures(db: sqlite3.Connection) -> None:
    # Without these, every night re-sent (and paid for) each part whose answer
    # had been invalid, and each part the API had found too long (issue 10).
    _script(db, """
        CREATE TABLE failures (
            key TEXT PRIMARY KEY,
            run_id INTEGER NOT NULL,
            custom_id TEXT NOT NULL,
            state TEXT NOT NULL,
            reason TEXT NOT NULL,
            failed_at TEXT NOT NULL
        );
        CREATE TABLE splits (
            key TEXT PRIMARY KEY,
            run_id INTEGER NOT NULL,
            parts_json TEXT NOT NULL
        )
    """)


@migration
def m004_finding_identities(db: sqlite3.Connection) -> None:
    # Without it, a finding the model reworded after its file changed got a new
    # fingerprint, and code scanning closed its alert and opened another every
    # night (issue 10). Only the previous completed run's rows are needed.
    db.execute("""
        CREATE TABLE identities (
            run_id INTEGER NOT NULL,
            path TEXT NOT NULL,
            fresh TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            PRIMARY KEY (run_id, path, fresh)
        )
    """)


@migration
def m005_request_definitions(db: sqlite3.Connection) -> None:
    # A part of a Python file is sent with the definitions it imports from other
    # files (issue 12, item 7); a retry or a re-chunked part must send the very
    # block its key was computed over, so it is kept with the text.
    db.execute("ALTER TABLE requests ADD COLUMN context BLOB")


@migration
def m006_run_kind(db: sqlite3.Connection) -> None:
    # `reviewer eval --batch` sends its cases' per-file requests through the same
    # exactly-once machinery, in a state file of its own; its requests carry the
    # whole user message, not a part of a file (`submit.request_params`).
    db.execute("ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'audit'")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def pack(text: str) -> bytes:
    return zlib.compress(text.encode("utf-8", "surrogatepass"), 6)


class DamagedValue(ValueError):
    """A value read from the state does not decode: the file is damaged."""


def unpack(blob: bytes) -> str:
    try:
        return zlib.decompress(blob).decode("utf-8", "surrogatepass")
    except (zlib.error, UnicodeDecodeError, TypeError) as exc:
        raise DamagedValue(f"a stored text does not decode ({exc})") from None


# ---------------------------------------------------------------------- why the file cannot be used

# How long a writer waits for a SQLite lock another process holds on the state
# (not our lock file, which says at once who holds it), printing a line first.
LOCK_WAIT_SECONDS = 10.0
# The lock file's record: rewritten in place at this fixed size, never grown.
LOCK_RECORD_BYTES = 4096

_READ_ONLY_ERRNOS = {errno.EROFS}
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _sqlite_code(exc: sqlite3.Error) -> int:
    return int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


def _dir_full(path: Path) -> bool:
    try:
        st = os.statvfs(path.parent if path.parent.exists() else ".")
    except OSError:
        return False
    return st.f_bavail == 0 or (os.geteuid() == 0 and st.f_bfree == 0)


def read_only_error(path: Path, detail: str = "", *, mount: bool = False) -> StateError:
    """`mount`: known to be a read-only filesystem (EROFS); else the mounts say, or it is permissions."""
    why = f" ({detail})" if detail else ""
    mount = mount or _on_read_only_fs(path.parent) or (path.exists() and _on_read_only_fs(path))
    where = "on a read-only filesystem" if mount else "not writable by this user (permissions)"
    return StateError(f"{path}: the state is {where}{why}; `audit status`, `list` and `plan` "
                      "can read it, `run`, `collect` and `cancel` need it writable", "read-only")


def full_error(path: Path, detail: str = "") -> StateError:
    why = f" ({detail})" if detail else ""
    return StateError(f"{path}: the disk holding the state is full{why}; what was recorded before is kept: "
                      "free space and run the same command again", "full")


def damaged_error(path: Path, detail: str) -> StateError:
    return StateError(f"{path}: not a reviewer audit state: the file is damaged ({detail}); move it aside (the "
                      "next run starts a new state and sends every part again) or restore a copy", "damaged")


def locked_error(path: Path, holder: str, *, ours: bool = True) -> StateError:
    who = "another `reviewer audit` is using this state" if ours else "a process that is not reviewer holds it"
    return StateError(f"{path}: locked by another process ({holder}): {who}; wait for it to finish", "locked")


def state_error(path: Path, exc: BaseException) -> StateError | None:
    """The one-line cause of `exc` met while using the state at `path`, or None when it is not the file's."""
    if isinstance(exc, StateError):
        return exc
    if isinstance(exc, DamagedValue):
        return damaged_error(path, str(exc))
    if isinstance(exc, OSError):
        if exc.errno in _READ_ONLY_ERRNOS:
            return read_only_error(path, exc.strerror or "", mount=True)
        if exc.errno in (errno.EACCES, errno.EPERM) and Path(str(exc.filename or "")).parent == path.parent:
            return read_only_error(path, exc.strerror or "")
        if exc.errno in _FULL_ERRNOS:
            return full_error(path, exc.strerror or "")
        return None
    if not isinstance(exc, sqlite3.Error):
        return None
    code = _sqlite_code(exc)
    if code == 8:  # SQLITE_READONLY
        return read_only_error(path, str(exc))
    if code == 13:  # SQLITE_FULL
        return full_error(path, str(exc))
    if code in (5, 6):  # SQLITE_BUSY, SQLITE_LOCKED
        holder = lock_holder(path)
        return locked_error(path, holder or f"a SQLite lock: {exc}", ours=holder is not None)
    if code in (11, 26) or isinstance(exc, (sqlite3.DataError, sqlite3.IntegrityError)):
        # SQLITE_CORRUPT, SQLITE_NOTADB; and text that is not UTF-8 (DataError/OperationalError "Could not decode")
        return damaged_error(path, str(exc))
    if "decode" in str(exc).lower():
        return damaged_error(path, str(exc))
    if code == 10:  # SQLITE_IOERR: a write refused by the device; a full one is the usual cause
        if _dir_full(path):
            return full_error(path, str(exc))
        return StateError(f"{path}: the state cannot be read or written ({exc}); check the disk", "io")
    if code == 14:  # SQLITE_CANTOPEN
        if _dir_full(path):
            return full_error(path, str(exc))
        if not os.access(path.parent, os.W_OK) or _on_read_only_fs(path):
            return read_only_error(path, str(exc))
        return StateError(f"{path}: cannot open the state ({exc})", "io")
    return None


def _on_read_only_fs(path: Path) -> bool:
    """Whether `path` (a file, or a folder) sits on a read-only mount."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


@contextlib.contextmanager
def translated(path: Path) -> Iterator[None]:
    """Turn a failure of the state file (or a full or read-only disk) into its one-line StateError."""
    try:
        yield
    except (sqlite3.Error, OSError, DamagedValue) as exc:
        error = state_error(path, exc)
        if error is None:
            raise
        if isinstance(exc, OSError) and exc.filename and Path(str(exc.filename)).name not in (
                path.name, path.name + ".lock", path.name + "-wal", path.name + "-shm"):
            # A report or another file, not the state: name that file.
            raise StateError(f"{exc.filename}: {exc.strerror or exc}", error.cause) from None
        raise error from None


def _read_lock_record(path: Path) -> dict[str, str]:
    try:
        with open(str(path) + ".lock", "rb") as fh:
            text = fh.read(LOCK_RECORD_BYTES).decode("utf-8", "replace")
    except OSError:
        return {}
    record = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key:
            record[key] = value
    return record


def check_size(path: Path) -> None:
    """Raise the damaged StateError when the file is shorter than its own header says (a truncated copy).

    SQLite reads pages lazily, so a truncated state can answer the first
    queries and fail, or answer wrongly, later; the header's page count
    (trusted when its change counter matches, as SQLite does) tells at once.
    Not while a `-wal` file holds pages: an unfinished checkpoint (a full disk
    stops one) leaves the file shorter than its header, and the WAL is right.
    """
    wal = Path(str(path) + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        return
    try:
        with open(path, "rb") as fh:
            header = fh.read(100)
            size = os.fstat(fh.fileno()).st_size
    except OSError:
        return
    if len(header) < 100 or not header.startswith(b"SQLite format 3\0"):
        return  # not SQLite at all: SQLite itself says so
    page = int.from_bytes(header[16:18], "big")
    page = 65536 if page == 1 else page
    pages = int.from_bytes(header[28:32], "big")
    if header[24:28] == header[92:96] and pages and size < pages * page:
        raise damaged_error(path, f"truncated: {size:,} of {pages * page:,} bytes")


def lock_holder(path: Path) -> str | None:
    """Who holds the state's lock, from the pid its holder recorded (None when nothing says)."""
    record = _read_lock_record(path)
    pid = record.get("pid", "")
    if not pid.isdigit() or int(pid) == os.getpid():
        return None  # nothing recorded, or this very process (a SQLite lock is someone else's)
    what = record.get("command", "reviewer audit")
    since = record.get("since")
    return f"pid {pid}, `{what}`" + (f" since {since}" if since else "")


@dataclass(frozen=True)
class Run:
    id: int
    created_at: str
    finished_at: str | None
    status: str
    reason: str | None
    repo_dir: str
    commit_sha: str | None
    tree_key: str
    model: str
    prompt_version: str
    context_digest: str
    system: tuple[dict[str, Any], ...]
    max_tokens: int
    canary: int
    canary_passed: bool
    max_attempts: int
    max_findings: int
    files: int
    skipped: int
    chunks: int
    carried: int
    deduplicated: int
    estimate_usd: float | None
    summary: dict[str, Any] | None
    kind: str = "audit"
    """audit: each request is a part of a file (the audit prompt is built from it); eval: each request
    holds its whole user message, and its answer is kept as the model gave it (`reviewer.eval.batch`)."""


@dataclass(frozen=True)
class Request:
    id: int
    run_id: int
    base_id: str
    custom_id: str
    key: str
    path: str
    start_line: int
    end_line: int
    total_lines: int
    tokens: int
    canary: bool
    attempt: int
    state: str
    batch_id: int | None
    reason: str | None
    text_blob: bytes | None
    context_blob: bytes | None = None
    """The definitions block sent with the text (zlib), or None."""

    @property
    def text(self) -> str:
        return unpack(self.text_blob) if self.text_blob is not None else ""

    @property
    def context(self) -> str:
        return unpack(self.context_blob) if self.context_blob is not None else ""


@dataclass(frozen=True)
class Batch:
    id: int
    run_id: int
    api_id: str | None
    state: str
    request_count: int
    bytes: int
    intent_at: str
    created_at: str | None
    adopted: bool
    counts: dict[str, int] | None


@dataclass(frozen=True)
class Failure:
    """Why a part's content key has no valid answer, remembered across runs."""

    key: str
    run_id: int
    """The run whose request failed."""
    custom_id: str
    state: str
    """quarantined (an invalid answer) | failed (the API rejected the request, or it cannot be cut smaller)"""
    reason: str
    failed_at: str


_REQUEST_COLUMNS = ("id, run_id, base_id, custom_id, key, path, start_line, end_line, total_lines, tokens, "
                    "canary, attempt, state, batch_id, reason, text, context")
_NO_TEXT_COLUMNS = _REQUEST_COLUMNS.replace(", text, context", ", NULL, NULL")


def _request(row: Sequence[Any]) -> Request:
    return Request(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9],
                   bool(row[10]), row[11], row[12], row[13], row[14], row[15], row[16])


def _batch(row: Sequence[Any]) -> Batch:
    return Batch(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], bool(row[8]),
                 json.loads(row[9]) if row[9] else None)


class Store:
    """The state file, migrated on open. Use as a context manager; `lock=True`
    also takes an exclusive lock so two audits cannot drive the same state.

    Raises StateError when the file cannot be used (see the module docstring).
    `log` receives a line before a wait for another process's lock.
    """

    def __init__(self, path: Path, *, lock: bool = False, readonly: bool = False,
                 log: Callable[[str], None] | None = None, command: str = "reviewer audit") -> None:
        self.path = path
        self._lock_fd: int | None = None
        # Set below; close() copes with a Store whose open failed before it.
        self.db: sqlite3.Connection = None  # type: ignore[assignment]
        self.unsaved_answers: tuple[str, ...] = ()
        """custom_ids of canary answers a previous process paid for but could not save."""
        if readonly:
            if not path.exists():
                raise FileNotFoundError(path)
            check_size(path)
            self._open_readonly()
            return
        try:
            from .plan import private_dir

            private_dir(path.parent)
        except OSError as exc:
            self.close()
            error = state_error(path, exc)
            raise error or UsageError(f"{path}: cannot create the state folder: {exc.strerror or exc}") from None
        try:
            if lock:
                self._take_lock(command)
            check_size(path)
            self.db = sqlite3.connect(str(path), isolation_level=None, timeout=LOCK_WAIT_SECONDS)
            self.db.execute(f"PRAGMA busy_timeout = {int(LOCK_WAIT_SECONDS * 1000)}")
            self._wait_for_foreign_lock(log)
            self.db.execute("PRAGMA journal_mode = WAL")
            # FULL: an intent row must be on disk before the create call it announces.
            self.db.execute("PRAGMA synchronous = FULL")
            self._migrate(False)
            # Every run decodes before anything is written: a damaged record found
            # half-way through a command would leave a new run beside it.
            self.runs()
        except BaseException as exc:
            self.close()
            error = state_error(path, exc) if isinstance(exc, (sqlite3.Error, OSError, DamagedValue)) else None
            if error is not None:
                raise error from None
            if isinstance(exc, sqlite3.DatabaseError):
                raise damaged_error(path, str(exc)) from None
            raise

    def _open_readonly(self) -> None:
        """`mode=ro`, then `immutable=1` where the `-shm` cannot be made and no `-wal` holds changes."""
        path = self.path
        # A URI, so a path holding %, # or ? (CI workspaces do) is read as itself.
        uri = path.resolve().as_uri() + "?mode=ro"
        try:
            try:
                self.db = sqlite3.connect(uri, uri=True, isolation_level=None)
                self.db.execute(f"PRAGMA busy_timeout = {int(LOCK_WAIT_SECONDS * 1000)}")
                self._migrate(True)
            except sqlite3.OperationalError as exc:
                if _sqlite_code(exc) != 14 or os.access(path.parent, os.W_OK) and not _on_read_only_fs(path.parent):
                    raise
                self.close()
                wal = Path(str(path) + "-wal")
                if wal.exists() and wal.stat().st_size > 0:
                    raise StateError(f"{path}: the state is on a read-only filesystem and its write-ahead log "
                                     f"({wal.name}) holds changes SQLite can only read where it may write; copy "
                                     "the folder somewhere writable to read it", "read-only") from None
                self.db = sqlite3.connect(uri + "&immutable=1", uri=True, isolation_level=None)
                self._migrate(True)
        except sqlite3.Error as exc:
            self.close()
            error = state_error(path, exc)
            if error is not None:
                raise error from None
            if isinstance(exc, sqlite3.DatabaseError):
                raise damaged_error(path, str(exc)) from None
            raise
        except BaseException:
            self.close()
            raise

    def _wait_for_foreign_lock(self, log: Callable[[str], None] | None) -> None:
        """Wait up to LOCK_WAIT_SECONDS for a write lock another process holds on the file itself.

        Our lock file keeps other reviewer processes out; this is a process that
        is not one (a `sqlite3` shell with an open transaction, a backup tool).
        A line is printed first, so the wait is never silent.
        """
        assert self.db is not None
        self.db.execute("PRAGMA busy_timeout = 0")
        started = time.monotonic()
        said = False
        while True:
            try:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.execute("ROLLBACK")
                break
            except sqlite3.OperationalError as exc:
                if _sqlite_code(exc) not in (5, 6):
                    raise
                waited = time.monotonic() - started
                if waited >= LOCK_WAIT_SECONDS:
                    raise locked_error(self.path, f"a SQLite write lock on the file, still held after "
                                       f"{LOCK_WAIT_SECONDS:g} s", ours=False) from None
                if not said and log is not None:
                    log(f"{self.path}: another process holds a write lock on the state; waiting up to "
                        f"{LOCK_WAIT_SECONDS:g} s")
                    said = True
                time.sleep(0.2)
        self.db.execute(f"PRAGMA busy_timeout = {int(LOCK_WAIT_SECONDS * 1000)}")

    def _take_lock(self, command: str) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory lock
            return
        fd = os.open(str(self.path) + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            # At once, not after a wait: the holder is usually a run that lasts hours.
            raise locked_error(self.path, lock_holder(self.path) or "another `reviewer audit`") from None
        self._lock_fd = fd
        previous = _read_lock_record(self.path)
        self.unsaved_answers = tuple(previous.get("unsaved", "").split())
        self._command = command
        self._since = now()
        try:
            if os.fstat(fd).st_size < LOCK_RECORD_BYTES:
                # Full size once, so later records overwrite it in place (possible on a full disk).
                os.ftruncate(fd, LOCK_RECORD_BYTES)
                os.pwrite(fd, b" " * LOCK_RECORD_BYTES, 0)
        except OSError:
            pass  # a full disk: the pid is best effort, the lock itself holds
        self._write_lock_record()

    def _write_lock_record(self) -> bool:
        """Rewrite the lock file's record in place; False when it could not be written."""
        if self._lock_fd is None:
            return False
        lines = [f"pid {os.getpid()}", f"command {self._command}", f"since {self._since}"]
        if self.unsaved_answers:
            lines.append("unsaved " + " ".join(self.unsaved_answers))
        data = "\n".join(lines).encode("utf-8")[:LOCK_RECORD_BYTES - 1] + b"\n"
        try:
            os.pwrite(self._lock_fd, data.ljust(LOCK_RECORD_BYTES, b" "), 0)
            os.fsync(self._lock_fd)
            return True
        except OSError:
            return False

    def note_unsaved_answer(self, custom_id: str) -> bool:
        """Remember, outside the database, that `custom_id`'s paid answer could not be saved."""
        self.unsaved_answers = (*self.unsaved_answers, custom_id)
        return self._write_lock_record()

    def forget_unsaved_answers(self) -> None:
        """The state now says what became of them (call after that transaction committed)."""
        if self.unsaved_answers:
            self.unsaved_answers = ()
            self._write_lock_record()

    def _migrate(self, readonly: bool) -> None:
        exists = self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
        done = 0
        if exists:
            done = self.db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
        if done > len(MIGRATIONS):
            raise UsageError(f"{self.path}: written by a newer reviewer (state schema {done}, "
                             f"this version knows {len(MIGRATIONS)}); upgrade reviewer")
        if done == len(MIGRATIONS):
            return
        if readonly:
            raise UsageError(f"{self.path}: the state needs an upgrade; run `reviewer audit run` or `collect` once")
        if not exists:
            with self.transaction():
                self.db.execute("CREATE TABLE IF NOT EXISTS schema_version "
                                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")
        for version, fn in enumerate(MIGRATIONS, start=1):
            if version <= done:
                continue
            with self.transaction():
                fn(self.db)
                self.db.execute("INSERT INTO schema_version VALUES (?, ?, ?)", (version, fn.__name__, now()))

    @property
    def schema_version(self) -> int:
        return self.db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]

    def close(self) -> None:
        try:
            if getattr(self, "db", None) is not None:
                with contextlib.suppress(sqlite3.Error):
                    self.db.close()
                self.db = None  # type: ignore[assignment]
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One state transition: all of it or none of it reaches the file."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
            self.db.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (SQLITE_FULL, SQLITE_IOERR do):
            # a second ROLLBACK would raise and hide the cause.
            if self.db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------ runs

    def _run(self, row: Sequence[Any]) -> Run:
        (id_, created, finished, status, reason, repo_dir, commit, tree_key, model, version, digest,
         system, max_tokens, canary, canary_passed, max_attempts, max_findings, files, skipped, chunks,
         carried, dedup, estimate, summary, kind) = row
        try:
            system_blocks = tuple(json.loads(system))
            summary_doc = json.loads(summary) if summary else None
        except (ValueError, TypeError) as exc:
            raise DamagedValue(f"run {id_} does not decode ({exc})") from None
        return Run(id_, created, finished, status, reason, repo_dir, commit, tree_key, model, version, digest,
                   system_blocks, max_tokens, canary, bool(canary_passed), max_attempts, max_findings,
                   files, skipped, chunks, carried, dedup, estimate, summary_doc, kind)

    _RUN_COLUMNS = ("id, created_at, finished_at, status, reason, repo_dir, commit_sha, tree_key, model, "
                    "prompt_version, context_digest, system_json, max_tokens, canary, canary_passed, max_attempts, "
                    "max_findings, files, "
                    "skipped, chunks, carried, deduplicated, estimate_usd, summary_json, kind")

    def run(self, run_id: int) -> Run:
        row = self.db.execute(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise UsageError(f"{self.path}: no audit run {run_id}")
        return self._run(row)

    def active_run(self) -> Run | None:
        row = self.db.execute(
            f"SELECT {self._RUN_COLUMNS} FROM runs WHERE status IN ('active', 'canceling') ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return self._run(row) if row else None

    def latest_run(self, statuses: Sequence[str] = RUN_STATUSES, *, before: int | None = None) -> Run | None:
        """The newest run in `statuses` (with an id below `before`, when given)."""
        marks = ",".join("?" * len(statuses))
        below = " AND id < ?" if before is not None else ""
        row = self.db.execute(
            f"SELECT {self._RUN_COLUMNS} FROM runs WHERE status IN ({marks}){below} ORDER BY id DESC LIMIT 1",
            (*statuses, *(() if before is None else (before,)))).fetchone()
        return self._run(row) if row else None

    def runs(self, statuses: Sequence[str] = RUN_STATUSES, limit: int | None = None) -> list[Run]:
        marks = ",".join("?" * len(statuses))
        sql = f"SELECT {self._RUN_COLUMNS} FROM runs WHERE status IN ({marks}) ORDER BY id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [self._run(r) for r in self.db.execute(sql, tuple(statuses))]

    def insert_run(self, fields: dict[str, Any], files: Iterable[tuple[str, str | None]],
                   chunks: Iterable[tuple[str, int, int, str]], requests: Iterable[dict[str, Any]]) -> int:
        """Record a planned run in one transaction; returns its id.

        `files`: (path, skip reason or None); `chunks`: (path, first, last, key)
        for every audited part; `requests`: column values of each request.
        """
        stamp = now()
        with self.transaction():
            fields = {**fields, "created_at": stamp, "updated_at": stamp}
            cur = self.db.execute(
                f"INSERT INTO runs ({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})",
                tuple(v if not isinstance(v, (list, tuple, dict)) else json.dumps(v) for v in fields.values()))
            run_id = int(cur.lastrowid or 0)
            self.db.executemany("INSERT INTO run_files (run_id, path, skip_reason) VALUES (?, ?, ?)",
                                ((run_id, p, r) for p, r in files))
            self.db.executemany("INSERT INTO run_chunks (run_id, path, start_line, end_line, key) VALUES (?, ?, ?, ?, ?)",
                                ((run_id, *c) for c in chunks))
            for values in requests:
                values = {**values, "run_id": run_id, "updated_at": stamp}
                self.db.execute(
                    f"INSERT INTO requests ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                    tuple(values.values()))
        return run_id

    def set_run(self, run_id: int, **fields: Any) -> None:
        """Update a run inside the caller's transaction."""
        fields["updated_at"] = now()
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*fields.values(), run_id))

    def result_keys(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT key FROM results")}

    def part_texts(self, run_id: int, path: str) -> list[tuple[int, int, str]]:
        """(first line, last line, text) of `path`'s parts whose request text `run_id` still holds.

        The texts are dropped when the run finishes; parts carried over from
        an earlier run have none.
        """
        return [(a, b, unpack(t)) for a, b, t in self.db.execute(
            "SELECT rc.start_line, rc.end_line, rq.text FROM run_chunks rc JOIN requests rq "
            "ON rq.run_id = rc.run_id AND rq.key = rc.key "
            "WHERE rc.run_id = ? AND rc.path = ? AND rq.text IS NOT NULL ORDER BY rc.start_line", (run_id, path))]

    # ------------------------------------------------------------------ finding identities

    def identities(self, run_id: int) -> dict[tuple[str, str], str]:
        """(path, fresh fingerprint) -> the fingerprint `run_id`'s report gave it; empty if never recorded."""
        return {(p, f): i for p, f, i in self.db.execute(
            "SELECT path, fresh, fingerprint FROM identities WHERE run_id = ?", (run_id,))}

    def keep_identities(self, run_id: int, identities: dict[tuple[str, str], str], *,
                        forget_before: int | None) -> None:
        """Record `run_id`'s identities; drop those of runs before `forget_before` (one transaction)."""
        with self.transaction() as db:
            db.execute("DELETE FROM identities WHERE run_id = ?", (run_id,))
            db.executemany("INSERT INTO identities (run_id, path, fresh, fingerprint) VALUES (?, ?, ?, ?)",
                           ((run_id, p, f, i) for (p, f), i in identities.items()))
            if forget_before is not None:
                db.execute("DELETE FROM identities WHERE run_id < ?", (forget_before,))

    # ------------------------------------------------------------------ remembered failures and splits

    def failures(self) -> dict[str, Failure]:
        """Content key -> its remembered failure."""
        return {r[0]: Failure(*r) for r in self.db.execute(
            "SELECT key, run_id, custom_id, state, reason, failed_at FROM failures")}

    def remember_failure(self, run_id: int, req: Request, state: str, reason: str) -> None:
        """`req`'s content failed for a reason of its own (inside the caller's transaction)."""
        self.db.execute("INSERT OR REPLACE INTO failures (key, run_id, custom_id, state, reason, failed_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)", (req.key, run_id, req.custom_id, state, reason, now()))

    def forget_failure(self, key: str) -> None:
        """The last outcome for `key` was an answer, or a transient failure (inside the caller's transaction)."""
        self.db.execute("DELETE FROM failures WHERE key = ?", (key,))

    def splits(self) -> dict[str, tuple[tuple[int, int, str], ...]]:
        """Content key -> (first line, last line, key) of the parts it was cut into."""
        return {k: tuple((a, b, c) for a, b, c in json.loads(v))
                for k, v in self.db.execute("SELECT key, parts_json FROM splits")}

    def remember_split(self, run_id: int, key: str, parts: Sequence[tuple[int, int, str]]) -> None:
        self.db.execute("INSERT OR REPLACE INTO splits (key, run_id, parts_json) VALUES (?, ?, ?)",
                        (key, run_id, json.dumps([list(p) for p in parts])))

    # ------------------------------------------------------------------ requests

    def request(self, request_id: int) -> Request:
        row = self.db.execute(f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE id = ?", (request_id,)).fetchone()
        return _request(row)

    def requests(self, run_id: int, states: Sequence[str] | None = None, *, canary: bool | None = None,
                 limit: int | None = None, with_text: bool = True) -> list[Request]:
        cols = _REQUEST_COLUMNS if with_text else _NO_TEXT_COLUMNS
        sql = f"SELECT {cols} FROM requests WHERE run_id = ?"
        args: list[Any] = [run_id]
        if states is not None:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            args.extend(states)
        if canary is not None:
            sql += " AND canary = ?"
            args.append(int(canary))
        sql += " ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_request(r) for r in self.db.execute(sql, args)]

    def iter_requests(self, run_id: int, states: Sequence[str]) -> Iterator[Request]:
        """Requests in `states`, read lazily in id order (constant memory)."""
        marks = ",".join("?" * len(states))
        last = 0
        while True:
            rows = self.db.execute(
                f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE run_id = ? AND state IN ({marks}) AND id > ? "
                "ORDER BY id LIMIT 500", (run_id, *states, last)).fetchall()
            if not rows:
                return
            for row in rows:
                yield _request(row)
            last = rows[-1][0]

    def unanswered_in_batch(self, batch_id: int) -> list[Request]:
        """Requests of `batch_id` still waiting for their result (text not read: a requeue does not need it)."""
        cols = _NO_TEXT_COLUMNS
        return [_request(r) for r in self.db.execute(
            f"SELECT {cols} FROM requests WHERE batch_id = ? AND state = 'submitted' ORDER BY id", (batch_id,))]

    def request_in_batch(self, batch_id: int, custom_id: str) -> Request | None:
        row = self.db.execute(
            f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE batch_id = ? AND custom_id = ?",
            (batch_id, custom_id)).fetchone()
        return _request(row) if row else None

    def submitted_in(self, batch_id: int, run_id: int, custom_id: str) -> bool:
        """Whether `custom_id` was submitted in `batch_id` (whatever became of its request since)."""
        return self.db.execute("SELECT 1 FROM submissions WHERE run_id = ? AND custom_id = ? AND batch_id = ?",
                               (run_id, custom_id, batch_id)).fetchone() is not None

    def state_counts(self, run_id: int) -> dict[str, int]:
        return {s: n for s, n in self.db.execute(
            "SELECT state, COUNT(*) FROM requests WHERE run_id = ? GROUP BY state", (run_id,))}

    def open_requests(self, run_id: int) -> int:
        return self.db.execute(
            "SELECT COUNT(*) FROM requests WHERE run_id = ? AND state IN ('planned', 'submitting', 'submitted')",
            (run_id,)).fetchone()[0]

    def set_request(self, request_id: int, **fields: Any) -> None:
        """Update a request inside the caller's transaction."""
        fields["updated_at"] = now()
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE requests SET {sets} WHERE id = ?", (*fields.values(), request_id))

    def record_usage(self, request_id: int, usage: Usage, cost: float | None) -> None:
        """Add a billed answer's usage to the request (inside the caller's transaction)."""
        self.db.execute(
            "UPDATE requests SET input_tokens = input_tokens + ?, output_tokens = output_tokens + ?, "
            "cache_creation_input_tokens = cache_creation_input_tokens + ?, "
            "cache_read_input_tokens = cache_read_input_tokens + ?, cost_usd = cost_usd + ?, "
            "unpriced = MAX(unpriced, ?) WHERE id = ?",
            (usage.input_tokens, usage.output_tokens, usage.cache_creation_input_tokens,
             usage.cache_read_input_tokens, cost or 0.0, int(cost is None), request_id))

    def usage(self, run_id: int) -> tuple[Usage, float | None]:
        row = self.db.execute(
            "SELECT COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), "
            "COALESCE(SUM(cache_creation_input_tokens), 0), COALESCE(SUM(cache_read_input_tokens), 0), "
            "COALESCE(SUM(cost_usd), 0), COALESCE(MAX(unpriced), 0) FROM requests WHERE run_id = ?",
            (run_id,)).fetchone()
        return Usage(row[0], row[1], row[2], row[3]), (None if row[5] else round(row[4], 6))

    def retries(self, run_id: int) -> int:
        return self.db.execute("SELECT COALESCE(SUM(attempt), 0) FROM requests WHERE run_id = ?",
                               (run_id,)).fetchone()[0]

    # ------------------------------------------------------------------ batches

    def batch(self, batch_id: int) -> Batch:
        return _batch(self.db.execute(
            "SELECT id, run_id, api_id, state, request_count, bytes, intent_at, created_at, adopted, counts_json "
            "FROM batches WHERE id = ?", (batch_id,)).fetchone())

    def batches(self, run_id: int, states: Sequence[str] | None = None) -> list[Batch]:
        sql = ("SELECT id, run_id, api_id, state, request_count, bytes, intent_at, created_at, adopted, counts_json "
               "FROM batches WHERE run_id = ?")
        args: list[Any] = [run_id]
        if states is not None:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            args.extend(states)
        return [_batch(r) for r in self.db.execute(sql + " ORDER BY id", args)]

    def known_batch(self, api_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM batches WHERE api_id = ?", (api_id,)).fetchone() is not None

    def set_batch(self, batch_id: int, **fields: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE batches SET {sets} WHERE id = ?", (*fields.values(), batch_id))

    # ------------------------------------------------------------------ notes

    def add_note(self, run_id: int, text: str) -> None:
        self.db.execute("INSERT INTO notes (run_id, text) VALUES (?, ?)", (run_id, text))

    def notes(self, run_id: int) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT text FROM notes WHERE run_id = ? ORDER BY id", (run_id,))]

    def checkpoint(self) -> None:
        """Fold the WAL into the database file, so a cache of the folder holds one file."""
        with contextlib.suppress(sqlite3.Error):
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def open_readonly(path: Path) -> Store | None:
    """The state for reading (plan, status, list), or None when there is none yet."""
    if not path.exists():
        return None
    return Store(path, readonly=True)
