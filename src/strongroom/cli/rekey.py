"""`strongroom rekey`: rotate the root key online (or, with --offline, with the server stopped)."""

from __future__ import annotations

import time
from typing import Any

import click

from strongroom.cli.options import data_dir_option, database_option, initialized_store
from strongroom.cli.output import console, fail
from strongroom.cli.rootkeys import (
    call,
    check_source_options,
    describe_status,
    print_shares,
    server_running,
    source_options,
    spec_from_options,
)
from strongroom.config import load_settings
from strongroom.crypto.rootkey import RootKeyError


@click.command()
@data_dir_option
@database_option
@source_options("--to")
@click.option("--batch-size", default=100, show_default=True, type=click.IntRange(1, 10_000),
              help="Values re-wrapped per transaction.")
@click.option("--pause", default=0.0, show_default=True, type=click.FloatRange(0, 60),
              help="Seconds to wait between batches, to limit the load on a busy server.")
@click.option("--no-wait", is_flag=True, help="Start (or resume) and return; see progress with --status.")
@click.option("--status", "show_status", is_flag=True, help="Only show the progress of the latest rekey.")
@click.option("--offline", is_flag=True, help="Rekey in this process, with no server running.")
@click.option("--finish", "finish", is_flag=True,
              help="After a rekey is done and every node sharing the database has followed it: delete the "
                   "database's copy of the new key (wrapped by the old one).")
def rekey(data_dir: str | None, database_url: str | None, batch_size: int, pause: float, no_wait: bool,
          show_status: bool, offline: bool, finish: bool, **opts: Any) -> None:
    """Generate a new root key (same source, or --to another) and re-wrap everything under it.

    The server keeps serving meanwhile. Progress is durable: a rekey interrupted
    by a crash or a restart resumes where it stopped (at the next start, or by
    running this command again). When every value is re-wrapped and verified,
    config.toml names the new key and the old one is retired.
    """
    settings = load_settings(data_dir, database_url)
    root = settings.data_dir
    if show_status:
        _show(call(root, "GET", "status"))
        return
    if finish:
        _finish(settings)
        return
    try:
        check_source_options(opts.get("source") or settings.root_key_source, opts)
    except RootKeyError as exc:
        fail(str(exc))
    target = spec_from_options(opts["source"], opts, confirm=True) if opts.get("source") else None
    if offline:
        status = _offline(settings, target, batch_size, pause)
    else:
        status = call(root, "POST", "rekey", {"to": target, "batch_size": batch_size, "pause": pause})
    if status.get("shares"):
        print_shares(status["shares"], int(opts.get("threshold") or opts.get("shares") or 0))
    if no_wait or offline:
        _show(status)
        return
    last = None
    while True:
        progress = status.get("rekey", {})
        if progress.get("error"):
            fail(f"the rekey stopped: {progress['error']} (fix the cause, then run `strongroom rekey` "
                  "again to resume)")
        if progress.get("state") == "done":
            break
        line = f"{progress.get('phase')}: {progress.get('rewrapped', 0)} values re-wrapped"
        if line != last:
            console.print(line)
            last = line
        if not progress.get("active"):
            fail("the rekey is not running on the server; run `strongroom rekey` again to resume it")
        time.sleep(0.5)
        status = call(root, "GET", "status")
    _show(status)


def _show(status: dict[str, Any]) -> None:
    console.print(describe_status(status))
    progress = status.get("rekey")
    if not progress:
        console.print("no rekey has run")
        return
    console.print(f"rekey {progress['id']}: {progress['state']} ({progress['phase']}, "
                  f"{progress['rewrapped']} values re-wrapped) {progress['old_root_key_id']} -> "
                  f"{progress['new_root_key_id']}")
    for note in progress.get("notes", []):
        console.print(f"  note: {note}")
    if progress.get("handoff") and progress["state"] == "done" and not progress.get("notes"):
        console.print("  note: the database still holds the new key wrapped by the old one, for nodes that have "
                      "not followed yet; run `strongroom rekey --finish` once every node has")
    if progress.get("error"):
        console.print(f"  [red]stopped:[/red] {progress['error']}")


def _offline(settings: Any, target: dict[str, Any] | None, batch_size: int, pause: float) -> dict[str, Any]:
    from strongroom.rootkeys.manager import RootKeys
    from strongroom.server import unseal_locally

    if server_running(settings.data_dir):
        fail("a strongroom server is running on this data directory; rekey online (without --offline)")
    store = initialized_store(settings)
    try:
        keys = RootKeys(settings, store)
        keys.load()
        unseal_locally(keys, lambda what: str(click.prompt(what, hide_input=True, err=True)))
        status = keys.start_rekey(target, batch_size=batch_size, pause=pause)
        assert keys.job is not None
        keys.job.thread.join()
        final = keys.status()
        if keys.job.error:
            fail(f"the rekey stopped: {keys.job.error}; run `strongroom rekey --offline` again to resume")
        return {**final, "shares": status.get("shares", [])}
    except RootKeyError as exc:
        fail(str(exc))
    finally:
        store.close()


def _finish(settings: Any) -> None:
    """Delete the hand-off straight in the database: it needs no key, so no server either."""
    from strongroom.rootkeys.manager import finish_handoff

    store = initialized_store(settings)
    try:
        count = finish_handoff(store)
    except RootKeyError as exc:
        fail(str(exc))
    finally:
        store.close()
    console.print("the database's copy of the new root key was deleted" if count else
                  "the database holds no copy of a root key; nothing to do")
