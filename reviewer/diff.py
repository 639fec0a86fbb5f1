"""Unified diff -> `Diff`: reviewable files with GitHub's commentable lines, and skips.

Commentable lines follow GitHub's review-comment rules (`line` and `side` in
https://docs.github.com/en/rest/pulls/comments#create-a-review-comment-for-a-pull-request):
RIGHT = added and context lines numbered in the new file, LEFT = removed and
context lines numbered in the old file, nothing outside a hunk.

File names are read as git means them (`unquote`) and shown to people through
`shown_path`. A hunk whose body runs past its header's counts is a malformed
diff (UsageError), not a shorter hunk.
"""

from __future__ import annotations

import fnmatch
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

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


# git's C-style quoting of a file name (quote.c, `quote_c_style`): the name in
# double quotes, with these escapes and other bytes below 0x20, 0x7f and, under
# core.quotePath (the default), every byte of 0x80 and above in octal.
_C_ESCAPES = {"a": 0x07, "b": 0x08, "t": 0x09, "n": 0x0A, "v": 0x0B, "f": 0x0C, "r": 0x0D, '"': 0x22, "\\": 0x5C}
_OCTAL = re.compile(r"[0-3][0-7]{2}")


def unquote(name: str) -> str:
    """A file name from a diff header as git means it: `"b/caf\\303\\251.py"` -> `b/café.py`.

    A name that is not in double quotes is returned as is, and so is one whose
    escapes are not git's. Bytes that are not UTF-8 become U+FFFD, as in the
    rest of the diff (`decode`).
    """
    if len(name) < 2 or name[0] != '"' or name[-1] != '"':
        return name
    body, out, i = name[1:-1], bytearray(), 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out += ch.encode("utf-8", "surrogateescape")
            i += 1
        elif body[i + 1:i + 2] in _C_ESCAPES:
            out.append(_C_ESCAPES[body[i + 1]])
            i += 2
        elif _OCTAL.match(body, i + 1):
            out.append(int(body[i + 1:i + 4], 8))
            i += 4
        else:
            return name
    return out.decode("utf-8", errors="replace")


def shown_path(path: str) -> str:
    """`path` as shown to people (reports, comments, notes, messages), never as used to find the file.

    Control, format (bidirectional overrides such as U+202E, zero-width
    characters) and other non-printable characters are written as Python
    escapes (`\\n`, `\\u202e`), a backslash as `\\\\` so an escape cannot be
    faked, and a byte that is not UTF-8 (kept by surrogateescape) as `\\xNN`:
    a name cannot reorder the text around it, hide part of itself or start a
    new line in a log or a comment.
    """
    out = []
    for ch in path:
        if 0xDC80 <= ord(ch) <= 0xDCFF:
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ch == "\\":
            out.append("\\\\")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def _strip_prefix(name: str | None) -> str | None:
    if name is None:
        return None
    name = unquote(name)
    if name == "/dev/null":
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
    _check_hunk_lengths(text)
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
        path = _strip_prefix(patched.target_file) or _strip_prefix(patched.source_file) or unquote(patched.path)
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


_HUNK_HEADER = re.compile(r"@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")


def _header_name(line: str) -> str:
    """The file name of a `--- NAME` or `+++ NAME[<tab>timestamp]` line, prefix and quoting undone."""
    return _strip_prefix(line[4:].rstrip("\r\n").split("\t", 1)[0]) or ""


def _check_hunk_lengths(text: str) -> None:
    """UsageError naming the file and the hunk when a hunk's body is longer than its header counts.

    unidiff stops reading a hunk where its counts end and passes over what
    follows up to the next file: lines past the count were neither shown to
    the model nor noted (issue 11, item 11). Past the end of a hunk may come a
    `\\ No newline` marker, blank lines, the next hunk or file header, or text
    that is not part of a diff (`git log -p`, the `-- ` signature of
    `git format-patch`); a `+`, `-` or ` ` line there is a line the header
    does not count. A body shorter than its header is left to unidiff.
    """
    lines = list(io.StringIO(text))  # split as unidiff splits: on "\n" only
    path, old_path, hunk, header = "", "", 0, ""
    old = new = 0
    state = "outside"
    for i, line in enumerate(lines):
        if state == "inside":
            kind = line[:1] if line.strip("\r\n") else " "  # an empty line is context, as unidiff reads it
            if kind == "\\":
                continue
            if kind in "+- ":
                old -= kind in "- "
                new -= kind in "+ "
                if old < 0 or new < 0:
                    _too_long(path, hunk, header, i + 1)
                if old == 0 and new == 0:
                    state = "after"
                continue
            state = "outside"  # cut short: unidiff says so
        elif state == "after":
            if line.startswith("\\") or not line.strip("\r\n"):
                continue
            header_pair = line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ ")
            if line[:1] in "+ " or (line[:1] == "-" and not header_pair and line.rstrip("\r\n") not in ("--", "-- ")):
                _too_long(path, hunk, header, i + 1)
            state = "outside"
        if line.startswith("diff --git "):
            path, old_path, hunk = "", "", 0
        elif line.startswith("--- "):
            old_path, hunk = _header_name(line), 0
        elif line.startswith("+++ "):
            path = _header_name(line) or old_path
        elif line.startswith("@@ "):
            match = _HUNK_HEADER.match(line)
            if match:
                hunk += 1
                header = match.group(0)
                old = 1 if match.group(1) is None else int(match.group(1))
                new = 1 if match.group(2) is None else int(match.group(2))
                state = "inside" if old or new else "after"


def _too_long(path: str, hunk: int, header: str, line_no: int) -> None:
    raise UsageError(f"malformed diff: in '{shown_path(path or '(unnamed file)')}', hunk {hunk} ({header}) has more "
                     f"lines than its header counts (line {line_no} of the diff is past its end), so they would not "
                     "be reviewed; regenerate the diff or correct the header")


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
