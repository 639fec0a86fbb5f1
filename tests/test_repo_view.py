"""`reviewer.repo_view`: a read-only view of one commit, from git objects only, on real repositories."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reviewer.repo_view import NotARepository, PathRefused, RepoView, normalize
from tests.conftest import git


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A repository whose HEAD holds a file, an executable, a link to a file outside, a link to a directory,
    a binary file, a submodule and a file in a subdirectory; then its working tree is made to lie."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("CANARY-outside\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    git(sub, "init", "-q", "-b", "main")
    (sub / "inner.txt").write_text("inside the submodule\n")
    git(sub, "add", "-A")
    git(sub, "-c", "user.email=d@e", "-c", "user.name=D", "commit", "-qm", "sub")
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("print('committed')\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0IHDR")
    (root / "secret.lnk").symlink_to(outside / "secret.txt")
    (root / "etc").symlink_to(outside)
    git(root, "add", "-A")
    git(root, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "vendored")
    git(root, "commit", "-qm", "tree")
    # The checkout now differs from HEAD: none of this may be read.
    (root / "src" / "app.py").write_text("print('CANARY-working-tree')\n")
    (root / "untracked.txt").write_text("CANARY-untracked\n")
    return root


def test_a_file_is_read_from_the_commit_not_the_working_tree(tree: Path) -> None:
    with RepoView(tree) as view:
        blob = view.read("src/app.py")
    assert blob.data == b"print('committed')\n" and blob.size == len(blob.data)
    assert not blob.truncated and not blob.is_link and not blob.binary and blob.mode == "100644"


def test_a_symlink_is_its_target_text_marked_as_a_link_and_never_followed(tree: Path) -> None:
    with RepoView(tree) as view:
        blob = view.read("secret.lnk")
        assert blob.is_link and blob.mode == "120000"
        assert blob.data == str(tree.parent / "outside" / "secret.txt").encode()
        with pytest.raises(PathRefused, match="passes through the symbolic link 'etc', which is not followed"):
            view.read("etc/secret.txt")


def test_a_submodule_is_listed_but_not_entered(tree: Path) -> None:
    with RepoView(tree) as view:
        kinds = {e.path: e.kind for e in view.entries()}
        assert kinds["vendored"] == "submodule" and not any(p.startswith("vendored/") for p in kinds)
        with pytest.raises(PathRefused, match="is a submodule, which is not entered"):
            view.read("vendored")
        with pytest.raises(PathRefused, match="inside the submodule 'vendored'"):
            view.read("vendored/inner.txt")


def test_the_listing_has_modes_and_sizes_and_no_untracked_file(tree: Path) -> None:
    with RepoView(tree) as view:
        listed = {e.path: e for e in view.entries()}
        assert sorted(listed) == [".gitmodules", "etc", "logo.png", "run.sh", "secret.lnk", "src/app.py", "vendored"]
        assert listed["run.sh"].mode == "100755" and listed["etc"].kind == "link"
        assert listed["src/app.py"].size == len("print('committed')\n")
        assert [e.path for e in view.entries("src")] == ["src/app.py"]


@pytest.mark.parametrize("path, reason", [
    ("/etc/passwd", "is an absolute path"),
    ("../outside/secret.txt", "has a '..' component"),
    ("src/../../outside/secret.txt", "has a '..' component"),
    ("src/app.py\0.txt", "contains a NUL byte"),
    ("src/app.py\nsrc/app.py", "contains a line break"),
    ("", "is empty"),
    ("untracked.txt", "is not in the tree at"),
    (".git/config", "is not in the tree at"),
    ("src/app.py/x", "is not in the tree at"),
    ("src", "is a directory"),
])
def test_paths_outside_the_tree_are_refused_with_the_reason(tree: Path, path: str, reason: str) -> None:
    with RepoView(tree) as view, pytest.raises(PathRefused, match=reason.replace(".", r"\.")) as refused:
        view.read(path)
    assert refused.value.exit_code == 2 and "\n" not in str(refused.value)


def test_dot_components_and_slashes_are_normalised() -> None:
    assert normalize("./src//app.py/") == "src/app.py"


def test_a_read_over_its_cap_is_cut_and_says_so(tree: Path) -> None:
    big = tree / "big.txt"
    big.write_bytes(b"x" * 3_000_000)
    git(tree, "add", "big.txt")
    git(tree, "commit", "-qm", "big")
    with RepoView(tree) as view:
        blob = view.read("big.txt", max_bytes=10)
        assert blob.data == b"x" * 10 and blob.truncated and blob.size == 3_000_000
        # The process is still in step after dropping the rest.
        assert view.read("src/app.py").data == b"print('committed')\n"


def test_a_file_read_again_is_the_same_and_a_smaller_cap_still_cuts_it(tree: Path) -> None:
    (tree / "notes.txt").write_bytes(b"0123456789" * 10)
    (tree / "copy.lnk").symlink_to("notes.txt")
    git(tree, "add", "notes.txt", "copy.lnk")
    git(tree, "commit", "-qm", "notes")
    with RepoView(tree) as view:
        whole = view.read("notes.txt")
        again = view.read("notes.txt")
        cut = view.read("notes.txt", max_bytes=10)
        link = view.read("copy.lnk")
        other = view.read("src/app.py")
    assert whole == again and whole.data == b"0123456789" * 10 and not whole.truncated
    assert cut.data == b"0123456789" and cut.truncated and cut.size == 100
    assert link.is_link and link.data == b"notes.txt" and not whole.is_link
    assert other.data == b"print('committed')\n"


def test_binary_content_is_detected(tree: Path) -> None:
    with RepoView(tree) as view:
        assert view.read("logo.png").binary


def test_a_missing_commit_or_a_folder_that_is_no_repository_is_a_usage_error(tree: Path, tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(NotARepository, match="is not a git repository"):
        RepoView(tmp_path / "plain")
    with pytest.raises(NotARepository, match="'nope' is not a commit"):
        RepoView(tree, "nope")
    with pytest.raises(NotARepository, match="is not a commit"):
        RepoView(tree, "--output=/tmp/x")


def test_git_environment_variables_cannot_point_the_view_elsewhere(tree: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q", "-b", "main")
    (other / "src").mkdir()
    (other / "src" / "app.py").write_text("CANARY-other-repository\n")
    git(other, "add", "-A")
    git(other, "-c", "user.email=d@e", "-c", "user.name=D", "commit", "-qm", "other")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_OBJECT_DIRECTORY", str(other / ".git" / "objects"))
    with RepoView(tree) as view:
        assert view.read("src/app.py").data == b"print('committed')\n"


def test_replace_refs_do_not_substitute_other_content(tree: Path) -> None:
    original = git(tree, "rev-parse", "HEAD:src/app.py").strip()
    fake = subprocess.run(["git", "-C", str(tree), "hash-object", "-w", "--stdin"], input="CANARY-replaced\n",
                          capture_output=True, text=True, check=True).stdout.strip()
    git(tree, "replace", original, fake)
    with RepoView(tree) as view:
        assert view.read("src/app.py").data == b"print('committed')\n"


def test_a_folder_inside_the_repository_sees_its_place_in_it(tree: Path) -> None:
    with RepoView(tree / "src") as view:
        assert view.prefix == "src/"
        assert view.read(view.prefix + "app.py").data == b"print('committed')\n"


def test_the_git_process_ends_with_the_view(tree: Path) -> None:
    view = RepoView(tree)
    view.read("src/app.py")
    proc = view._proc
    assert proc is not None and proc.poll() is None
    view.close()
    assert proc.poll() is not None
    assert view.read("run.sh").mode == "100755"  # a closed view starts again
    view.close()
