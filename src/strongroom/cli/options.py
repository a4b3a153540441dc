"""The options every command shares: where the state is, and which database holds it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from strongroom.config import Settings
from strongroom.storage import Store, open_store

F = TypeVar("F", bound=Callable[..., Any])

data_dir_option = click.option(
    "--data-dir", envvar="STRONGROOM_DATA_DIR", type=click.Path(file_okay=False),
    help="Directory holding strongroom's state [env: STRONGROOM_DATA_DIR].")
database_option = click.option(
    "--database", "database_url", envvar="STRONGROOM_DATABASE_URL",
    help="Database URL, sqlite:///... (default: in the data directory) or postgresql://... "
         "[env: STRONGROOM_DATABASE_URL].")


def location(f: F) -> F:
    """--data-dir and --database."""
    return data_dir_option(database_option(f))


class NotInitialized(click.ClickException):
    """A command that administers state found none: `strongroom init` has not run there."""


def initialized_store(settings: Settings, *, pool_size: int = 8) -> Store:
    """The store of an initialized deployment; an embedded database that does not exist is an
    error, never created empty by an administrative command."""
    url = settings.database_url
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///").split("?", 1)[0]
        if path and path != ":memory:" and not settings.data_dir.joinpath(path).exists():
            raise NotInitialized(f"no strongroom database at {path}: run `strongroom init` first "
                                 "(or name the data directory with --data-dir)")
    return open_store(url, pool_size=pool_size)
