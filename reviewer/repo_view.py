"""A read-only view of a git repository at one commit, served from git objects only.

Everything reviewer sends about a repository besides the diff (file context for
the review, the audited files, the configured guidelines, later the review's
tools) is read through this module, so one set of rules holds everywhere:

* only git objects are read (`git cat-file --batch`, one long-lived process per
  view, and `git ls-tree` for listings), never the working tree: a tracked file
  replaced by a FIFO, a device or a link to `/etc` in the checkout is not seen;
* a symbolic link (mode 120000) is returned as its target text, marked as a
  link, and never followed, neither as the file asked for nor as a directory
  on the way to it;
* a submodule (mode 160000) is not entered;
* a path that is empty, absolute, has a `..` component, holds a NUL byte or a
  newline, or is not in the tree is refused with the reason (`PathRefused`);
* every read has a byte cap, and a `Blob` says when it was cut.

Nothing from the tree is executed: the commands run here apply no filters,
textconv drivers, hooks or attributes.

Errors: `NotARepository` and `PathRefused` are `UsageError`s (exit 2); a git
that cannot be run is a `UsageError` too; a `git cat-file` that dies mid-read is
a `ReviewerError` (an internal failure, exit 3).
"""

from __future__ import annotations

import os
import subprocess
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .errors import ReviewerError, UsageError

LINK = "120000"
SUBMODULE = "160000"
DIRECTORY = "040000"

# A read takes at most this much unless the caller says otherwise.
DEFAULT_MAX_BYTES = 1024 * 1024
# git's own test for binary content: a NUL byte in the first 8,000 bytes.
BINARY_SNIFF_BYTES = 8000
# How much of a blob over its cap is read (and dropped) at a time, so a 1 GB
# blob costs 1 MiB of memory.
_DRAIN = 1024 * 1024
BLOB_CACHE_BYTES = 8 * 1024 * 1024
"""Bytes of file contents a view keeps, most recently read first (see `RepoView.read_entry`)."""

Kind = Literal["file", "link", "submodule", "directory"]


class NotARepository(UsageError):
    """The folder is not in a git repository, or the commit asked for is not in it."""


class PathRefused(UsageError):
    """A path the view will not read; `reason` says why in a few words."""

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{shown(path)}: {reason}")


@dataclass(frozen=True)
class Entry:
    """One entry of the tree at the view's commit."""

    path: str
    """From the top of the repository, '/'-separated; bytes that are not UTF-8 kept by surrogateescape."""
    mode: str
    """Six octal digits as git writes them: 100644, 100755, 120000 (link), 160000 (submodule), 040000."""
    oid: str
    """The object id (a commit id for a submodule)."""
    size: int | None = None
    """Bytes of the blob; None for directories and submodules, and when the listing did not say."""

    @property
    def kind(self) -> Kind:
        if self.mode == LINK:
            return "link"
        if self.mode == SUBMODULE:
            return "submodule"
        if self.mode == DIRECTORY:
            return "directory"
        return "file"


@dataclass(frozen=True)
class Blob:
    """What a read returns: at most the cap of a file's bytes, or a link's target text."""

    path: str
    mode: str
    size: int
    """The whole blob's size, however much of it `data` holds."""
    data: bytes
    truncated: bool
    """True when `data` is only the first `cap` bytes of `size`."""
    is_link: bool
    """A symbolic link: `data` is the target it names, which was not followed."""

    @property
    def binary(self) -> bool:
        return not self.is_link and b"\0" in self.data[:BINARY_SNIFF_BYTES]

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


# Characters that reorder the text around them (the "Trojan Source" ones).
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def shown(path: str) -> str:
    """`path` for a message: control, bidirectional and undecodable characters escaped, quoted."""
    out = []
    for ch in path:
        if 0xDC80 <= ord(ch) <= 0xDCFF:  # a byte that is not UTF-8, kept by surrogateescape
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ch.isprintable() and ch not in _BIDI:
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "'" + "".join(out) + "'"


def normalize(path: str) -> str:
    """`path` as a tree path ('a/b'); PathRefused when it could name anything outside the tree.

    `.` components and repeated or trailing slashes are dropped; `..`, a
    leading `/`, NUL and newline are refused rather than interpreted.
    """
    if "\0" in path:
        raise PathRefused(path, "contains a NUL byte")
    if "\n" in path or "\r" in path:
        raise PathRefused(path, "contains a line break")
    if path.startswith("/") or path.startswith("\\"):
        raise PathRefused(path, "is an absolute path; name a file inside the repository")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PathRefused(path, "has a '..' component; name a file inside the repository")
    if not parts:
        raise PathRefused(path, "is empty")
    return "/".join(parts)


def _git_env() -> dict[str, str]:
    """The environment git runs in here.

    NOTE: what could make these commands read something else than the objects
    of the commit asked for is the environment, not the configuration:
    GIT_DIR, GIT_WORK_TREE, GIT_INDEX_FILE, GIT_OBJECT_DIRECTORY,
    GIT_ALTERNATE_OBJECT_DIRECTORIES, GIT_NAMESPACE and GIT_CONFIG_PARAMETERS /
    GIT_CONFIG_COUNT (set, for example, when reviewer runs inside a git hook)
    redirect git or inject configuration, so every GIT_* variable is dropped.
    Replace refs (`git replace`) would substitute other objects for the ones
    named: `--no-replace-objects` on every command turns them off. The system
    and global configuration are kept on purpose: `cat-file --batch` (without
    --filters/--textconv) and `ls-tree -z` have no setting that changes their
    output or runs a program, and `safe.directory`, which protects against a
    repository owned by someone else, lives there (GIT_CONFIG_NOSYSTEM would
    drop an administrator's `safe.directory`). `core.quotePath=false` is set
    for messages and any command without -z.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_TERMINAL_PROMPT"] = "0"  # a lazy fetch in a partial clone never waits on a prompt
    env["LC_ALL"] = "C"  # git's messages in English, as we quote them
    return env


GIT_OPTIONS = ("--no-replace-objects", "-c", "core.quotePath=false")


def run(repo_dir: Path, *args: str, timeout: float | None = None, input: bytes | None = None,
        extra_env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """`git ARGS` in `repo_dir`, in this module's fixed environment; the exit status is not checked.

    The one way reviewer runs git (the diff of `source.from_git` too, and the
    eval's scratch commits, which pass `input` and fixed dates in `extra_env`).
    Raises UsageError when git cannot be run, subprocess.TimeoutExpired after `timeout`.
    """
    env = _git_env()
    env.update(extra_env or {})
    try:
        return subprocess.run(["git", *GIT_OPTIONS, "-C", str(repo_dir), *args], capture_output=True,
                              input=input, stdin=None if input is not None else subprocess.DEVNULL, env=env,
                              timeout=timeout, check=False)
    except FileNotFoundError:
        raise UsageError("git is not installed or not on PATH") from None
    except OSError as exc:
        raise UsageError(f"cannot run git: {exc.strerror or exc}") from None


def _git(repo_dir: Path, *args: str) -> bytes:
    done = run(repo_dir, *args)
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise _GitFailed(lines[0] if lines else f"git {args[0]} exited {done.returncode}")
    return done.stdout


class _GitFailed(UsageError):
    pass


class RepoView:
    """The tree of one commit of the repository holding `repo_dir`.

    Paths are from the top of the repository; `prefix` is where `repo_dir`
    sits in it ('' at the top, else 'sub/dir/'). Safe to share between
    threads. Raises NotARepository when `repo_dir` is not in a git repository
    or `commit` does not name a commit in it.
    """

    def __init__(self, repo_dir: Path, commit: str = "HEAD") -> None:
        self.repo_dir = repo_dir
        if not repo_dir.is_dir():
            raise NotARepository(f"{repo_dir}: no such directory")
        try:
            self.prefix = _git(repo_dir, "rev-parse", "--show-prefix").decode("utf-8", "surrogateescape").strip("\n")
        except _GitFailed:
            raise NotARepository(f"{repo_dir} is not a git repository") from None
        self.commit = ""
        if not commit.startswith("-"):  # an option to rev-parse, not a revision
            try:
                self.commit = _git(repo_dir, "rev-parse", "--verify", "--quiet",
                                   f"{commit}^{{commit}}").decode().strip()
            except _GitFailed:
                pass
        if not self.commit:
            raise NotARepository(f"'{commit}' is not a commit in {repo_dir}"
                                 + (" (the repository has no commit yet)" if commit == "HEAD" else ""))
        self._oid_bytes = len(self.commit) // 2  # 20 (SHA-1) or 32 (SHA-256)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._trees: dict[str, dict[bytes, tuple[str, str]]] = {}
        self._blobs: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._blob_bytes = 0
        self._root: str | None = None
        self._finalizer: weakref.finalize | None = None

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """End the `git cat-file` process; reading again starts a new one."""
        with self._lock:
            if self._finalizer is not None:
                self._finalizer()
                self._finalizer = None
            self._proc = None

    def __enter__(self) -> RepoView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def git(self, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess[bytes]:
        """`git ARGS` in the repository, in the fixed environment of this module; not checked.

        For commands that read objects at `self.commit` (`git grep ... <commit>`);
        raises subprocess.TimeoutExpired after `timeout` seconds (the child is killed).
        """
        return run(self.repo_dir, *args, timeout=timeout)

    # ------------------------------------------------------------------ listing

    def entries(self, under: str = "") -> list[Entry]:
        """Every blob, link and submodule under the directory `under` ('' for all), sorted by path.

        Submodules are listed, not entered. Uses `git ls-tree -r -z -l --full-tree`.
        """
        tree, base = self.commit, ""
        if under:
            found = self.lookup(under)
            if found.kind != "directory":
                raise PathRefused(under, f"is a {found.kind}, not a directory")
            tree, base = found.oid, found.path + "/"
        out = _git(self.repo_dir, "ls-tree", "-r", "-z", "-l", "--full-tree", tree)
        entries = []
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            mode, _kind, oid, size = meta.decode("ascii").split()
            entries.append(Entry(base + raw_path.decode("utf-8", "surrogateescape"), mode.zfill(6), oid,
                                 int(size) if size.isdigit() else None))
        entries.sort(key=lambda e: e.path)
        return entries

    def lookup(self, path: str) -> Entry:
        """The entry at `path`; PathRefused when the path is refused or not in the tree.

        The path is resolved one component at a time through the tree objects,
        so a link or a submodule on the way is named, not followed or entered.
        """
        clean = normalize(path)
        with self._lock:
            tree = self._root_tree()
            parts = clean.split("/")
            for i, name in enumerate(parts):
                where = "/".join(parts[:i + 1])
                found = self._tree(tree).get(name.encode("utf-8", "surrogateescape"))
                if found is None:
                    raise PathRefused(path, f"is not in the tree at {self.commit[:12]}")
                mode, oid = found
                last = i == len(parts) - 1
                if last:
                    return Entry(clean, mode, oid)
                if mode == LINK:
                    raise PathRefused(path, f"passes through the symbolic link {shown(where)}, which is not followed")
                if mode == SUBMODULE:
                    raise PathRefused(path, f"is inside the submodule {shown(where)}, which is not entered")
                if mode != DIRECTORY:
                    raise PathRefused(path, f"is not in the tree at {self.commit[:12]} ({shown(where)} is a file)")
                tree = oid
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ reading

    def read(self, path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Blob:
        """At most `max_bytes` of the file at `path` (a link: its target text, not followed).

        PathRefused when the path is refused, not in the tree, a directory or a submodule.
        """
        entry = self.lookup(path)
        if entry.kind == "directory":
            raise PathRefused(path, "is a directory")
        if entry.kind == "submodule":
            raise PathRefused(path, "is a submodule, which is not entered")
        return self.read_entry(entry, max_bytes)

    def read_entry(self, entry: Entry, max_bytes: int = DEFAULT_MAX_BYTES) -> Blob:
        """At most `max_bytes` of a blob or link listed by `entries` or `lookup`."""
        if entry.kind in ("directory", "submodule"):
            raise PathRefused(entry.path, f"is a {entry.kind}, not a file")
        with self._lock:
            kind, size, data = self._cached_object(entry.oid, max_bytes)
        if kind != "blob":
            raise PathRefused(entry.path, f"is not a file at {self.commit[:12]}")
        return Blob(entry.path, entry.mode, size, data, size > len(data), entry.kind == "link")

    # ------------------------------------------------------------------ objects

    def _root_tree(self) -> str:
        if self._root is None:
            kind, _, data = self._object(self.commit, None)
            first = data.split(b"\n", 1)[0]
            if kind != "commit" or not first.startswith(b"tree "):
                raise ReviewerError(f"{self.commit[:12]} is not a readable commit")
            self._root = first[5:].decode("ascii")
        return self._root

    def _tree(self, oid: str) -> dict[bytes, tuple[str, str]]:
        """name -> (mode, oid) of a tree object, parsed from its binary form."""
        cached = self._trees.get(oid)
        if cached is not None:
            return cached
        kind, _, data = self._object(oid, None)
        if kind != "tree":
            raise ReviewerError(f"object {oid[:12]} is a {kind}, not a tree")
        out: dict[bytes, tuple[str, str]] = {}
        at = 0
        while at < len(data):
            space = data.index(b" ", at)
            nul = data.index(b"\0", space)
            mode = data[at:space].decode("ascii").zfill(6)
            out[data[space + 1:nul]] = (mode, data[nul + 1:nul + 1 + self._oid_bytes].hex())
            at = nul + 1 + self._oid_bytes
        self._trees[oid] = out
        return out

    def _cached_object(self, oid: str, max_bytes: int) -> tuple[str, int, bytes]:
        """`_object`, from the blob cache when this object was read whole before; the lock is held.

        NOTE: the tools read the same few files again and again (each per-file call reads the
        helper its change calls, find_symbol reads the files that mention a name, the verifier
        reads what a finding quotes), and every read of the one `cat-file --batch` process holds
        the view's lock over a round trip, so concurrent tool calls queue on it. An object's
        content never changes, so what was read whole is kept (up to BLOB_CACHE_BYTES).
        """
        cached = self._blobs.get(oid)
        if cached is not None:
            self._blobs.move_to_end(oid)
            kind, data = cached
            return kind, len(data), data[:max_bytes]
        kind, size, data = self._object(oid, max_bytes)
        if len(data) == size and size <= BLOB_CACHE_BYTES // 8:
            self._blobs[oid] = (kind, data)
            self._blob_bytes += size
            while self._blob_bytes > BLOB_CACHE_BYTES:
                _, (_, dropped) = self._blobs.popitem(last=False)
                self._blob_bytes -= len(dropped)
        return kind, size, data

    def _object(self, oid: str, max_bytes: int | None) -> tuple[str, int, bytes]:
        """(type, size, at most `max_bytes` of the content) of an object; the lock is held."""
        proc = self._process()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(oid.encode("ascii") + b"\n")
            proc.stdin.flush()
            header = proc.stdout.readline()
        except (BrokenPipeError, OSError) as exc:
            raise ReviewerError(f"git cat-file stopped while reading {self.repo_dir}: {exc}") from None
        fields = header.decode("ascii", "replace").split()
        if len(fields) == 2 and fields[1] == "missing":
            return "missing", 0, b""
        if len(fields) != 3 or not fields[2].isdigit():
            raise ReviewerError(f"git cat-file stopped while reading {self.repo_dir} ({header[:80]!r})")
        kind, size = fields[1], int(fields[2])
        keep = size if max_bytes is None else min(size, max_bytes)
        data = _read_exactly(proc, keep)
        left = size - keep
        while left:  # the rest is read and dropped, a piece at a time
            left -= len(_read_exactly(proc, min(left, _DRAIN)))
        _read_exactly(proc, 1)  # the newline after the contents
        return kind, size, data

    def _process(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            try:
                self._proc = subprocess.Popen(
                    ["git", *GIT_OPTIONS, "-C", str(self.repo_dir), "cat-file", "--batch"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_git_env(),
                )
            except OSError as exc:
                raise UsageError(f"cannot run git: {exc.strerror or exc}") from None
            # The process ends with the view even when nobody calls close().
            self._finalizer = weakref.finalize(self, _stop, self._proc)
        return self._proc


def _read_exactly(proc: subprocess.Popen[bytes], n: int) -> bytes:
    assert proc.stdout is not None
    data = proc.stdout.read(n) if n else b""
    if len(data) != n:
        raise ReviewerError("git cat-file ended in the middle of an object")
    return data


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        assert proc.stdin is not None
        try:
            proc.stdin.close()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
