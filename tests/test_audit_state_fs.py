"""The audit state on a read-only, full or foreign-locked filesystem, or damaged (issue 11, item 9).

Each case runs the real CLI and asserts what an operator sees: one line on
stderr naming the cause, exit 2, no traceback, and advice to move the file
aside only when it is damaged. A valid state is never called "not a state".

How the faults are made here. The suite may run as root, where `chmod` stops
no write, so a read-only folder and a full disk are real mounts inside a
private mount namespace (`unshare -m`), held open by a `sleep` process; the
CLI runs in it through `nsenter`, and the test reaches the mounts through
`/proc/<holder>/root`. Nothing is mounted in the test's own namespace, and the
mounts vanish with the holder. A read-only folder is a read-only bind mount of
a real state; a full disk is a small tmpfs that the emulator's hook fills the
moment the canary request arrives, so the answer's write is the one that
fails. Without root (or without unshare/nsenter) the read-only case falls back
to `chmod`, which stops a user that is not root; the full-disk cases skip,
saying why. (`RLIMIT_FSIZE` was not used: SQLite reports its EFBIG as a disk
I/O error, not as a full disk, so it tests a different path.)
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.audit_model import audit_model, batch_outcome
from tests.security_table import case
from tests.test_audit import BUGGY, audit, make_repo

FILES = {"a.py": BUGGY, "b.py": "# b\n" + BUGGY, "c.py": "# c\n" + BUGGY, "d.py": "# d\n" + BUGGY}


def can_mount() -> str | None:
    """Why a private mount namespace cannot be made here, or None when it can."""
    if os.geteuid() != 0:
        return "mounting a tmpfs or a read-only bind needs root (a user namespace is not tried)"
    if not (shutil.which("unshare") and shutil.which("nsenter")):
        return "unshare and nsenter (util-linux) are not installed"
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True)
    if probe.returncode != 0:
        return f"unshare -m is refused here: {probe.stderr.decode().strip()}"
    return None


class Namespace:
    """A private mount namespace kept alive by a `sleep`; commands run in it through nsenter."""

    def __init__(self) -> None:
        self.holder = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sleep", "600"])
        deadline = time.monotonic() + 5
        own = os.readlink("/proc/self/ns/mnt")
        while os.readlink(f"/proc/{self.holder.pid}/ns/mnt") == own:  # until unshare has exec'd sleep
            assert time.monotonic() < deadline, "unshare did not start"
            time.sleep(0.01)

    def sh(self, script: str) -> None:
        subprocess.run(["nsenter", "-t", str(self.holder.pid), "-m", "sh", "-ec", script], check=True)

    def path(self, path: Path) -> Path:
        """`path` as seen inside the namespace, reachable from the test."""
        return Path(f"/proc/{self.holder.pid}/root") / str(path).lstrip("/")

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "REVIEWER_AUDIT_POLL_SECONDS": "0.02", "REVIEWER_AUDIT_SETTLE_SECONDS": "0.2"}
        return subprocess.run(["nsenter", "-t", str(self.holder.pid), "-m", "--", sys.executable, "-m",
                               "reviewer.cli", *args], capture_output=True, text=True, env=env, timeout=timeout,
                              cwd=os.getcwd())

    def close(self) -> None:
        self.holder.kill()
        self.holder.wait()


@pytest.fixture
def ns() -> Iterator[Namespace]:
    why = can_mount()
    if why:
        pytest.skip(why)
    space = Namespace()
    yield space
    space.close()


@pytest.fixture
def emu(anthropic_emu):
    anthropic_emu.batch_processing_seconds = 0.05
    anthropic_emu.responder = audit_model
    anthropic_emu.batch_outcome = batch_outcome
    return anthropic_emu


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVIEWER_AUDIT_POLL_SECONDS", "0.02")
    monkeypatch.setenv("REVIEWER_AUDIT_SETTLE_SECONDS", "0.2")


def one_line(err: str) -> str:
    """The error line of a failed command: exactly one, no traceback."""
    assert "Traceback" not in err and "internal error" not in err, err
    errors = [x for x in err.splitlines() if x.startswith("reviewer: error:")]
    assert len(errors) == 1, err
    return errors[0]


def sent_parts(emu: Any) -> collections.Counter[str]:
    """Each audited part the API was asked about, by its user message: canary calls and batch items alike."""
    seen: collections.Counter[str] = collections.Counter()
    for r in emu.requests:
        if r.method != "POST" or not isinstance(r.body, dict):
            continue
        if r.path == "/v1/messages":
            seen[json.dumps(r.body["messages"], sort_keys=True)] += 1
        elif r.path == "/v1/messages/batches":
            for item in r.body["requests"]:
                seen[json.dumps(item["params"]["messages"], sort_keys=True)] += 1
    return seen


def completed_state(capsys, tmp_path: Path) -> tuple[Path, Path]:
    repo = make_repo(tmp_path / "repo", FILES)
    state = tmp_path / "state" / "audit.db"
    code, _, err = audit(capsys, repo, "run", "--wait", "--canary", "1", "--state", str(state))
    assert code == 0, err
    return repo, state


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# ---------------------------------------------------------------------- read-only


@case('audit: state on disk',
      'the state folder is on a read-only filesystem (a read-only bind mount, since root ignores chmod); and only the state file mounted read-only',
      '`status`, `list` and `plan` read it (opened `mode=ro`, `immutable=1` when the `-shm` cannot be made and no WAL is pending) and exit 0; `run` and `collect` exit 2 with one line "on a read-only filesystem", never "move it aside"; nothing is sent and no byte of the folder changes')
def test_a_state_on_a_read_only_filesystem_is_read_and_never_called_damaged(emu, capsys, tmp_path: Path) -> None:
    repo, state = completed_state(capsys, tmp_path)
    before = snapshot(state.parent)
    assert not Path(str(state) + "-wal").exists()  # checkpointed and closed: the file alone holds the state
    sent = len(emu.requests)
    ro = tmp_path / "ro"
    ro.mkdir()
    why = can_mount()
    space: Namespace | None = None
    if why is None:
        space = Namespace()
        space.sh(f"mount --bind '{state.parent}' '{ro}' && mount -o remount,bind,ro '{ro}'")
        run = space.cli
    elif os.geteuid() != 0:
        shutil.copytree(state.parent, ro, dirs_exist_ok=True)
        ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
        (ro / "audit.db").chmod(stat.S_IRUSR)

        def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "reviewer.cli", *args], capture_output=True, text=True,
                                  timeout=timeout)
    else:
        pytest.skip(f"root ignores chmod and {why}")
    try:
        path = ro / "audit.db"
        where = ("--repo-dir", str(repo), "--state", str(path))
        status = run("audit", "status", *where)
        assert status.returncode == 0 and "run 1: completed" in status.stdout, status.stderr
        listed = run("audit", "list", "--format", "json", *where)
        assert listed.returncode == 0 and json.loads(listed.stdout)[0]["status"] == "completed", listed.stderr
        planned = run("audit", "plan", "--format", "json", *where)
        assert planned.returncode == 0 and json.loads(planned.stdout)["carried_over"] == len(FILES), planned.stderr
        for command in (["run", "--wait"], ["collect"]):
            done = run("audit", *command, *where)
            line = one_line(done.stderr)
            assert done.returncode == 2, (command, done.stderr)
            assert str(path) in line and ("read-only filesystem" in line or "not writable" in line), line
            assert "move it aside" not in line and "not a reviewer audit state" not in line, line
        if space is not None:
            # The state file alone read-only, in a writable folder: the same answer for writers.
            space.sh(f"mount --bind '{state}' '{state}' && mount -o remount,bind,ro '{state}'")
            done = space.cli("audit", "run", "--wait", "--repo-dir", str(repo), "--state", str(state))
            line = one_line(done.stderr)
            assert done.returncode == 2 and "read-only filesystem" in line and "move it aside" not in line, line
            status = space.cli("audit", "status", "--repo-dir", str(repo), "--state", str(state))
            assert status.returncode == 0 and "run 1: completed" in status.stdout, status.stderr
    finally:
        if space is not None:
            space.close()
        else:
            ro.chmod(stat.S_IRWXU)
    assert len(emu.requests) == sent  # nothing was sent
    # The state itself is untouched (the lock file's record changed in the writable-folder variant).
    assert state.read_bytes() == before["audit.db"]


# ---------------------------------------------------------------------- full disk


def fill(folder: Path) -> Path:
    """Write a file into `folder` until its filesystem has no byte left."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as fh:
        chunk = b"\0" * 65536
        while True:
            try:
                fh.write(chunk)
            except OSError:
                if len(chunk) == 1:
                    break
                chunk = chunk[: len(chunk) // 2]
    return filler


@case('audit: state on disk',
      'the disk holding the state fills up while the canary request is in flight (a tmpfs filled when the request reaches the API), then space is freed and the run started again; and a disk already full before a run',
      'exit 2 with one line "the disk holding the state is full" naming the canary answer that could not be saved, no traceback, never "move it aside"; the resumed run completes without sending that request again (every part reaches the API at most once across both runs) and lists it as not audited with the reason; a run on an already full disk sends nothing')
def test_a_full_disk_never_makes_a_paid_request_be_sent_twice(emu, ns: Namespace, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", FILES)
    disk = tmp_path / "disk"
    disk.mkdir()
    ns.sh(f"mount -t tmpfs -o size=4m tmpfs '{disk}'")
    state = disk / "audit.db"
    where = ("--repo-dir", str(repo), "--state", str(state), "--output-dir", str(tmp_path / "reports"))
    seen = ns.path(disk)

    # Already full before the run: nothing is planned into the state, nothing is sent.
    filler = fill(seen)
    done = ns.cli("audit", "run", "--wait", "--canary", "2", *where)
    line = one_line(done.stderr)
    assert done.returncode == 2 and "is full" in line and str(state) in line and "move it aside" not in line, line
    assert not emu.requests
    filler.unlink()

    filled: list[Path] = []

    def on_request(record: Any) -> None:
        if record.method == "POST" and record.path == "/v1/messages" and not filled:
            filled.append(fill(seen))  # the canary request is in the API's hands: its answer's write will fail
        return None

    emu.on_request = on_request
    first = ns.cli("audit", "run", "--wait", "--canary", "2", *where)
    line = one_line(first.stderr)
    assert first.returncode == 2, first.stderr
    assert "the disk holding the state is full" in line and "could not be saved" in line, line
    assert "will not be sent again" in line and "move it aside" not in line, line
    assert sum(r.path == "/v1/messages" for r in emu.requests) == 1  # stopped at the first failed write
    status = ns.cli("audit", "status", *where[:4])  # a full disk can still be read
    assert status.returncode == 0 and "run 1: active" in status.stdout, status.stderr

    emu.on_request = None
    filled[0].unlink()
    second = ns.cli("audit", "run", "--wait", "--canary", "2", *where)
    assert second.returncode == 0, second.stderr
    parts = sent_parts(emu)
    assert parts and all(n == 1 for n in parts.values()), parts  # nothing paid for twice
    assert len(parts) == len(FILES) - 1 + 1 or len(parts) <= len(FILES)
    doc = json.loads((tmp_path / "reports" / "audit.json").read_text())
    assert doc["run"]["id"] == 1 and doc["run"]["status"] == "completed"
    assert len(doc["problems"]) == 1 and "could not be saved" in json.dumps(doc["problems"]), doc["problems"]
    assert len({f["file"] for f in doc["findings"]}) == len(FILES) - 1


# ---------------------------------------------------------------------- locked


def hold(code: str, path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


HOLD_REVIEWER_LOCK = """
import sys, time
from pathlib import Path
from reviewer.audit.state import Store
store = Store(Path(sys.argv[1]), lock=True, command="reviewer audit run")
print("ready", flush=True)
time.sleep(120)
"""

HOLD_SQLITE_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("ready", flush=True)
time.sleep(120)
"""


@case('audit: state on disk',
      'another live process holds the state: a `reviewer audit run` holding its lock file, and a process that is not reviewer holding a SQLite write lock on the file',
      'exit 2 with one line "locked by another process" naming the holder\'s pid, at once for reviewer\'s lock; after a 10 s wait announced by a progress line for a SQLite lock (not 62 s of silence); `status` still reads the state meanwhile; never "move it aside"')
def test_a_state_locked_by_another_process_names_it_at_once(emu, capsys, tmp_path: Path) -> None:
    repo, state = completed_state(capsys, tmp_path)
    holder = hold(HOLD_REVIEWER_LOCK, state)
    try:
        started = time.monotonic()
        code, _, err = audit(capsys, repo, "run", "--wait", "--state", str(state))
        line = one_line(err)
        assert code == 2 and time.monotonic() - started < 5, err
        assert f"locked by another process (pid {holder.pid}, `reviewer audit run`" in line, line
        assert "move it aside" not in line, line
        code, out, err = audit(capsys, repo, "status", "--state", str(state))
        assert code == 0 and "run 1: completed" in out, err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()

    holder = hold(HOLD_SQLITE_LOCK, state)
    try:
        code, out, err = audit(capsys, repo, "status", "--state", str(state))
        assert code == 0 and "run 1: completed" in out, err
        started = time.monotonic()
        code, _, err = audit(capsys, repo, "run", "--wait", "--state", str(state))
        took = time.monotonic() - started
        line = one_line(err)
        assert code == 2 and 9 < took < 20, (took, err)
        assert "waiting up to 10 s" in err.split(line)[0], err  # said before the wait, not after
        assert "locked by another process" in line and "not reviewer" in line and "move it aside" not in line, line
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    code, _, err = audit(capsys, repo, "run", "--wait", "--state", str(state))
    assert code == 0, err  # the state was valid all along


# ---------------------------------------------------------------------- damaged


@case('audit: state on disk',
      "a damaged state file: random bytes, a text file, a real state truncated to half, a real state with every page but the first overwritten (malformed), and a real state whose stored JSON is garbled (the runs' system prompt and summary)",
      'every command (`status`, `list`, `plan` where it reads the damaged part, `run`) exits 2 with one line "the file is damaged" naming the path and advising to move it aside; no traceback, no decode error; the file is left as it was')
def test_a_damaged_state_is_named_damaged_with_its_path(emu, capsys, tmp_path: Path) -> None:
    repo, real = completed_state(capsys, tmp_path)
    import random
    import sqlite3

    rng = random.Random(11)
    states: dict[str, bytes] = {
        "random.db": bytes(rng.randrange(256) for _ in range(64 * 1024)),
        "text.db": b"# not a database, a note someone saved here\n" * 200,
        "truncated.db": real.read_bytes()[: real.stat().st_size // 2],
    }
    data = real.read_bytes()
    page = int.from_bytes(data[16:18], "big")
    # Every page but the first (the schema) overwritten: SQLite says "database disk image is malformed".
    states["malformed.db"] = data[:page] + bytes(rng.randrange(256) for _ in range(len(data) - page))
    garbled = tmp_path / "garbled.db"
    shutil.copy(real, garbled)
    db = sqlite3.connect(garbled)
    db.execute("UPDATE runs SET system_json = 'not json {', summary_json = x'ff00ff'")
    db.commit()
    db.close()
    states["garbled.db"] = garbled.read_bytes()
    for name, data in states.items():
        path = tmp_path / "damaged" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        for command in (["status"], ["list"], ["plan"], ["run", "--wait"]):
            if name == "garbled.db" and command == ["plan"]:
                continue  # plan reads no garbled field (only answers, failures and an unfinished run)
            code, _, err = audit(capsys, repo, *command, "--state", str(path))
            line = one_line(err)
            assert code == 2, (name, command, err)
            assert f"{path}: not a reviewer audit state: the file is damaged" in line, (name, command, line)
            assert "move it aside" in line, line
        assert path.read_bytes() == data  # left for a person to look at
