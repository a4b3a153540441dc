"""Built-in (managed) rotators: no function to write.

RotationLambdaARN arn:aws:lambda:<region>:<account>:function:strongroom-builtin-<engine>-<strategy>
where engine is postgres, mysql (also mariadb) or redis, and strategy is single-user or
alternating-users. The secret holds AWS's JSON shape: engine, host, port, username,
password, dbname, and masterarn (the secret of a user who may manage users) for
alternating users.
"""

from __future__ import annotations

from strongroom.rotation.builtin.common import Strategy, rotate_step
from strongroom.rotation.builtin.engines import ENGINES

PREFIX = "strongroom-builtin-"


def parse(function_name: str) -> tuple[str, Strategy] | None:
    """(engine, strategy) of a built-in rotator's function name, or None."""
    if not function_name.startswith(PREFIX):
        return None
    rest = function_name[len(PREFIX):]
    for strategy in ("single-user", "alternating-users"):
        if rest.endswith("-" + strategy):
            engine = rest[: -len(strategy) - 1]
            if engine in ENGINES:
                return engine, strategy
    return None


__all__ = ["ENGINES", "PREFIX", "parse", "rotate_step"]
