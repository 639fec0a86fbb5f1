"""The diff model: commentable lines per side and skips, one edge case per data file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reviewer import diff
from reviewer.config import Config
from reviewer.errors import UsageError

DIFFS = Path(__file__).parent / "data" / "diffs"
CASES = sorted(p.stem for p in DIFFS.glob("*.diff"))


@pytest.mark.parametrize("case", CASES)
def test_diff_edge_case_matches_expected_lines_and_skips(case: str) -> None:
    """Each data file's expected result: its files and skips, or (`"error"`) the start of the one-line error."""
    expected = json.loads((DIFFS / f"{case}.expected.json").read_text())
    if "error" in expected:
        with pytest.raises(UsageError) as raised:
            diff.parse(diff.decode((DIFFS / f"{case}.diff").read_bytes()), ignore=Config().ignore_globs)
        assert str(raised.value).startswith(expected["error"])
        assert "\n" not in str(raised.value)
        return
    parsed = diff.parse(diff.decode((DIFFS / f"{case}.diff").read_bytes()), ignore=Config().ignore_globs)
    assert {s.path: s.reason for s in parsed.skipped} == expected["skipped"]
    assert [f.path for f in parsed.files] == list(expected["files"])
    for f in parsed.files:
        want = expected["files"][f.path]
        assert f.status == want["status"]
        assert f.old_path == want["old_path"]
        assert sorted(f.commentable("RIGHT")) == want["right"]
        assert sorted(f.commentable("LEFT")) == want["left"]
        assert sorted(n for h in f.hunks for n in h.added) == want["added"]
        assert sorted(n for h in f.hunks for n in h.removed) == want["removed"]
        assert len(f.hunks) == want["hunks"]


def test_crlf_line_endings_do_not_leak_into_line_text() -> None:
    parsed = diff.parse(diff.decode((DIFFS / "crlf.diff").read_bytes()))
    assert parsed.files[0].line_text(2, "RIGHT") == "TWO"
    assert parsed.files[0].line_text(2, "LEFT") == "two"


def test_non_utf8_bytes_are_replaced_not_fatal() -> None:
    parsed = diff.parse(diff.decode((DIFFS / "non_utf8.diff").read_bytes()))
    assert "\ufffd" in parsed.files[0].line_text(1, "RIGHT")


def test_no_newline_marker_is_shown_to_the_model_but_not_commentable() -> None:
    f = diff.parse(diff.decode((DIFFS / "no_newline.diff").read_bytes())).files[0]
    assert "No newline at end of file" in f.hunks[0].rendered
    assert sorted(f.commentable("RIGHT")) == [1, 2]


def test_text_that_is_not_a_diff_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not a unified diff"):
        diff.parse("hello\nthis is prose, not a patch\n")


def test_malformed_hunk_is_a_usage_error() -> None:
    broken = "--- a/x.py\n+++ b/x.py\n@@ -1,3 +1,3 @@\n-a\n+b\n"
    with pytest.raises(UsageError, match="cannot parse the diff"):
        diff.parse(broken)


def test_oversized_file_is_skipped_with_its_size() -> None:
    text = (DIFFS / "added_file.diff").read_text()
    parsed = diff.parse(text, max_file_bytes=10, read_head=lambda paths: {p: b"x" * 50 for p in paths})
    assert parsed.skipped[0].path == "added.py"
    assert "over the size limit (50 bytes > 10)" == parsed.skipped[0].reason


def test_user_ignore_glob_matches_nested_paths() -> None:
    assert diff.matching_glob("src/vendor/lib/a.py", ["vendor/**"]) == "vendor/**"
    assert diff.matching_glob("deep/dir/yarn.lock", ["*.lock"]) == "*.lock"
    assert diff.matching_glob("src/app.py", ["vendor/**", "*.lock"]) is None


def test_rendered_hunk_numbers_both_sides_for_the_model() -> None:
    f = diff.parse((DIFFS / "multi_hunk.diff").read_text()).files[0]
    rendered = f.hunks[0].rendered.splitlines()
    assert rendered[0].startswith("@@ -1,6 +1,6 @@")
    assert any(line.split("|")[0].split() == ["3"] and line.split("|", 1)[1].startswith("-") for line in rendered)
    assert "     3      3 |" not in f.hunks[0].rendered  # line 3 changed: no context line 3/3


def test_git_quoted_names_are_unquoted_as_git_means_them() -> None:
    assert diff.unquote('"b/caf\\303\\251.py"') == "b/caf\u00e9.py"
    assert diff.unquote('"a/q\\"uote\\\\x\\ty\\nz"') == 'a/q"uote\\x\ty\nz'
    assert diff.unquote("b/plain name.py") == "b/plain name.py"
    assert diff.unquote('"b/not\\qgit"') == '"b/not\\qgit"'  # an escape git never writes: left as written
    assert diff.unquote('"b/\\377.py"') == "b/\ufffd.py"  # not UTF-8: replaced, as in the diff text


def test_a_path_is_shown_with_control_bidi_and_backslash_escaped() -> None:
    assert diff.shown_path("caf\u00e9.py") == "caf\u00e9.py"
    assert diff.shown_path("evil\u202egnp.py") == "evil\\u202egnp.py"
    assert diff.shown_path("a\nb\tc\x1b[31m.py") == "a\\nb\\tc\\x1b[31m.py"
    assert diff.shown_path("zero\u200bwidth.py") == "zero\\u200bwidth.py"
    assert diff.shown_path("back\\slash.py") == "back\\\\slash.py"
    assert diff.shown_path("bad\udcffbyte") == "bad\\xffbyte"


def test_packaging_metadata_is_skipped_by_the_default_ignores() -> None:
    globs = Config().ignore_globs
    assert diff.matching_glob("src/reviewer.egg-info/SOURCES.txt", globs) == "*.egg-info/**"
    assert diff.matching_glob("reviewer.egg-info/PKG-INFO", globs) == "*.egg-info/**"
    assert diff.matching_glob("PKG-INFO", globs) == "PKG-INFO"
    assert diff.matching_glob("src/eggs/info.py", globs) is None
