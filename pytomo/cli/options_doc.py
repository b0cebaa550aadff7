"""docs/options.md, generated from the settings table: ``python -m pytomo.cli.options_doc --write``."""

from __future__ import annotations

import sys
from pathlib import Path

from pytomo.cli.crawl import REMOVED
from pytomo.cli.status import ExitStatus
from pytomo.settings import GROUPS, PLUGIN_SECTIONS, SETTINGS, Setting, described

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "options.md"

HEAD = """\
# start_crawl.py options

<!-- generated from pytomo/settings.py by `python -m pytomo.cli.options_doc --write`: edit the table there -->

`start_crawl.py`, `pytomo crawl` and the executable's `crawl` take the same options. Settings are layered:
built-in defaults < the environment variables of the default column (`$PYTOMO_YOUTUBE_API_KEY`, ...) < a TOML file
given with `--config FILE` < the command line. The keys of the file are the setting names below: the core settings
at top level (or all under `[pytomo]`), and each service plugin's own settings in the plugin's table, {tables}
(`youtube.api_key` below is `api_key` in `[youtube]`, or in `[pytomo.youtube]` under `[pytomo]`).
The flat names older files use (`youtube_api_key`) are read too. An unknown key, or one setting given both ways,
is refused with one line naming it. Settings without an option are set in that file:

```toml
ping_count = 5
database_dir = "/var/lib/pytomo"

[youtube]
api_key = "..."
region = "FR"

[dailymotion]
sort = "trending"
```

Every setting of a run is stored in `run.settings_json` by its flat name, as its row below says (secrets only as
`<set>`, local files by their base names, URLs without their user:password). `pytomo crawl --help` shows the same
table with the same defaults.
"""

STORED = {  # what the meaning column says of how run.settings_json keeps a setting (Setting.stored)
    "value": "",
    "secret": "never stored nor logged: only whether it is set",
    "set": "stored as `<set>` unless the default",
    "base-name": "stored by its base name",
    "redacted-url": "stored without a user:password",
}
TRUSTED_HOST = "its host may be non-global (as the URLs given)"

BUDGETS = """\
Crossing a budget is a stored outcome with its kind, never a crash or a silent cut.
"""

EXIT = """\
Exit status (the same for every command: `pytomo crawl`, `server`, `lab`, `rrd`, `p1203`): {OK} done, {FAILURE}
the run could not start or could not go on (the database directory cannot be written, or the disk filled up
mid-crawl: one line, the summary, and a database that holds every video stored before), {USAGE} bad command line
or a bad file named on it (`-f`, `--config`, `--lab-scenario`), {INTERRUPTED} interrupted (the database is whole
and the summary printed).
"""


def option_cell(s: Setting) -> str:
    """The option column: flags (with the metavar), the flags that undo a bool, or a positional's metavar."""
    flags = [f for f in s.flag if f.startswith("-")]
    if s.flag and not flags:
        return f"`{s.metavar or s.name} ...`"
    if not flags and not s.negative:
        return ""
    metavar = f" {s.metavar}" if s.metavar and s.kind is not bool else ""
    cell = ", ".join(f"`{f}{metavar if i == 0 else ''}`" for i, f in enumerate(flags))
    undo = ", ".join(f"`{f}`" for f in s.negative)
    return f"{cell} / {undo}" if cell and undo else cell or undo


def _row(s: Setting) -> str:
    shown = s.shown_default()
    default = f"`{shown}`" if shown and isinstance(s.default, str) and not s.shown and not s.env else shown
    meaning = "; ".join(part for part in (described(s), s.note, STORED[s.stored], TRUSTED_HOST * s.trusted_host)
                        if part)
    return f"| {option_cell(s)} | `{s.key}` | {_markdown(default)} | {_markdown(meaning)} |"


def _plugin_intro(name: str) -> str:
    """What a plugin's section says before its table: where its settings go in the config file."""
    first = next(s for s in SETTINGS if s.plugin == name)
    return (f"The `{name}` plugin's own settings: in a config file, the keys of its table `[{name}]` "
            f"(`{first.key.partition('.')[2]} = ...`); their flat names (`{first.name}`) are read too, and are their "
            "names in `run.settings_json`.\n")


def _markdown(text: str) -> str:
    """``<`` outside code spans as an entity (``<video>``, ``<N>p`` are not HTML)."""
    parts = text.split("`")
    return "`".join(p if i % 2 else p.replace("<", "&lt;") for i, p in enumerate(parts))


def _removed() -> str:
    by_reason: dict[str, list[str]] = {}
    for flag, reason in REMOVED.items():
        by_reason.setdefault(reason, []).append(f"`{flag}`")
    parts = [f"{', '.join(flags)} ({reason})" for reason, flags in by_reason.items()]
    return f"Removed 2015 options answer with one line and exit status {ExitStatus.USAGE}: {'; '.join(parts)}.\n"


def options_markdown() -> str:
    """The text of docs/options.md: one table per group of the settings table, and the notes around it."""
    out = [HEAD.rstrip("\n").replace("{tables}", " or ".join(f"`[{name}]`" for name in PLUGIN_SECTIONS))]
    for key, title in GROUPS.items():
        out += ["", f"## {title}", ""]
        if key == "budgets":
            out += [BUDGETS]
        if key in PLUGIN_SECTIONS:
            out += [_plugin_intro(key)]
        out += ["| option | setting | default | meaning |", "|---|---|---|---|"]
        out += [_row(s) for s in SETTINGS if s.group == key]
        if key == "output":
            out += ["| `--config FILE` | | | TOML file of settings |",
                    "| `-V`, `--version` | | | print Pytomo's version, yt-dlp's, and the JS runtime and yt-dlp-ejs "
                    "yt-dlp finds |"]
    out += ["", _removed(), EXIT.format(**{s.name: int(s) for s in ExitStatus})]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Print the generated docs/options.md, or ``--write`` it."""
    argv = sys.argv[1:] if argv is None else argv
    text = options_markdown()
    if argv == ["--write"]:
        DOC_PATH.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return ExitStatus.OK


if __name__ == "__main__":
    sys.exit(main())
