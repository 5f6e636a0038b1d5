"""``flyte-prebuilt``: run templates through the platform emulator, build and publish images, manage
script bundles, run projects. One module per group of commands:

    tasks.py     flyte-prebuilt run examples/sql_quickstart.py big_orders --input min_amount=150 [--in-container]
                 flyte-prebuilt identity examples/sql_quickstart.py big_orders
    images.py    flyte-prebuilt image-name sql
                 flyte-prebuilt images build|publish|release ...   (from a source checkout)
    bundles.py   flyte-prebuilt bundle pack|push|list|download|derive ...
    project/commands.py   flyte-prebuilt project validate|list|show|run|schema   (with the project extra)
                 flyte-prebuilt --version

A user's mistake (a bad or unknown input, a workflow where a prebuilt task is expected, a module that does
not import, a malformed ``--secret``, an unknown task type, missing cloud credentials, no Docker) is one
line on stderr saying what to fix, and exit code 2 (``mistakes.py``); a failed task run is exit code 1. Set
``FLYTE_PREBUILT_TRACEBACK=1`` to see the traceback behind such a line.
"""

from __future__ import annotations

import click
from flytekitplugins.prebuilt.cli.bundles import bundle
from flytekitplugins.prebuilt.cli.images import image_name, images
from flytekitplugins.prebuilt.cli.mistakes import Commands
from flytekitplugins.prebuilt.cli.tasks import identity, run
from flytekitplugins.prebuilt.kit.images import package_version


@click.group(cls=Commands)
@click.version_option(package_version(), "--version", prog_name="flyte-prebuilt", message="%(prog)s %(version)s")
def main() -> None:
    """Prebuilt Flyte task types: emulate the platform, inspect templates, name images."""


for command in (run, identity, image_name, images, bundle):
    main.add_command(command)


def _add_project_commands() -> None:
    """``flyte-prebuilt project ...`` (plugins/project/commands.py), when the project extra is installed."""
    try:
        from flytekitplugins.prebuilt.project.commands import project
    except ImportError:  # without ruamel.yaml/jsonschema the other commands still work
        return
    main.add_command(project)


_add_project_commands()
