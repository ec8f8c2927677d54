"""Commands on the blob store: upload a local file as a pipeline input."""

from __future__ import annotations

from pathlib import Path

import click

from jobrunner.cli.common import load_settings, run
from jobrunner.store.blob_backends import blob_store


@click.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def upload(path: Path) -> None:
    """Copy a local file into the blob store (JOBRUNNER_BLOB_URL, else the data dir) and print
    its upload:// uri."""

    async def go() -> str:
        settings = load_settings()
        return await blob_store(settings).put_file(path, scheme="upload")

    click.echo(run(go))
