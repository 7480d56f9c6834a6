"""What every command of the ``nonrecours`` command line shares: the Typer application, the
options that set a setting, the stores' options, and one way to fail.

Where it sits: under the command modules (:mod:`nonrecours.app.cli` lists them). A command is a
function of a :class:`~nonrecours.app.stores.Run` and its own options, declared with
:func:`command`: the options it names with :func:`setting` go into the settings (defaults, then
``--config``, then the options), and so are checked there, with the settings' messages; the ones it
asks for (``--quiet``, the stores', ``--scheduler``) are added to it. A :class:`UserError` prints
``error: ...`` and exits 2.
"""

from __future__ import annotations

import functools
import inspect
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from nonrecours.app.environment import Environment
from nonrecours.app.stores import Run
from nonrecours.core.config import Settings, field_help, load_settings
from nonrecours.core.errors import UserError

app = typer.Typer(
    help="Find households probably entitled to a French benefit that they do not claim.\n\n"
    "Stages: generate (synthetic population) -> entitlements (OpenFisca-France on what an agency "
    "observes) -> features -> train (MLflow, promotion gate) -> score (worklist, decision log) -> "
    "monitor. Every stage accepts the same folder as --input and --out; `pipeline` runs them all.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
agents_app = typer.Typer(
    help="Agents' accounts for the web page: one per agent, in a team (the campaigns they see).", no_args_is_help=True
)
app.add_typer(agents_app, name="agents")
# Wide enough for the tables when the output is a file or a CI log rather than a terminal.
console = Console(stderr=True, width=None if sys.stderr.isatty() else 150)


def setting(section: str, field: str, *names: str, **options: Any) -> Any:
    """An option that sets ``section.field``: its help is the setting's, and the settings check it."""
    info = typer.Option(*names, help=field_help(section, field), **options)
    info.nonrecours_setting = f"{section}__{field}"  # read back by `command`
    return info


InputOpt = Annotated[
    Path,
    typer.Option(
        "--input",
        help="Folder holding the tables the command reads (see its description).",
        exists=True,
        file_okay=False,
    ),
]
OutDirOpt = Annotated[Path | None, typer.Option("--out", help="Folder to write into (default: the --input folder).")]
WorkersOpt = Annotated[int | None, setting("law", "workers", "--workers")]
MonthOpt = Annotated[str | None, setting("law", "reference_month", "--reference-month")]
StoreOptions = {
    "config": (
        Path | None,
        typer.Option(
            "--config",
            help=f"YAML file with settings sections ({', '.join(Settings.model_fields)}; "
            "see nonrecours.core.config); options given here win.",
            exists=True,
            dir_okay=False,
        ),
    ),
    "quiet": (bool, typer.Option("--quiet", "-q", help="No progress bars or tables.")),
    "tracking_uri": (str | None, typer.Option("--tracking-uri", help=field_help("registry", "tracking_uri"))),
    "decision_log": (
        str | None,
        typer.Option(
            "--decision-log", help=field_help("serving", "decision_log_url") + " --decision-log overrides both."
        ),
    ),
    "secrets": (
        Path | None,
        typer.Option(
            "--secrets",
            help="File of KEY=value secrets (NONRECOURS_PSEUDONYM_KEY, NONRECOURS_API_KEYS), "
            "as `nonrecours keys` writes; the environment wins over it.",
            exists=True,
            dir_okay=False,
        ),
    ),
    "scheduler": (
        str | None,
        typer.Option(
            "--scheduler",
            help="Dask scheduler address (tcp://host:8786) to run the law engine's "
            "partitions on a cluster; default: local processes.",
        ),
    ),
}
"""The options a command asks for by name (``command(wants=...)``), with ``--config`` always."""
DEFAULTS = {"quiet": False}


def fail(message: str) -> typing.NoReturn:
    raise UserError(message)


def run_or_exit(step: Callable[[], Any]) -> Any:
    """``step()``; a problem the user can fix is printed and exits 2."""
    try:
        return step()
    except UserError as exc:
        console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(code=2) from None


def command(group: typer.Typer = app, name: str | None = None, *, wants: tuple[str, ...] = ()) -> Callable:
    """Declare ``func(run, **options)`` as a command of ``group``. Its options made by
    :func:`setting` set the settings; ``wants`` names the shared options it takes (``quiet``,
    ``tracking_uri``, ``decision_log``, ``secrets``, ``scheduler``); ``--config`` is always there."""

    def declare(func: Callable) -> Callable:
        hints = typing.get_type_hints(func, include_extras=True)
        own = [
            p.replace(annotation=hints[p.name]) for p in inspect.signature(func).parameters.values() if p.name != "run"
        ]
        keys = {
            p.name: key
            for p in own
            for m in getattr(p.annotation, "__metadata__", ())
            if (key := getattr(m, "nonrecours_setting", None))
        }
        shared = [_shared(n) for n in ("config", *wants)]

        @functools.wraps(func)
        def invoked(**given: Any) -> Any:
            chosen = {n: given.pop(n) for n in ("config", *wants)}
            overrides = {keys[n]: given.pop(n) for n in list(given) if n in keys}
            return run_or_exit(lambda: func(open_run(chosen, overrides), **given))

        invoked.__signature__ = inspect.Signature([*own, *shared])  # type: ignore[attr-defined]  # what Typer reads
        invoked.__annotations__ = {p.name: p.annotation for p in (*own, *shared)}
        group.command(name)(invoked)
        return func

    return declare


def _shared(name: str) -> inspect.Parameter:
    kind, option = StoreOptions[name]
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=DEFAULTS.get(name), annotation=Annotated[kind, option]
    )


def open_run(chosen: dict[str, Any], overrides: dict[str, Any]) -> Run:
    """The settings (defaults, ``--config``, the options) and the stores of one command."""
    settings = load_settings(chosen["config"], **overrides)
    return Run(
        settings,
        Environment.from_os(),
        config=chosen["config"],
        tracking=chosen.get("tracking_uri"),
        log_url_option=chosen.get("decision_log"),
        secrets_file=chosen.get("secrets"),
        scheduler=chosen.get("scheduler"),
        quiet=bool(chosen.get("quiet")),
    )


def frame_table(df: pd.DataFrame, title: str) -> Table:
    """A table of a frame as the terminal shows it: large numbers with thousands, small ones to 3 places."""
    t = Table(title=title)
    for col in df.columns:
        t.add_column(str(col))
    for row in df.itertuples(index=False):
        t.add_row(*[_cell(v) for v in row])
    return t


def _cell(v: object) -> str:
    if v is None or v != v:
        return "-"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3f}"
    return str(v)


def say(run: Run, text: str) -> None:
    if not run.quiet:
        console.print(text, soft_wrap=True)
