"""Option parsing shared by every ``polymimic`` subcommand: bounded values, one-line errors.

Every bad option is refused before any work starts, in one line naming the option, what it
accepts and where to read more, with exit code 1 (argparse's default is a usage block and
exit code 2).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn

from polymimic.errors import OptionError

#: Exit code of every user error (bad option, bad file, unwritable output).
USER_ERROR_EXIT = 1


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr and exit code 1.

    Subparsers made from it (``add_subparsers``) are of this class too.
    """

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(USER_ERROR_EXIT)


def int_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type`` accepting integers in ``[low, high]``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside [{low}, {high}]")
        return value

    parse.__name__ = "integer"  # argparse names the type in its messages
    return parse


def float_in(low: float, high: float, high_open: bool = False) -> Callable[[str], float]:
    """An argparse ``type`` accepting finite floats in ``[low, high]`` (``[low, high)``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        above = value >= high if high_open else value > high
        if not value >= low or above:  # "not >=" also refuses NaN
            bracket = ")" if high_open else "]"
            raise argparse.ArgumentTypeError(f"{text} is outside [{low}, {high}{bracket}")
        return value

    parse.__name__ = "number"
    return parse


def check_option(condition: bool, message: str) -> None:
    """Raise ``OptionError(message)`` unless ``condition`` (for checks across options)."""
    if not condition:
        raise OptionError(message)
