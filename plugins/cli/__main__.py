"""``python -m flytekitplugins.prebuilt.cli``: the ``flyte-prebuilt`` command."""

from flytekitplugins.prebuilt.cli import main

main()
