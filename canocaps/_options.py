"""Command-line conventions shared by every parser: ``canocaps``, ``canocaps extras NAME``, tools/.

* :class:`HelpFormatter`: every option's help ends with its default -- ``(default: 256)``,
  ``(default: off)`` for a switch -- unless the help text already says it; descriptions
  and epilogs keep their line breaks.
* :func:`parse_args`: a bad flag is reported with the usage of the (sub)command it was
  given to (``canocaps eval registration --bogus`` prints ``usage: canocaps eval
  registration ...``), not the top-level usage. Exit status 2, argparse's own message.
* :func:`finish`: applies both to a parser and all its subparsers (call it once the
  parser is built).

Flag spellings (docs/CONTRIBUTING.md): ``-f/--force`` overwrites outputs, ``-o/--output``
or ``-o/--out`` names the output, ``--json`` prints JSON on stdout, ``--json-out PATH``
writes it to a file, ``--no-progress`` silences progress bars, ``--seed`` seeds.
Standard library only.
"""
from __future__ import annotations

import argparse
from typing import Any, Sequence

__all__ = ["HelpFormatter", "finish", "parse_args", "subparsers_of"]


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help that states each option's default (see the module doc)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (not action.option_strings or "default" in text.lower() or action.default is argparse.SUPPRESS
                or isinstance(action, (argparse._HelpAction, argparse._VersionAction))):
            return text
        if isinstance(action, argparse._StoreTrueAction):
            shown = "off"
        elif isinstance(action, argparse._StoreFalseAction):
            shown = "on"
        elif action.default is None:
            return text  # what None means differs by option: its help says it
        elif isinstance(action.default, (list, tuple)):
            shown = ",".join(str(v) for v in action.default) or "none"
        else:
            shown = str(action.default)
        return f"{text} (default: {shown.replace('%', '%%')})".lstrip()


def subparsers_of(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every subparser below ``parser`` (depth first), not ``parser`` itself."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sp in dict.fromkeys(action.choices.values()):  # aliases map to one parser
                out.append(sp)
                out.extend(subparsers_of(sp))
    return out


def finish(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give ``parser`` and its subparsers :class:`HelpFormatter` and sub-command usage errors."""
    for p in [parser, *subparsers_of(parser)]:
        p.formatter_class = HelpFormatter
        p.set_defaults(_parser=p)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> Any:
    """``parser.parse_args(argv)``, but an unknown flag is reported by the subcommand that got it."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        owner = getattr(args, "_parser", parser)
        owner.error(f"unrecognized arguments: {' '.join(extra)}")
    return args
