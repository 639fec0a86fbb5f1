"""Command line: parse flags, call the library, print the chosen format, exit.

Exit codes (also in the README):
  0  done
  1  a finding at or above --fail-on
  2  usage or configuration error
  3  the model or API failed and no result could be produced (or an internal error)
Only this module prints errors or decides exit codes.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from . import __version__, config as config_mod, diff as diff_mod, engine, schemas, source as source_mod
from .client import require_credentials
from .errors import EXIT_FINDINGS, EXIT_OK, EXIT_SERVICE, EXIT_USAGE, ReviewerError, UsageError
from .findings import at_or_above
from .publish import json as json_pub, markdown, sarif, text

FORMATS = ("text", "json", "markdown", "sarif")


class RichProgress:
    """A progress bar on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=Console(stderr=True), transient=True,
        )
        self._task: Any = None

    def start(self, label: str, total: int) -> None:
        self._progress.start()
        self._task = self._progress.add_task(label, total=total)

    def advance(self, subject: str) -> None:
        self._progress.advance(self._task)

    def stop(self) -> None:
        self._progress.stop()


def _progress() -> engine.Progress | None:
    return RichProgress() if sys.stderr.isatty() else None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reviewer")
@click.option("--debug", is_flag=True, envvar="REVIEWER_DEBUG", help="Show tracebacks of internal errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Code review with Claude: three independent passes over a diff."""
    ctx.obj = {"debug": debug}


def _load_config(config_path: str | None, repo_dir: Path, **overrides: Any) -> config_mod.Config:
    cfg = config_mod.load(Path(config_path) if config_path else None, repo_dir)
    if overrides.get("model"):
        # --model names one model for every pass, whatever the file says per pass.
        cfg = cfg.with_overrides(models={})
    return cfg.with_overrides(**overrides)


@cli.command()
@click.option("--diff", "diff_path", metavar="PATH", help="Unified diff file, or - for stdin.")
@click.option("--base", help="Review `git diff BASE...HEAD` of the repository at --repo-dir.")
@click.option("--head", default="HEAD", show_default=True, help="Head ref for --base.")
@click.option("--repo-dir", default=".", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Local git repository (for --base, configuration and file context).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the report here instead of stdout.")
@click.option("--model", help="Model for every pass (overrides the configuration).")
@click.option("--max-concurrency", type=click.IntRange(1, 256), help="Per-file calls in flight at once [default: 8].")
@click.option("--dry-run", is_flag=True, help="Send nothing; print the plan, the calls and the estimated cost.")
@click.option("--fail-on", type=click.Choice(["critical", "warning", "info", "never"]),
              help="Exit 1 when a finding is at or above this severity [default: never].")
@click.option("--config", "config_path", metavar="PATH", help="Configuration file (default: .reviewer.toml or [tool.reviewer] in pyproject.toml).")
def review(diff_path: str | None, base: str | None, head: str, repo_dir: Path, fmt: str,
           output: Path | None, model: str | None, max_concurrency: int | None, dry_run: bool,
           fail_on: str | None, config_path: str | None) -> int:
    """Review a diff with three passes: per file, cross-file, aggregate."""
    if diff_path and base:
        raise UsageError("give either --diff or --base, not both")
    if not diff_path and not base:
        raise UsageError("nothing to review: give --diff PATH (or - for stdin), or --base REF for a git repository")
    cfg = _load_config(config_path, repo_dir, model=model, max_concurrency=max_concurrency, fail_on=fail_on)
    src = source_mod.from_path(diff_path) if diff_path else source_mod.from_git(repo_dir, base or "", head)
    try:
        parsed = diff_mod.parse(
            diff_mod.decode(src.data), ignore=cfg.ignore_globs, max_file_bytes=cfg.max_file_bytes,
            read_head=src.read_head,
        )
    finally:
        src.close()
    if dry_run:
        plan = engine.plan(parsed, cfg)
        renderer = {"json": json_pub.render_plan, "markdown": markdown.render_plan}.get(fmt, text.render_plan)
        _emit(renderer(plan), output)
        return EXIT_OK
    if parsed.files:
        require_credentials()
    result = engine.review(parsed, cfg, progress=_progress())
    rendered = {
        "text": text.render,
        "json": json_pub.render,
        "markdown": markdown.render,
        "sarif": lambda r: sarif.render(r.findings),
    }[fmt](result)
    _emit(rendered, output)
    return EXIT_FINDINGS if at_or_above(result.findings, cfg.fail_on) else EXIT_OK


@cli.command()
@click.argument("name", type=click.Choice(["finding", "review", "config"]))
def schema(name: str) -> int:
    """Print one of reviewer's JSON Schemas."""
    import json

    click.echo(json.dumps(schemas.load(name), indent=2))
    return EXIT_OK


def _emit(content: str, output: Path | None) -> None:
    if output is None:
        click.echo(content, nl=False)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(content, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{output}: cannot write: {exc.strerror or exc}") from None


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the command and maps every outcome to an exit code."""
    debug = bool(os.environ.get("REVIEWER_DEBUG")) or "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        code = cli.main(args=argv, prog_name="reviewer", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("reviewer: interrupted", err=True)
        return 130
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE
    except ReviewerError as exc:
        click.echo(f"reviewer: error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("reviewer: interrupted", err=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place that turns bugs into a message
        if debug:
            traceback.print_exc()
        click.echo(f"reviewer: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", err=True)
        return EXIT_SERVICE
    return code if isinstance(code, int) else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
