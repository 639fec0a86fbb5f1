"""`reviewer audit`: a part that fails for a reason of its own is not paid for again every night.

A quarantined answer (invalid: off-schema, refusal, cut off) or a request the
API rejected is remembered by the part's content key; the next run leaves the
part out, and says so, until its key changes (its text, the prompt, the model,
the guidelines or the schema) or `--retry-failed` asks for it. Transient
failures (errored or expired results) are sent again. The real CLI and SDK
against the Anthropic emulator, as in test_audit.py.
"""

from __future__ import annotations

import sqlite3

from reviewer import schemas
from reviewer.audit import plan as plan_mod
from reviewer.audit import state as state_mod
from reviewer.audit.state import MIGRATIONS, Store
from reviewer.config import Config
from tests.audit_model import audit_model, batch_outcome, path_of
from tests.test_audit import BUGGY, audit, emu, fast, make_repo, report, write  # noqa: F401 (fixtures)

INVALID = "w = 4  # INVALID\n"


def sent_paths(emu) -> list[str]:
    """Every file the emulator was asked about: canary calls and batch requests, in order."""
    paths = [path_of(r.body) for r in emu.message_requests()]
    for r in emu.requests:
        if r.method == "POST" and r.path == "/v1/messages/batches" and r.status == 200:
            paths += [path_of(item["params"]) for item in r.body["requests"]]
    return paths


def fresh(emu) -> None:
    emu.reset()
    emu.batch_processing_seconds = 0.05
    emu.responder, emu.batch_outcome = audit_model, batch_outcome


def test_an_always_invalid_part_is_sent_once_then_left_out_until_it_changes_or_retry_failed(emu, tmp_path, capsys) -> None:
    repo = make_repo(tmp_path / "repo", {"a.py": BUGGY, "b.py": "x = 1\n", "c.py": "y = 2\n", "z_invalid.py": INVALID})
    code, out, err = audit(capsys, repo, "run", "--wait", "--timeout", "30")  # canary a, b, c; z in the batch
    assert code == 0, err
    assert sent_paths(emu).count("z_invalid.py") == 1
    first = report(repo)
    assert [(p["file"], p["state"], p["sent_again"]) for p in first["problems"]] == [("z_invalid.py", "quarantined", False)]

    fresh(emu)
    code, out, err = audit(capsys, repo, "run", "--wait", "--timeout", "30")
    assert code == 0, err
    assert emu.requests == []  # nothing sent, not even a listing
    assert "run 2 completed" in out and "1 part(s) left out" in out
    doc = report(repo)
    assert schemas.first_error(schemas.load("audit-report"), doc) is None
    assert doc["problems"] == [] and doc["summary"]["left_out"] == {"quarantined": 1, "failed": 0, "total": 1}
    (left,) = doc["left_out"]
    assert (left["file"], left["start_line"], left["end_line"], left["state"], left["run"]) == ("z_invalid.py", 1, 1, "quarantined", 1)
    assert "does not match the schema" in left["reason"] and left["failed_at"][:10] == first["run"]["created_at"][:10]
    md = report(repo, "audit.md")
    assert "### Left out (1)" in md
    assert f"`z_invalid.py:1-1` quarantined on {left['failed_at'][:10]} in run 1: " in md
    assert "; unchanged since; `--retry-failed` sends it again" in md
    assert {f["file"] for f in doc["findings"]} == {"a.py"}  # the rest carried over

    # The plan says the same, and --retry-failed puts the part back.
    code, out, _ = audit(capsys, repo, "plan")
    assert code == 0 and "requests  0 to send" in out
    assert "left out  1 part(s) that failed before, unchanged since (1 quarantined, 0 failed); --retry-failed sends them again" in out
    assert f"  z_invalid.py:1-1  quarantined on {left['failed_at'][:10]} in run 1: " in out
    code, out, _ = audit(capsys, repo, "plan", "--retry-failed")
    assert code == 0 and "requests  1 to send" in out and "left out" not in out

    fresh(emu)
    code, out, err = audit(capsys, repo, "run", "--wait", "--timeout", "30", "--retry-failed", "--canary", "0")
    assert code == 0, err
    assert sent_paths(emu) == ["z_invalid.py"]
    assert report(repo)["problems"][0]["state"] == "quarantined"

    fresh(emu)
    assert audit(capsys, repo, "run", "--wait", "--timeout", "30")[0] == 0
    assert emu.requests == []  # remembered again after the retry

    write(repo, {"z_invalid.py": "w = 5  # INVALID\n"})  # a new commit changes its content key
    fresh(emu)
    code, out, err = audit(capsys, repo, "run", "--wait", "--timeout", "30", "--canary", "0")
    assert code == 0, err
    assert sent_paths(emu) == ["z_invalid.py"]


def test_an_invalid_canary_answer_is_remembered_so_the_next_run_audits_the_rest(emu, tmp_path, capsys) -> None:
    repo = make_repo(tmp_path / "repo", {"a_invalid.py": INVALID, "b.py": BUGGY, "c.py": "y = 2\n"})
    code, _, err = audit(capsys, repo, "run", "--wait")
    assert code == 1 and "canary: the answer to a_invalid_py-L1-" in err
    assert sent_paths(emu) == ["a_invalid.py"]
    fresh(emu)
    code, out, err = audit(capsys, repo, "run", "--wait", "--timeout", "30")
    assert code == 0, err
    assert sent_paths(emu) == ["b.py", "c.py"]  # the canary takes the other parts: no exit 1 every night
    doc = report(repo)
    assert [(x["file"], x["state"], x["run"]) for x in doc["left_out"]] == [("a_invalid.py", "quarantined", 1)]
    assert doc["summary"]["findings"]["total"] == 1


def test_transient_failures_are_sent_again_on_the_next_run(emu, tmp_path, capsys) -> None:
    repo = make_repo(tmp_path / "repo", {
        "a.py": BUGGY, "b_broken.py": "z = 3  # BROKEN\n", "c_slow.py": "y = 2 / n  # SLOW\n",
    })
    code, _, err = audit(capsys, repo, "run", "--wait", "--timeout", "30", "--canary", "0", "--max-attempts", "1")
    assert code == 0, err
    doc = report(repo)
    assert {(p["file"], p["state"], p["sent_again"]) for p in doc["problems"]} == {
        ("b_broken.py", "failed", True), ("c_slow.py", "failed", True)}
    assert "errored" in doc["problems"][0]["reason"] and "expired" in doc["problems"][1]["reason"]
    md = report(repo, "audit.md")
    assert "`b_broken.py:1-1` failed: errored" in md and "(sent again in the next run)" in md

    fresh(emu)
    code, out, _ = audit(capsys, repo, "plan")
    assert "requests  2 to send" in out and "left out" not in out
    code, _, err = audit(capsys, repo, "run", "--wait", "--timeout", "30", "--canary", "0", "--max-attempts", "1")
    assert code == 0, err
    assert sorted(sent_paths(emu)) == ["b_broken.py", "c_slow.py"]
    assert report(repo)["left_out"] == []


def test_a_request_the_api_rejects_in_a_batch_is_remembered(emu, tmp_path, capsys) -> None:
    from tests.emulators.anthropic import Fault

    def rejecting(custom_id, params):
        if path_of(params) == "bad.py":
            return Fault(400, "invalid_request_error", "messages.0.content: text contains an unsupported character")
        return batch_outcome(custom_id, params)

    emu.batch_outcome = rejecting
    repo = make_repo(tmp_path / "repo", {"a.py": BUGGY, "bad.py": "x = 1\n"})
    assert audit(capsys, repo, "run", "--wait", "--timeout", "30", "--canary", "0")[0] == 0
    assert report(repo)["problems"][0]["state"] == "failed"
    fresh(emu)
    emu.batch_outcome = rejecting
    code, out, err = audit(capsys, repo, "run", "--wait", "--timeout", "30", "--canary", "0")
    assert code == 0 and emu.requests == [], err
    (left,) = report(repo)["left_out"]
    assert left["state"] == "failed" and "the API rejected the request" in left["reason"]


def test_a_re_chunked_part_is_not_sent_again_on_an_unchanged_repository(emu, tmp_path, capsys) -> None:
    body = "".join(f"v{i} = {i}\n" for i in range(10)) + "\nx = 1 / n  # HUGE # BUG\n" + "".join(f"w{i} = {i}\n" for i in range(8))
    repo = make_repo(tmp_path / "repo", {"m.py": body})
    assert audit(capsys, repo, "run", "--wait", "--canary", "0", "--timeout", "30")[0] == 0
    first = report(repo)
    assert first["summary"]["requests"]["rechunked"] >= 1 and not first["problems"]
    fresh(emu)
    code, out, err = audit(capsys, repo, "run", "--wait", "--timeout", "30")
    assert code == 0, err
    assert emu.requests == []
    second = report(repo)
    assert second["findings"] == first["findings"] and not second["problems"] and not second["left_out"]


def test_the_content_key_covers_the_text_its_first_line_the_prompt_the_model_the_guidelines_and_the_schema() -> None:
    base = plan_mod.Context.build(Config())
    assert plan_mod.Context.build(Config(), model="claude-opus-5-5").digest != base.digest
    assert plan_mod.Context.build(Config(guidelines="Prefer pathlib.")).digest != base.digest
    assert plan_mod.Context.build(Config(max_output_tokens=base.max_tokens + 1)).digest != base.digest
    # The prompt version, the schema an answer is checked against and the SDK that transforms it
    # into the schema sent are hashed in.
    parts = dict(version=base.prompt_version, model=base.model, blocks=list(base.prefix.blocks),
                 transform=plan_mod.sdk_version(), checked_schema=schemas.findings_answer_schema(),
                 max_tokens=base.max_tokens)
    assert plan_mod.context_digest(**parts) == base.digest
    for name, other in (("version", "0000000"), ("transform", "0.0.1"), ("checked_schema", {"type": "object"})):
        assert plan_mod.context_digest(**{**parts, name: other}) != base.digest
    key = plan_mod.chunk_key(base.digest, 1, b"x = 1")
    assert key != plan_mod.chunk_key(base.digest, 2, b"x = 1") != plan_mod.chunk_key(base.digest, 1, b"x = 2")


def test_a_state_written_before_failures_were_remembered_is_migrated_in_order(tmp_path) -> None:
    path = tmp_path / "audit.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")
    for version, fn in enumerate(MIGRATIONS[:2], start=1):
        fn(db)
        db.execute("INSERT INTO schema_version VALUES (?, ?, 'then')", (version, fn.__name__))
    db.close()
    with Store(path) as store:
        assert store.schema_version == len(MIGRATIONS) > 2
        assert store.failures() == {} and store.splits() == {}
        names = [r[0] for r in store.db.execute("SELECT name FROM schema_version ORDER BY version")]
        assert names == [fn.__name__ for fn in state_mod.MIGRATIONS]
