"""Which errors of a ``flyte-prebuilt`` command are the user's to fix: those become one line saying what to fix
(``command_line.UserMistake``, exit code 2); anything else is a bug and keeps its traceback. Set
``FLYTE_PREBUILT_TRACEBACK=1`` to see the traceback behind such a line."""

from __future__ import annotations

import os

import click
from flytekitplugins.prebuilt.command_line import UserMistake, mistake

TRACEBACK_ENV = "FLYTE_PREBUILT_TRACEBACK"


class Commands(click.Group):
    """Turns the errors a user can fix into ``UserMistake``; anything else is a bug and keeps its traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:
            message = mistake(error)
            if message is None or os.environ.get(TRACEBACK_ENV):
                raise
            raise UserMistake(message) from None
