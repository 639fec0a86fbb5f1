"""Definitions from other files sent with each audited part (issue 12, item 7).

Unit tests run `reviewer.definitions` and the audit plan over real git
repositories in temp folders; the hostile case drives `reviewer audit run`
(the real CLI and SDK) against the Anthropic emulator and reads what it received.
"""

from __future__ import annotations

import json
from pathlib import Path

from reviewer import definitions
from reviewer.audit import plan as plan_mod
from reviewer.audit.plan import tracked_files
from reviewer.config import Config
from reviewer.repo_view import RepoView
from tests.audit_model import path_of, user_text
from tests.conftest import git
from tests.security_table import case
from tests.test_audit import audit, emu, fast, make_repo, write  # noqa: F401 (fixtures)

LONG_BODY = "".join(f"    step_{i} = {i}\n" for i in range(30))
UTIL = (
    "def short(a, b=2):\n"
    "    return a + b\n"
    "\n"
    "\n"
    "@decorated\n"
    "def long_one(values: list[int],\n"
    "             factor: int = 3) -> list[int]:\n"
    '    """Scale every value by `factor`.\n\n    More words nobody needs here.\n    """\n'
    + LONG_BODY +
    "    return values\n"
    "\n"
    "LIMIT = 10\n"
)


def batch_params(emu) -> list[dict]:
    """The params of every request the emulator received in a batch."""
    return [item["params"] for r in emu.requests if r.method == "POST" and r.path == "/v1/messages/batches"
            and isinstance(r.body, dict) for item in r.body.get("requests", [])]


def block_of(repo: Path, path: str, budget: int = 1500, start: int = 1, end: int = 10**6) -> str:
    with RepoView(repo, "HEAD") as view:
        files = dict(tracked_files(view))
        index = definitions.Index(view, files, max_module_bytes=100_000)
        data = view.read(path).data
        return index.block(index.uses(path, data), start, end, budget)


def test_a_part_is_given_the_signature_of_a_long_function_it_imports_and_a_short_one_whole(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {
        "pkg/__init__.py": "", "pkg/util.py": UTIL,
        "pkg/app.py": "from pkg.util import short, long_one, LIMIT\nimport os\n\n"
                      "def run(xs):\n    return long_one(xs, short(1)) + [LIMIT, os.sep]\n",
    })
    block = block_of(repo, "pkg/app.py")
    assert "# long_one (once here): pkg/util.py, line 5" in block
    assert "@decorated\ndef long_one(values: list[int],\n             factor: int = 3) -> list[int]:" in block
    assert '    """Scale every value by `factor`."""' in block
    assert "step_1 =" not in block and "more line(s) not shown" in block
    assert "def short(a, b=2):\n    return a + b" in block  # short: whole
    assert "LIMIT = 10" in block
    assert "os" not in block.split("\n", 1)[0] and "sep" not in block  # the standard library is not in the tree


def test_relative_imports_submodules_and_dotted_names_resolve_to_files_of_the_tree(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {
        "src/lib/__init__.py": "from .core import Engine\n",
        "src/lib/core.py": "class Engine:\n    speed = 1\n",
        "src/lib/sub/__init__.py": "",
        "src/lib/sub/tools.py": "TOOL = 'hammer'\n\ndef use():\n    return TOOL\n",
        "src/lib/sub/job.py": ("from .. import Engine\nfrom . import tools\nimport lib.core\n\n"
                               "def work():\n    return Engine(), tools.use(), lib.core.Engine\n"),
    })
    block = block_of(repo, "src/lib/sub/job.py")
    # A re-export in __init__.py is followed to the defining file; a `src/` layout resolves.
    assert "# Engine (once here): src/lib/core.py, line 1\nclass Engine:" in block
    assert "# tools.use (once here): src/lib/sub/tools.py, line 3\ndef use():" in block
    # lib.core.Engine is the same definition: given once.
    assert block.count("class Engine:") == 1


def test_most_used_names_come_first_and_what_the_budget_leaves_out_is_named(tmp_path: Path) -> None:
    many = "".join(f"def f{i}(x):\n" + "".join(f"    y{j} = x * {j}\n" for j in range(8)) + "    return x\n\n"
                   for i in range(6))
    repo = make_repo(tmp_path / "repo", {
        "m.py": many,
        "app.py": "from m import f0, f1, f2, f3, f4, f5\n\n"
                  "a = f3(1) + f3(2) + f3(3)\nb = f1(1) + f1(2)\nc = f0(1) + f2(1) + f4(1) + f5(1)\n",
    })
    block = block_of(repo, "app.py", budget=200)
    assert block.startswith("# f3 (3 times here): m.py")
    assert block.index("# f1 (2 times here)") > block.index("# f3")
    assert block.splitlines()[-1].startswith("# Left out for the token budget: ")
    assert definitions.tokens(block) <= 200
    # Only the lines of the part count: line 5 uses f1 alone.
    assert block_of(repo, "app.py", start=4, end=4).startswith("# f1 (2 times here)")
    assert block_of(repo, "app.py", budget=0) == ""


def test_a_changed_definition_in_another_file_sends_the_part_again_and_other_parts_carry_over(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {
        "util.py": "def helper(x):\n    return x\n",
        "app.py": "from util import helper\n\nprint(helper(1))\n",
        "alone.py": "print(1)\n",
        "README.md": "# r\n",
    })
    before = {c.path: c for c in plan_mod.build(repo, Config()).chunks}
    assert "def helper(x):" in before["app.py"].context and before["alone.py"].context == ""
    write(repo, {"util.py": "def helper(x, y=0):\n    return x + y\n"})
    after = {c.path: c for c in plan_mod.build(repo, Config()).chunks}
    assert after["app.py"].key != before["app.py"].key  # what the model sees changed
    assert after["alone.py"].key == before["alone.py"].key and after["README.md"].key == before["README.md"].key
    # Turned off: no block, and the key is the one a part without a block has.
    off = {c.path: c for c in plan_mod.build(repo, Config(audit_context_tokens=0)).chunks}
    assert off["app.py"].context == "" and off["app.py"].key not in (after["app.py"].key, before["app.py"].key)
    # The estimate counts the block.
    assert after["app.py"].tokens > off["app.py"].tokens


def test_identical_parts_with_identical_definitions_are_sent_once(tmp_path: Path) -> None:
    code = "from util import helper\n\nprint(helper(1))\n"
    repo = make_repo(tmp_path / "repo", {"util.py": "def helper(x):\n    return x\n", "a.py": code, "b.py": code})
    p = plan_mod.build(repo, Config())
    assert p.deduplicated == 1 and [r.fanout for r in p.requests if r.chunk.path == "a.py"] == [("b.py",)]


def test_the_block_reaches_the_request_and_a_rechunked_part_keeps_it(emu, tmp_path: Path, capsys) -> None:
    long_part = "".join(f"    total += helper({i})\n" for i in range(8))
    repo = make_repo(tmp_path / "repo", {
        "util.py": 'def helper(x):\n    """Double x."""\n    return 2 * x\n',
        "app.py": f"from util import helper\n\ndef run():  # HUGE\n    total = 0\n{long_part}    return total\n",
    })
    code, out, err = audit(capsys, repo, "run", "--wait", "--timeout", "60", "--canary", "0")
    assert code == 0, err + out
    bodies = batch_params(emu)
    app = [b for b in bodies if path_of(b) == "app.py"]
    assert len(app) >= 3  # the whole, too long, then its parts
    for body in app:
        text = user_text(body)
        assert "Definitions this part uses from other files:\n<definitions-" in text
        assert '# helper (' in text and 'def helper(x):\n    """Double x."""' in text
    doc = json.loads((repo / ".reviewer" / "audit" / "audit.json").read_text())
    assert doc["run"]["status"] == "completed" and doc["problems"] == []


@case("audit: definitions from other files",
      "an audited file imports names from a module that is a symlink to a file outside the tree, from a folder "
      "that is a symlink outside it, from inside a submodule, from a module over the size limit and from one "
      "that does not parse",
      "none of them is read or followed: no byte from outside the tree reaches a request body; only the "
      "definition from the ordinary module in the tree is sent")
def test_definitions_never_come_from_outside_the_tree(emu, tmp_path: Path, capsys) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("def leak():\n    return 'OUTSIDE-SECRET-7f3a'\n")
    (outside / "mod.py").write_text("def thing():\n    return 'OUTSIDE-DIR-SECRET-91c2'\n")
    repo = make_repo(tmp_path / "repo", {
        ".reviewer.toml": "max_file_bytes = 4000\n",
        "good.py": "def fine(x):\n    return x\n",
        "huge.py": "def big():\n    return 1\n" + "# HUGE-MODULE-PADDING\n" * 400,
        "broken.py": "def broken(:\n    BROKEN-MODULE-TEXT\n",
        "app.py": ("from good import fine\nfrom evil import leak\nfrom linked.mod import thing\n"
                   "from sub.inner import hidden\nfrom huge import big\nfrom broken import broken\n\n"
                   "print(fine(1), leak(), thing(), hidden(), big(), broken())\n"),
    })
    (repo / "evil.py").symlink_to(outside / "secret.py")
    (repo / "linked").symlink_to(outside)
    commit = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{commit},sub")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "hostile imports")

    with RepoView(repo, "HEAD") as view:
        index = definitions.Index(view, dict(tracked_files(view)), max_module_bytes=4000)
        uses = index.uses("app.py", view.read("app.py").data)
        index.block(uses, 1, 10, 1500)
        # The link, the huge module and the broken one are refused; `linked/mod.py` and
        # `sub/inner.py` are not files of the tree at all, so they are never looked up.
        assert set(index.refused) == {"evil.py", "huge.py", "broken.py"}
        assert index.refused["evil.py"].startswith("not a regular file (mode 120000)")

    code, out, err = audit(capsys, repo, "run", "--wait", "--timeout", "60", "--canary", "1")
    assert code == 0, err + out
    sent = json.dumps([r.body for r in emu.requests if r.body is not None])
    assert "OUTSIDE-SECRET-7f3a" not in sent and "OUTSIDE-DIR-SECRET-91c2" not in sent
    app = [b for b in [r.body for r in emu.message_requests()] + batch_params(emu) if path_of(b) == "app.py"]
    assert len(app) == 1
    text = user_text(app[0])
    block = text.split("<definitions-", 1)[1].split("</definitions-", 1)[0]
    assert "def fine(x):" in block
    for absent in ("leak", "thing", "hidden", "def big", "HUGE-MODULE-PADDING", "BROKEN-MODULE-TEXT"):
        assert absent not in block
