"""The errors a user can cause, as opposed to bugs.

Every problem a user (or a file a user was given) can cause raises a subclass of
:class:`UserError`: a missing or damaged dataset, a checkpoint that asks for something not
allowed, an unknown name, a bad option, an output path that cannot be written. Its message
names the problem and the fix in one line. The command line catches exactly this class and
prints that line (exit code 1); anything else is a bug and keeps its traceback.

``UserError`` derives from ``ValueError`` so that library callers who already catch
``ValueError`` keep working.
"""

from __future__ import annotations


class UserError(ValueError):
    """A problem with the user's input, files or options; the message says what to do."""


class UnknownNameError(UserError, KeyError):
    """A name (task, dataset, policy type, ...) that no registry knows.

    Also a ``KeyError``: looking a name up in a table is what failed.
    """

    def __str__(self) -> str:
        # KeyError's str() quotes its argument; this message is a sentence.
        return str(self.args[0]) if self.args else ""


class OptionError(UserError):
    """A command-line option or config value outside what it accepts."""


class OutputPathError(UserError):
    """An output file or directory that cannot be written (exists, is a file, no permission)."""


class InvalidActionError(UserError):
    """An action an environment cannot execute (wrong shape, NaN or infinite values)."""
