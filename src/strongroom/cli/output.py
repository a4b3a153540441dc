"""Where commands print: results on standard output, messages and errors on standard error."""

from __future__ import annotations

import sys
from typing import NoReturn

from rich.console import Console
from rich.markup import escape

console = Console(stderr=True, soft_wrap=True)
out = Console()


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: message` and exit. The message is text, never markup: `[root_key]` stays."""
    console.print(f"[red]error:[/red] {escape(message)}")
    sys.exit(code)


def expected_error(exc: BaseException) -> str | None:
    """The one-line message of a failure a command may meet in normal use (a bad file, an
    unreachable endpoint or database...), or None for a fault, which keeps its traceback."""
    import botocore.exceptions
    import sqlalchemy.exc
    import yaml

    from strongroom.crypto.rootkey import RootKeyError

    if isinstance(exc, sqlalchemy.exc.SQLAlchemyError):
        orig = getattr(exc, "orig", None)
        return f"the database could not be used: {orig if orig is not None else exc}"
    if isinstance(exc, yaml.YAMLError):
        return f"not valid YAML: {exc}"
    if isinstance(exc, (OSError, ValueError, RootKeyError, botocore.exceptions.BotoCoreError)):
        return str(exc)
    return None
