"""Fetching an object a template names (a code bundle, a database file) from the object store, failing the way
that lets Flyte retry only what a retry can fix.

A missing object is the task's error: the template points at something that is not there, and no retry will make
it appear (USER, non-recoverable, with the URI). Any other failure to fetch it (the store or the network) may pass
(USER, recoverable). flytekit says "File not found" in both cases (``FlyteDataNotFoundException``, raised when
fsspec's ``exists()`` is False, as it also is when the store cannot be reached); only a ``FileNotFoundError``
underneath means the object is missing.
"""

from __future__ import annotations

from flytekit.core.context_manager import FlyteContextManager
from flytekit.exceptions.user import FlyteDataNotFoundException
from flytekitplugins.prebuilt.kit.errors import TransientError, UserError


def fetch_object(uri: str, local: str, field: str) -> None:
    """Download ``uri`` to the file ``local``; errors start with ``field``, what names the object ("the code bundle",
    "config.sqlite_file")."""
    try:
        FlyteContextManager.current_context().file_access.get_data(uri, local)
    except FlyteDataNotFoundException as error:
        if isinstance(error.__context__, FileNotFoundError):
            raise UserError(f"{field}: {uri} does not exist in the object store") from None
        raise TransientError(f"{field}: cannot fetch {uri}: {reason(error.__context__ or error)}") from None
    except Exception as error:
        raise TransientError(f"{field}: cannot fetch {uri}: {reason(error)}") from None


def reason(error: BaseException) -> str:
    """What went wrong, without flytekit's 'CODE: error=' prefixes or its 'Failed to get data ...' wrapping."""
    text = error.args[0] if error.args and isinstance(error.args[0], str) else str(error) or type(error).__name__
    return text.rpartition("Original exception: ")[2].strip() if "Original exception: " in text else text.strip()
