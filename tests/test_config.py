"""Configuration: file discovery, precedence, and errors that name the key."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reviewer import config
from reviewer.errors import ConfigError


def test_defaults_when_no_file(tmp_path: Path) -> None:
    cfg = config.load(None, tmp_path)
    assert cfg.model == config.DEFAULT_MODEL
    assert cfg.max_concurrency == 8
    assert "*.lock" in cfg.ignore_globs


def test_reviewer_toml_is_read_and_models_per_pass_apply(tmp_path: Path) -> None:
    (tmp_path / ".reviewer.toml").write_text(
        'model = "claude-haiku-5-5"\nmax_concurrency = 3\nignore = ["docs/**"]\n'
        '[models]\naggregate = "claude-opus-5-5"\n'
    )
    cfg = config.load(None, tmp_path)
    assert cfg.model_for("per_file") == "claude-haiku-5-5"
    assert cfg.model_for("aggregate") == "claude-opus-5-5"
    assert cfg.max_concurrency == 3
    assert cfg.ignore_globs[-1] == "docs/**"


def test_pyproject_tool_reviewer_table_is_read(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.reviewer]\nconfidence_threshold = 0.7\n')
    assert config.load(None, tmp_path).confidence_threshold == 0.7


def test_pyproject_without_tool_reviewer_means_defaults(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert config.load(None, tmp_path) == config.Config()


def test_unknown_key_is_named_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / ".reviewer.toml"
    path.write_text('modle = "x"\n')
    with pytest.raises(ConfigError) as err:
        config.load(None, tmp_path)
    assert str(err.value) == f"{path}: unknown key 'modle'"


def test_unknown_nested_key_is_named(tmp_path: Path) -> None:
    (tmp_path / ".reviewer.toml").write_text('[models]\npre_file = "x"\n')
    with pytest.raises(ConfigError, match="unknown key 'models.pre_file'"):
        config.load(None, tmp_path)


def test_wrong_type_names_the_key_and_the_value(tmp_path: Path) -> None:
    (tmp_path / ".reviewer.toml").write_text('max_concurrency = "eight"\n')
    with pytest.raises(ConfigError, match="'max_concurrency' must be of type integer \\(got 'eight'\\)"):
        config.load(None, tmp_path)


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / ".reviewer.toml").write_text("model = \n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        config.load(None, tmp_path)


def test_explicit_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        config.load(tmp_path / "nope.toml", tmp_path)


def test_guidelines_file_is_read_into_guidelines(repo: Path) -> None:
    # From git at HEAD (tests/test_confinement.py has the files it refuses).
    (repo / "REVIEW.md").write_text("Never use print in library code.\n")
    (repo / ".reviewer.toml").write_text('guidelines_file = "REVIEW.md"\n')
    subprocess.run(["git", "-C", str(repo), "add", "REVIEW.md"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "guidelines"], check=True)
    assert "Never use print" in config.load(None, repo).guidelines


def test_flags_override_the_file(tmp_path: Path) -> None:
    (tmp_path / ".reviewer.toml").write_text("max_concurrency = 3\n")
    cfg = config.load(None, tmp_path).with_overrides(max_concurrency=9, model=None)
    assert cfg.max_concurrency == 9
    assert cfg.model == config.DEFAULT_MODEL


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "1e400", "", "ten", True, float("nan"), 10**400])
def test_finite_number_refuses_what_is_not_a_finite_number(value) -> None:
    with pytest.raises(ValueError):
        config.finite_number(value)


def test_finite_number_reads_numbers_and_their_text() -> None:
    assert config.finite_number(" 2.5 ") == 2.5
    assert config.finite_number(3) == 3.0
    assert config.finite_number("-0") == 0.0


def test_every_number_key_is_checked_for_nan_not_only_the_known_ones(tmp_path: Path) -> None:
    # A key another change adds (max_cost) is covered without being listed anywhere.
    with pytest.raises(ConfigError, match=r"'models' must be a finite number, not nan"):
        config.from_mapping({"models": float("nan")}, "x.toml")


def test_a_byte_order_mark_in_pyproject_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_bytes(b"\xef\xbb\xbf[tool.reviewer]\nconfidence_threshold = 0.7\n")
    assert config.load(None, tmp_path).confidence_threshold == 0.7


@pytest.mark.parametrize("line, message", [
    ("max_verify_tool_calls = 50\n", None),
    ("max_verify_tool_calls = \"many\"\n", "'max_verify_tool_calls' must be of type integer"),
    ("max_verify_tool_result_tokens = 1.5\n", "'max_verify_tool_result_tokens' must be of type integer"),
    ("max_verify_tool_call = 5\n", "unknown key 'max_verify_tool_call'"),
])
def test_the_verifiers_tool_budget_is_configured_and_checked(tmp_path: Path, capsys, line: str, message) -> None:
    from reviewer.cli import main

    (tmp_path / ".reviewer.toml").write_text(line)
    if message is None:
        assert config.load(None, tmp_path).max_verify_tool_calls == 50
        return
    code = main(["review", "--diff", str(tmp_path / "none.diff"), "--repo-dir", str(tmp_path), "--dry-run"])
    assert code == 2 and message in capsys.readouterr().err
