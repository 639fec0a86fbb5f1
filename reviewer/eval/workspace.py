"""Each eval case as a real commit, kept out of the user's repository.

A case is reviewed by the real pipeline: `git diff` of the commit and the case,
and the repository tools (read_file, search_code, the verifier's quote check)
reading the tree *with the change*, as they would on a pull request. So every
case becomes a commit object, a child of the evaluated commit.

Those objects go into a bare scratch repository (`.reviewer/eval/cases.git`)
that borrows the user's objects through `objects/info/alternates`: nothing is
written into the user's repository (no object, no ref, no index, no working
tree), and the scratch repository can be deleted at any time (it is made again).
The commit is built from git's plumbing alone: the new blob
(`hash-object -w`), each tree on the path to it (`mktree`), then
`commit-tree` with fixed author, committer and dates, so a case's commit is the
same object every time it is made (a resumed run finds the same SHAs).
"""

from __future__ import annotations

import threading
from pathlib import Path

from .. import repo_view
from ..audit.plan import private_dir
from ..errors import UsageError
from ..repo_view import RepoView
from .models import Case

# Fixed identity and dates: the same case gives the same commit object.
_NAME, _EMAIL = "reviewer eval", "eval@reviewer.invalid"
_DATES = {"GIT_AUTHOR_DATE": "1700000000 +0000", "GIT_COMMITTER_DATE": "1700000000 +0000"}


class Workspace:
    """The scratch repository `where`, beside `repo_dir`'s, where the case commits live."""

    def __init__(self, repo_dir: Path, where: Path) -> None:
        self.repo_dir = repo_dir
        self.path = where
        self._lock = threading.Lock()
        objects = _text(repo_dir, "rev-parse", "--path-format=absolute", "--git-path", "objects")
        try:
            private_dir(where.parent)
            if not (where / "objects").is_dir():
                _text(where.parent, "init", "--quiet", "--bare", str(where.resolve()))
            alternates = where / "objects" / "info" / "alternates"
            alternates.parent.mkdir(parents=True, exist_ok=True)
            if not alternates.exists() or alternates.read_text().strip() != objects:
                alternates.write_text(objects + "\n")
        except OSError as exc:
            raise UsageError(f"{where}: cannot set up the eval's scratch repository: {exc.strerror or exc}") from None

    def commit(self, base: str, case: Case) -> str:
        """The SHA of the commit whose tree is `base`'s with `case.path` holding `case.new_text`."""
        with self._lock:
            oid = _text(self.path, "hash-object", "-w", "--stdin",
                        input=case.new_text.encode("utf-8", "surrogateescape"))
            parts = case.path.split("/")
            # From the file up to the root: each tree is its parent's listing with one oid changed.
            for depth in range(len(parts) - 1, -1, -1):
                directory = "/".join(parts[:depth])
                listing = _raw(self.path, "ls-tree", "-z", f"{base}:{directory}" if directory else f"{base}^{{tree}}")
                name = parts[depth].encode("utf-8", "surrogateescape")
                rebuilt, found = [], False
                for entry in (e for e in listing.split(b"\0") if e):
                    meta, _, entry_name = entry.partition(b"\t")
                    if entry_name == name:
                        mode, kind, _old = meta.split(b" ")
                        if kind != (b"blob" if depth == len(parts) - 1 else b"tree") or mode == b"120000":
                            break  # a link or a submodule where the case expects a file or a folder
                        entry, found = mode + b" " + kind + b" " + oid.encode() + b"\t" + entry_name, True
                    rebuilt.append(entry)
                if not found:
                    raise UsageError(f"{case.path}: not a file in the tree at {base[:12]}; the case does not apply")
                oid = _text(self.path, "mktree", "-z", input=b"\0".join(rebuilt) + b"\0")
            return _text(self.path, "-c", f"user.name={_NAME}", "-c", f"user.email={_EMAIL}", "commit-tree", oid,
                         "-p", base, "-m", f"reviewer eval case {case.id}", extra_env=_DATES)

    def view(self, commit: str) -> RepoView:
        """The case's tree, read like any reviewed commit (links not followed, reads capped)."""
        return RepoView(self.path, commit)


def _raw(where: Path, *args: str, input: bytes | None = None, extra_env: dict[str, str] | None = None) -> bytes:
    done = repo_view.run(where, *args, input=input, extra_env=extra_env)
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        command = next(a for a in args if not a.startswith("-") and "=" not in a)
        raise UsageError(f"{where}: git {command} failed: {message[0] if message else 'exit ' + str(done.returncode)}")
    return done.stdout


def _text(where: Path, *args: str, input: bytes | None = None, extra_env: dict[str, str] | None = None) -> str:
    return _raw(where, *args, input=input, extra_env=extra_env).decode().strip()
