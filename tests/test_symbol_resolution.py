"""find_symbol groups the references of a Python name by the definition they resolve to, through imports.

Real snippets in a temporary git repository, read through the RepoView at its
commit as a review's tools read them.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from reviewer.repo_view import RepoView
from reviewer.tools import ToolBox

FILES = {
    "pkg/__init__.py": "from .core import parse\n",
    "pkg/core.py": (
        "def parse(text):\n"
        "    return text.strip()\n"
        "\n\n"
        "def helper(parse):\n"
        "    return parse(1)\n"
        "\n\n"
        "def again(x):\n"
        "    return parse(x)\n"
    ),
    "pkg/other.py": (
        "class Reader:\n"
        "    def parse(self, raw):\n"
        "        return raw\n"
        "\n"
        "    def run(self, raw):\n"
        "        return self.parse(raw)\n"
        "\n\n"
        "def use(obj, raw):\n"
        "    return obj.parse(raw)\n"
    ),
    "pkg/sub/__init__.py": "",
    "pkg/sub/use.py": (
        "from ..core import parse\n"
        "from .. import core\n"
        "\n\n"
        "def f(x):\n"
        "    return parse(x) + core.parse(x)\n"
    ),
    "app/main.py": (
        "import ast\n"
        "from pkg.core import parse as p\n"
        "from pkg import core\n"
        "import pkg.core as pc\n"
        "import pkg.core\n"
        "from pkg import parse\n"
        "\n\n"
        "def run(raw):\n"
        "    a = p(raw)\n"
        "    b = core.parse(raw)\n"
        "    c = pc.parse(raw)\n"
        "    d = pkg.core.parse(raw)\n"
        "    e = parse(raw)\n"
        "    return ast.parse(raw), a, b, c, d, e\n"
        "\n\n"
        "def shadowed(items):\n"
        "    parse = len\n"
        "    return parse(items)\n"
    ),
    "web/app.js": "import { parse } from './lib.js';\nparse(1);\n",
}


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> ToolBox:
    root = tmp_path_factory.mktemp("resolution")
    git(root, "init", "-q", "-b", "main")
    for path, text in FILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    git(root, "add", "-A")
    git(root, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "files")
    return ToolBox(RepoView(root, "HEAD"))


def sections(text: str) -> dict[str, list[str]]:
    """The answer's headers (without their counts), each with its rows."""
    out: dict[str, list[str]] = {}
    rows: list[str] = []
    for line in text.splitlines():
        if line.endswith("):") and not re.match(r"\S+:\d+: ", line):
            rows = out.setdefault(line[:line.rindex(" (")], [])
        else:
            rows.append(line)
    return out


def group(text: str, header: str) -> set[str]:
    """`path:line` of the rows under the header starting with `header`."""
    found = [rows for h, rows in sections(text).items() if h.startswith(header)]
    assert len(found) == 1, (header, text)
    return {":".join(row.split(":")[:2]) for row in found[0]}


def test_references_are_grouped_under_the_definition_their_imports_name(tools: ToolBox) -> None:
    text = tools.run("find_symbol", {"name": "parse"}).text
    assert group(text, "references to parse, defined at pkg/core.py:1") == {
        "pkg/__init__.py:1",                      # the re-export
        "pkg/core.py:10",                         # a use in the same module
        "pkg/sub/use.py:1", "pkg/sub/use.py:6",   # from ..core import parse; from .. import core
        "app/main.py:2", "app/main.py:10",        # from pkg.core import parse as p; p(raw)
        "app/main.py:11",                         # from pkg import core; core.parse(raw)
        "app/main.py:12",                         # import pkg.core as pc; pc.parse(raw)
        "app/main.py:13",                         # import pkg.core; pkg.core.parse(raw)
        "app/main.py:6", "app/main.py:14",        # from pkg import parse (re-exported by pkg/__init__.py)
    }
    assert "app/main.py:10: [call as p] a = p(raw)" in text
    assert group(text, "references to Reader.parse, defined at pkg/other.py:2") == {"pkg/other.py:6"}


def test_what_no_import_ties_to_a_definition_is_listed_as_not_resolved(tools: ToolBox) -> None:
    text = tools.run("find_symbol", {"name": "parse"}).text
    unresolved = group(text, "references to parse not resolved to a definition")
    assert {
        "pkg/other.py:10",   # obj.parse(raw): obj's type is not known
        "pkg/core.py:6",     # a parameter named parse shadows the function
        "app/main.py:20",    # a local named parse shadows the import
        "app/main.py:15",    # ast.parse: a module from outside the repository
        "web/app.js:2",      # other languages are not resolved
    } <= unresolved
    resolved = [rows for h, rows in sections(text).items() if ", defined at " in h]
    assert not unresolved & {":".join(r.split(":")[:2]) for rows in resolved for r in rows}
    assert "app/main.py:1: [import] import ast" not in text


def test_a_path_glob_narrows_the_rows_not_the_resolution(tools: ToolBox) -> None:
    text = tools.run("find_symbol", {"name": "parse", "path_glob": "app/*.py"}).text
    assert {row.split(":")[0] for row in group(text, "references to parse, defined at pkg/core.py:1")} == {"app/main.py"}
    assert "pkg/" not in text.replace("defined at pkg/core.py:1", "")


@pytest.mark.parametrize("args", [
    {"name": "parse; cat /etc/passwd"}, {"name": "../parse"}, {"name": "parse", "path_glob": "../*"},
    {"name": "parse", "path_glob": "/etc/*"}, {"name": "parse", "path_glob": ":(top)*"},
])
def test_a_hostile_name_or_path_is_still_refused(tools: ToolBox, args: dict[str, str]) -> None:
    result = tools.run("find_symbol", args)
    assert result.is_error and result.text
