"""Unified diff -> `Diff`: reviewable files with GitHub's commentable lines, and skips.

Commentable lines follow GitHub's review-comment rules (shared/specs/github.md §1):
RIGHT = added and context lines numbered in the new file, LEFT = removed and
context lines numbered in the old file, nothing outside a hunk.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Callable, Iterable, Literal, Mapping, Sequence

import unidiff
from unidiff.constants import LINE_TYPE_NO_NEWLINE

from .errors import UsageError
from .models import Diff, FileDiff, Hunk, Skipped

# The files at head for a list of paths, in one go where the source can batch
# them (one GraphQL query for a pull request); a path it cannot read maps to None.
HeadReader = Callable[[Sequence[str]], Mapping[str, "bytes | None"]]


def decode(data: bytes) -> str:
    """Diff bytes as text; bytes that are not UTF-8 become U+FFFD, line structure kept."""
    return data.decode("utf-8", errors="replace")


def matching_glob(path: str, globs: Iterable[str]) -> str | None:
    """The first glob that matches `path`, or None.

    A glob without `/` matches the file name in any folder; one with `/` matches
    the path from the root or below any folder (`vendor/**` skips `a/vendor/x`).
    fnmatch's `*` also crosses `/`, so `**` needs no special case.
    """
    name = path.rsplit("/", 1)[-1]
    for glob in globs:
        if "/" not in glob:
            if fnmatch.fnmatchcase(name, glob):
                return glob
        elif fnmatch.fnmatchcase(path, glob) or fnmatch.fnmatchcase(path, "*/" + glob.lstrip("/")):
            return glob
    return None


def _strip_prefix(name: str | None) -> str | None:
    if name is None or name == "/dev/null":
        return None
    for prefix in ("a/", "b/"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def _render(hunk: unidiff.Hunk) -> Hunk:
    new_lines: dict[int, str] = {}
    old_lines: dict[int, str] = {}
    added: set[int] = set()
    removed: set[int] = set()
    header = f"@@ -{hunk.source_start},{hunk.source_length} +{hunk.target_start},{hunk.target_length} @@"
    if hunk.section_header:
        header += " " + hunk.section_header
    raw = [header + "\n"]
    shown = [header]
    for line in hunk:
        value = line.value.rstrip("\r\n")
        raw.append(f"{line.line_type}{line.value}" if line.value.endswith("\n") else f"{line.line_type}{line.value}\n")
        old = line.source_line_no
        new = line.target_line_no
        if line.line_type == LINE_TYPE_NO_NEWLINE:
            shown.append(f"{'':>6} {'':>6} |\\{value}")
            continue
        if line.is_added and new is not None:
            new_lines[new] = value
            added.add(new)
        elif line.is_removed and old is not None:
            old_lines[old] = value
            removed.add(old)
        elif line.is_context and old is not None and new is not None:
            new_lines[new] = value
            old_lines[old] = value
        shown.append(f"{old if old is not None else '':>6} {new if new is not None else '':>6} |{line.line_type}{value}")
    return Hunk(
        header=header,
        text="".join(raw),
        new_lines=new_lines,
        old_lines=old_lines,
        added=frozenset(added),
        removed=frozenset(removed),
        rendered="\n".join(shown) + "\n",
    )


def _is_submodule(patched: unidiff.PatchedFile) -> bool:
    values = [line.value for hunk in patched for line in hunk if not line.is_context]
    return bool(values) and all(v.startswith("Subproject commit ") for v in values)


def _patch_size(patched: unidiff.PatchedFile) -> int:
    return sum(len(line.value) for hunk in patched for line in hunk)


def parse(
    text: str,
    *,
    ignore: Iterable[str] = (),
    max_file_bytes: int | None = None,
    read_head: HeadReader | None = None,
) -> Diff:
    """Parse a unified diff (git or plain) into reviewable files and recorded skips.

    `read_head(path)` returns the file at head when the source has it (a local
    repository or a pull request); it gives the per-file pass surrounding context
    and the size check the real file size. Raises UsageError when `text` is not
    a unified diff.
    """
    try:
        patch = unidiff.PatchSet(text)
    except unidiff.UnidiffParseError as exc:
        raise UsageError(f"cannot parse the diff: {exc}") from exc
    if not len(patch) and text.strip() and not _has_git_headers(text):
        raise UsageError("the input is not a unified diff (no file headers found)")
    globs = tuple(ignore)
    files: list[FileDiff] = []
    skipped: list[Skipped] = []
    candidates: list[tuple[Any, str, str | None]] = []
    for patched in patch:
        path = _strip_prefix(patched.target_file) or _strip_prefix(patched.source_file) or patched.path
        reason = _skip_reason(patched, path, globs)
        if reason:
            skipped.append(Skipped(path, reason))
        else:
            candidates.append((patched, path, _strip_prefix(patched.source_file)))
    heads = read_head([path for _, path, _ in candidates]) if read_head is not None and candidates else {}
    for patched, path, old_path in candidates:
        head: str | None = None
        size = _patch_size(patched)
        if read_head is not None:
            data = heads.get(path)
            if data is not None:
                size = len(data)
                if max_file_bytes is None or size <= max_file_bytes:
                    head = decode(data)
        if max_file_bytes is not None and size > max_file_bytes:
            skipped.append(Skipped(path, f"over the size limit ({size:,} bytes > {max_file_bytes:,})"))
            continue
        status: Literal["added", "modified", "renamed"] = (
            "added" if patched.is_added_file else "renamed" if patched.is_rename else "modified"
        )
        files.append(
            FileDiff(
                path=path,
                status=status,
                hunks=tuple(_render(h) for h in patched),
                old_path=old_path if patched.is_rename else None,
                head_text=head,
            )
        )
    return Diff(files=tuple(files), skipped=tuple(skipped))


def _has_git_headers(text: str) -> bool:
    # `git diff` of mode-only or rename-only changes still has headers unidiff
    # parses; anything with a `diff --git` line is a diff even if it has no hunks.
    return "diff --git " in text


def _skip_reason(patched: unidiff.PatchedFile, path: str, globs: tuple[str, ...]) -> str | None:
    if patched.is_binary_file:
        return "binary"
    if patched.is_removed_file:
        return "deleted"
    glob = matching_glob(path, globs)
    if glob:
        return f"ignored by {glob}"
    if not len(patched):
        if patched.is_rename:
            return "renamed without content changes"
        if patched.is_added_file:
            return "empty file"
        return "no content change (mode or metadata only)"
    if _is_submodule(patched):
        return "submodule"
    return None
