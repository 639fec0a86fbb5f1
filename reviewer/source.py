"""Where a diff comes from: a file, stdin, or a local git repository.

A source yields the diff bytes and, when it can, a reader for files at head so
the per-file pass gets surrounding context, not only the hunks.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import UsageError


@dataclass
class Source:
    label: str
    data: bytes
    read_head: Callable[[str], bytes | None] | None = None
    close: Callable[[], None] = lambda: None


def from_path(path: str) -> Source:
    """`-` reads stdin; anything else is a file holding a unified diff."""
    if path == "-":
        return Source("stdin", sys.stdin.buffer.read())
    try:
        return Source(path, Path(path).read_bytes())
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, expected a diff file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _git(repo_dir: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo_dir), *args], capture_output=True, check=False
        )
    except FileNotFoundError:
        raise UsageError("git is not installed or not on PATH") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UsageError(f"git {args[0]} failed: {message[0] if message else 'exit ' + str(done.returncode)}")
    return done.stdout


def _commit(repo_dir: Path, ref: str) -> str:
    try:
        return _git(repo_dir, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").decode().strip()
    except UsageError:
        raise UsageError(f"'{ref}' is not a commit in {repo_dir}") from None


class _BlobReader:
    """Reads files at one commit through a single `git cat-file --batch` process."""

    def __init__(self, repo_dir: Path, commit: str) -> None:
        self._commit = commit
        self._proc = subprocess.Popen(
            ["git", "-C", str(repo_dir), "cat-file", "--batch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def __call__(self, path: str) -> bytes | None:
        assert self._proc.stdin and self._proc.stdout
        if "\n" in path:
            return None
        self._proc.stdin.write(f"{self._commit}:{path}\n".encode())
        self._proc.stdin.flush()
        header = self._proc.stdout.readline().decode("utf-8", "replace").split()
        if len(header) != 3 or header[1] != "blob":
            return None  # missing, or a submodule / tree
        data = self._proc.stdout.read(int(header[2]))
        self._proc.stdout.read(1)  # the newline after the contents
        return data

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin
            self._proc.stdin.close()
            self._proc.wait()


def from_git(repo_dir: Path, base: str, head: str = "HEAD") -> Source:
    """The changes of `head` since it forked from `base` (`git diff BASE...HEAD`)."""
    if not repo_dir.is_dir():
        raise UsageError(f"{repo_dir}: no such directory")
    _git(repo_dir, "rev-parse", "--git-dir")
    head_sha = _commit(repo_dir, head)
    _commit(repo_dir, base)
    # Fixed prefixes, no colour, no external diff driver and rename detection, so
    # the user's git config cannot change what we parse.
    data = _git(
        repo_dir, "diff", "--no-color", "--no-ext-diff", "--no-textconv", "-M",
        "--src-prefix=a/", "--dst-prefix=b/", f"{base}...{head}",
    )
    reader = _BlobReader(repo_dir, head_sha)
    return Source(f"{base}...{head}", data, read_head=reader, close=reader.close)
