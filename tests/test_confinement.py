"""Nothing outside the repository at the reviewed commit is read (issue 11, items 1 and 2).

`guidelines_file` comes from git at HEAD of --repo-dir, and the audit reads
what it sends from git objects at the audited commit, so an absolute path, a
`..` path, a link, a FIFO or a huge file can neither leak a file of the machine
into a request nor hang a run. Where a run could hang before the fix, it runs
in a subprocess under a timeout. The canary test plants secrets in the
environment, in `~/.ssh/id_rsa` and behind links to `/proc/self/environ`, and
checks every request body the emulator received and every output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reviewer.cli import main
from tests.audit_model import audit_model, batch_outcome
from tests.conftest import API_KEY, git
from tests.model_script import ScriptedModel, pass_of
from tests.security_table import case

CANARY = "CANARY-7f3a9c1e-outside-the-repository"
# A hung run is a failure, not a hung test suite.
TIMEOUT = 60


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`reviewer ARGS` in a child process that is killed after TIMEOUT seconds."""
    code = "import sys; from reviewer.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=TIMEOUT,
                          env=env, cwd=cwd or Path(__file__).resolve().parent.parent)


def commit_all(repo: Path, message: str = "change") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message, "--allow-empty")


def new_repo(root: Path, files: dict[str, str | bytes], links: dict[str, Path] | None = None) -> Path:
    """A repository of two commits; the second changes app.py and adds `files` and the symbolic `links`."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    (root / "app.py").write_text("def mean(xs):\n    return sum(xs) / len(xs)\n")
    commit_all(root, "base")
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    for name, target in (links or {}).items():
        (root / name).symlink_to(target)
    (root / "app.py").write_text("def mean(xs):\n    return sum(xs) / max(len(xs), 1)\n")
    commit_all(root, "head")
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the repository holding the canary, and a stand-in for /proc/self/environ."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.md").write_text(f"Always obey: {CANARY}\n")
    (folder / "app.py").write_text(f"password = '{CANARY}'\n")
    (folder / "environ").write_bytes(f"MY_API_TOKEN={CANARY}\0PGPASSWORD={CANARY}\0".encode())
    return folder


def review_dry_run(capsys: pytest.CaptureFixture[str], repo: Path) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["review", "--repo-dir", str(repo), "--base", "HEAD~1", "--dry-run"])
    out, err = capsys.readouterr()
    return code, out, err


def refused(code: int, out: str, err: str, *words: str) -> None:
    """Exit 2 with one line on stderr naming the key and saying why; the canary nowhere."""
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("reviewer: error: ") and "'guidelines_file'" in err, err
    for word in words:
        assert word in err, err
    assert CANARY not in out + err


# ------------------------------------------------------------- guidelines_file


@case("confinement", "`guidelines_file` names an absolute path, a `../` path, a committed link to a file outside "
      "the repository or to a stand-in for `/proc/self/environ`, or a path through a committed link to a folder "
      "outside",
      "exit 2 with one line naming `guidelines_file` and the reason; the file outside is never read",
      )
@pytest.mark.parametrize("setting, links, reason", [
    ("{outside}/secret.md", {}, "is an absolute path"),
    ("../outside/secret.md", {}, "has a '..' component"),
    ("GUIDE.md", {"GUIDE.md": "{outside}/secret.md"}, "is a symbolic link"),
    ("GUIDE.md", {"GUIDE.md": "{outside}/environ"}, "is a symbolic link"),
    ("docs/secret.md", {"docs": "{outside}"}, "passes through the symbolic link 'docs'"),
], ids=["absolute", "dotdot", "link-to-file", "link-to-environ", "through-linked-dir"])
def test_guidelines_file_outside_the_repository_is_a_config_error(no_anthropic, tmp_path: Path, outside: Path,
                                                                  capsys, setting: str, links: dict[str, str],
                                                                  reason: str) -> None:
    links = {name: Path(target.format(outside=outside)) for name, target in links.items()}
    repo = new_repo(tmp_path / "repo", {".reviewer.toml": f'guidelines_file = "{setting.format(outside=outside)}"\n'},
                    links)
    refused(*review_dry_run(capsys, repo), reason)


@case("confinement", "`guidelines_file` is a FIFO: not in git, or a committed file replaced by a FIFO in the checkout",
      "never opened, so nothing hangs: the untracked one is exit 2 naming `guidelines_file` (not in git at HEAD), "
      "the replaced one is read from git at HEAD")
def test_guidelines_file_that_is_a_fifo_never_hangs(no_anthropic, tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo", {"REVIEW.md": "Prefer pathlib.\n"})
    os.mkfifo(repo / "FIFO.md")
    (repo / ".reviewer.toml").write_text('guidelines_file = "FIFO.md"\n')
    done = cli("review", "--repo-dir", str(repo), "--base", "HEAD~1", "--dry-run")
    assert done.returncode == 2 and "'guidelines_file' 'FIFO.md' is not in the tree at" in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1
    # A committed file replaced by a FIFO in the working tree: git's copy is what counts.
    (repo / "REVIEW.md").unlink()
    os.mkfifo(repo / "REVIEW.md")
    (repo / ".reviewer.toml").write_text('guidelines_file = "REVIEW.md"\n')
    load = ("import sys; from pathlib import Path; from reviewer import config; "
            "print(config.load(None, Path(sys.argv[1])).guidelines)")
    shown = subprocess.run([sys.executable, "-c", load, str(repo)], capture_output=True, text=True, timeout=TIMEOUT)
    assert shown.returncode == 0 and shown.stdout == "Prefer pathlib.\n", shown.stderr


@case("confinement", "`guidelines_file` is a committed 1 MB file (a `/dev/zero` would be endless)",
      "exit 2 naming `guidelines_file` and the 64 KiB limit; at most 64 KiB of it is read")
def test_guidelines_file_over_the_size_limit_is_a_config_error(no_anthropic, tmp_path: Path, capsys) -> None:
    repo = new_repo(tmp_path / "repo", {"REVIEW.md": "Prefer pathlib.\n" * 65_536,
                                        ".reviewer.toml": 'guidelines_file = "REVIEW.md"\n'})
    refused(*review_dry_run(capsys, repo), "1,048,576 bytes, over the limit of 65,536 bytes")


@case("confinement", "`guidelines_file` is set but --repo-dir is not a git repository, or the file is not committed",
      "exit 2 naming `guidelines_file`: it needs a git repository / is not in the tree at HEAD; the working tree is "
      "not read")
def test_guidelines_file_needs_a_git_repository(no_anthropic, tmp_path: Path, capsys) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "REVIEW.md").write_text(f"{CANARY}\n")
    (plain / ".reviewer.toml").write_text('guidelines_file = "REVIEW.md"\n')
    patch = tmp_path / "change.diff"
    patch.write_text("--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n")
    capsys.readouterr()
    code = main(["review", "--repo-dir", str(plain), "--diff", str(patch), "--dry-run"])
    out, err = capsys.readouterr()
    refused(code, out, err, "needs a git repository")
    repo = new_repo(tmp_path / "repo", {".reviewer.toml": 'guidelines_file = "REVIEW.md"\n'})
    (repo / "REVIEW.md").write_text(f"{CANARY}\n")  # in the working tree only
    refused(*review_dry_run(capsys, repo), "is not in the tree at", "commit it")


# ---------------------------------------------------------------------- audit


@pytest.fixture
def emu(anthropic_emu, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REVIEWER_AUDIT_POLL_SECONDS", "0.02")
    monkeypatch.setenv("REVIEWER_AUDIT_SETTLE_SECONDS", "0.2")
    monkeypatch.delenv("REVIEWER_WEBHOOK_URL", raising=False)
    anthropic_emu.batch_processing_seconds = 0.05
    review_model = ScriptedModel()
    anthropic_emu.responder = lambda body: review_model(body) if pass_of(body) != "other" else audit_model(body)
    anthropic_emu.batch_outcome = batch_outcome
    return anthropic_emu


def bodies(emu) -> str:
    """Every request body the emulator received, as one text."""
    return "\n".join(json.dumps(r.body) for r in emu.requests)


def written(repo: Path) -> str:
    folder = repo / ".reviewer" / "audit"
    return "\n".join(p.read_text(errors="replace") for p in sorted(folder.glob("*")) if p.is_file())


@case("confinement", "audit: a tracked folder replaced in the checkout by a link to a folder outside holding a "
      "canary, and a tracked file edited without a commit",
      "the audit reads git objects at HEAD: the committed text is sent, the link is not followed and the "
      "uncommitted edit is not sent; the canary is in no request body, report or output")
def test_audit_never_follows_a_tracked_folder_replaced_by_a_link(emu, tmp_path: Path, outside: Path, capsys) -> None:
    repo = new_repo(tmp_path / "repo", {"src/app.py": "def f(x):\n    return 1 / x  # BUG\n",
                                        "lib/util.py": "def g():\n    return 2\n"})
    head = git(repo, "rev-parse", "HEAD").strip()
    subprocess.run(["rm", "-rf", str(repo / "src")], check=True)
    (repo / "src").symlink_to(outside)
    (repo / "lib" / "util.py").write_text(f"token = '{CANARY}'\n")
    capsys.readouterr()
    code = main(["audit", "run", "--wait", "--timeout", "30", "--canary", "1", "--repo-dir", str(repo)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert CANARY not in bodies(emu) and CANARY not in out + err + written(repo)
    assert "return 1 / x  # BUG" in bodies(emu)  # the committed src/app.py was audited
    doc = json.loads((repo / ".reviewer" / "audit" / "audit.json").read_text())
    assert doc["run"]["commit"] == head
    assert [f["file"] for f in doc["findings"]] == ["src/app.py"]


@case("confinement", "audit: a tracked file replaced in the checkout by a FIFO",
      "`audit plan` ends (no open of the FIFO) and plans the file's committed text")
def test_audit_plan_does_not_open_a_tracked_file_replaced_by_a_fifo(no_anthropic, tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo", {"pipe.py": "x = 1\n"})
    (repo / "pipe.py").unlink()
    os.mkfifo(repo / "pipe.py")
    done = cli("audit", "plan", "--repo-dir", str(repo), "--format", "json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert "pipe.py" in plan["files"] and plan["commit"] == git(repo, "rev-parse", "HEAD").strip()


# ----------------------------------------------------------- canary secrets


CANARIES = {
    "MY_API_TOKEN": "canary-token-5b1d7e0a93",
    "PGPASSWORD": "canary-pgpass-2c8f4a61d7",
    "DB_SECRET": "canary-dbsecret-9e3b6f02c4",
}
SSH_CANARY = "canary-sshkey-71d0c9a5e8"


def planted_env(emu, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "REVIEWER_", "GITHUB_"))}
    env |= CANARIES | {
        "HOME": str(home), "ANTHROPIC_API_KEY": API_KEY, "ANTHROPIC_BASE_URL": emu.base_url,
        "REVIEWER_AUDIT_POLL_SECONDS": "0.02", "REVIEWER_AUDIT_SETTLE_SECONDS": "0.2",
    }
    return env


@case("confinement", "canary secrets in environment variables (`MY_API_TOKEN`, `PGPASSWORD`, `DB_SECRET`), in "
      "`~/.ssh/id_rsa`, behind committed links to `/proc/self/environ` (as `guidelines_file` and as an audited "
      "file) and to `~/.ssh/id_rsa`, and a tracked folder replaced by a link to `~/.ssh`",
      "`review`, `audit run` and `eval run` (sync and `--batch`) refuse the linked guidelines (exit 2, nothing "
      "sent), then run with the links in the diff and the tree; no canary in any request body the API received, stdout, stderr or written report")
def test_no_canary_secret_reaches_a_request_or_an_output(emu, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{SSH_CANARY}\n")
    repo = new_repo(tmp_path / "repo", {"keys/README.md": "Deploy keys live elsewhere.\n",
                                        "util.py": "def median(xs):\n    return sorted(xs)[len(xs) // 2]\n",
                                        "shop.py": ("def take(items, n, strict=True):\n    if items is None:\n"
                                                    "        return []\n    if n > len(items) and strict:\n"
                                                    "        raise ValueError(n)\n    return items[:n]\n")})
    (repo / "GUIDE.md").symlink_to("/proc/self/environ")
    (repo / "environ.txt").symlink_to("/proc/self/environ")
    (repo / "id_rsa").symlink_to(home / ".ssh" / "id_rsa")
    (repo / ".reviewer.toml").write_text('guidelines_file = "GUIDE.md"\n')
    commit_all(repo, "links")
    subprocess.run(["rm", "-rf", str(repo / "keys")], check=True)
    (repo / "keys").symlink_to(home / ".ssh")
    env = planted_env(emu, home)
    report = tmp_path / "review.json"
    outputs: list[str] = []
    secrets = [*CANARIES.values(), SSH_CANARY]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = cli(*args, "--repo-dir", str(repo), env=env)
        outputs.extend([done.stdout, done.stderr])
        everything = bodies(emu) + "\n".join(outputs) + written(repo)
        everything += report.read_text() if report.exists() else ""
        assert not [value for value in secrets if value in everything], args
        return done

    # The guidelines link is refused before anything is sent.
    for args in (("review", "--base", "HEAD~2", "--format", "json", "--output", str(report)),
                 ("audit", "run", "--wait", "--timeout", "30", "--canary", "1"),
                 ("eval", "run", "--planted", "3", "--controls", "1")):
        done = run(*args)
        assert done.returncode == 2 and "'guidelines_file' 'GUIDE.md' is a symbolic link" in done.stderr, done.stderr
    assert not emu.requests
    # Without it, the links are in the diff and in the tree: their target text travels, never what they point at.
    (repo / ".reviewer.toml").write_text("")
    done = run("review", "--base", "HEAD~2", "--format", "json", "--output", str(report))
    assert done.returncode == 0, done.stderr
    done = run("audit", "run", "--wait", "--timeout", "30", "--canary", "1")
    assert done.returncode == 0, done.stderr
    for args in (("eval", "run", "--planted", "3", "--controls", "1", "--format", "json"),
                 ("eval", "run", "--planted", "3", "--controls", "1", "--batch", "--timeout", "30")):
        before = len(emu.requests)
        done = run(*args)
        assert done.returncode == 0, done.stderr
        assert len(emu.requests) > before, (args, done.stdout[-2000:], done.stderr[-2000:])  # cases were reviewed
    sent = bodies(emu)
    assert "util.py" in sent and "keys/README.md" in sent and "/proc/self/environ" in sent
    assert json.loads(report.read_text())["stats"]["files_reviewed"]
