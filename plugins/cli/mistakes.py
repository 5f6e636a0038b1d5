"""Which errors of a ``flyte-prebuilt`` command are the user's to fix: those become one line saying what to fix
(``command_line.UserMistake``, exit code 2); anything else is a bug and keeps its traceback. Set
``FLYTE_PREBUILT_TRACEBACK=1`` to see the traceback behind such a line."""

from __future__ import annotations

import os
import typing

import click
from flytekitplugins.prebuilt.command_line import UserMistake

TRACEBACK_ENV = "FLYTE_PREBUILT_TRACEBACK"
CREDENTIAL_ERRORS = {  # exception class name -> what to set (by the library that raises it)
    "NoCredentialsError": "AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)",
    "PartialCredentialsError": "complete AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
    "DefaultCredentialsError": (
        "Google Cloud credentials (GOOGLE_APPLICATION_CREDENTIALS, or gcloud auth application-default login)"
    ),
    "CredentialUnavailableError": (
        "Azure credentials (AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY, or az login)"
    ),
    "ClientAuthenticationError": "valid Azure credentials (AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY)",
}


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


def mistake(error: BaseException) -> typing.Optional[str]:
    """What the user should fix, when ``error`` (or an error behind it) is theirs to fix."""
    from flytekitplugins.prebuilt.docker_engine import DockerUnavailable
    from flytekitplugins.prebuilt.emulator import InputError
    from flytekitplugins.prebuilt.kit.config import ConfigError
    from flytekitplugins.prebuilt.kit.errors import UserError

    for cause in _chain(error):
        if type(cause).__name__ in CREDENTIAL_ERRORS:
            return f"no cloud credentials ({cause}); set {CREDENTIAL_ERRORS[type(cause).__name__]}"
    if isinstance(error, (InputError, UserError, ConfigError, DockerUnavailable)):
        return str(error)
    return None


def _chain(error: BaseException) -> list[BaseException]:
    """The error and every error behind it (a suppressed context too: it may say what was missing)."""
    found: list[BaseException] = []
    cause: typing.Optional[BaseException] = error
    while cause is not None and cause not in found:
        found.append(cause)
        cause = cause.__cause__ or cause.__context__
    return found
