"""`strongroom`: initialize, serve and administer a strongroom deployment."""

from __future__ import annotations

import os
import sys

import click

from strongroom import __version__
from strongroom.cli import awsprofile
from strongroom.cli.options import data_dir_option, database_option
from strongroom.cli.output import console, expected_error, fail
from strongroom.cli.accounts import account, create_account_with_admin
from strongroom.cli import backup as backup_commands
from strongroom.cli import iam as iam_commands
from strongroom.cli.audit import audit
from strongroom.cli.usage import usage
from strongroom.audit import signing as audit_signing
from strongroom.audit.settings import audit_settings
from strongroom.config import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_REGION, load_settings
from strongroom.cli import rootkeys as rootkey_cli
from strongroom.cli.rekey import rekey
from strongroom.cli import rotation as rotation_cli
from strongroom.crypto.rootkey import RootKeyError
from strongroom.storage import open_store
from strongroom.storage import migrate as migrate_state
from strongroom.storage.migrate import schema_state, upgrade


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="strongroom")
def cli() -> None:
    """strongroom: a self-hosted secrets manager that speaks the AWS Secrets Manager API."""


@cli.command()
@data_dir_option
@database_option
@click.option("--region", default=DEFAULT_REGION, show_default=True, help="Region written into the AWS profile.")
@click.option("--profile", default="strongroom", show_default=True, help="AWS profile to write the admin key to.")
@click.option("--no-profile", is_flag=True, help="Print the admin key instead of writing an AWS profile.")
@click.option("--endpoint-url", default=f"http://{DEFAULT_HOST}:{DEFAULT_PORT}", show_default=True,
              help="Endpoint written into the AWS profile.")
@rootkey_cli.source_options("--root-key")
def init(data_dir: str | None, database_url: str | None, region: str, profile: str, no_profile: bool,
         endpoint_url: str, **root_key_options: object) -> None:
    """Create the data directory, root key, first account and an administrator access key.

    Running it again on an initialized data directory changes nothing.
    """
    settings = load_settings(data_dir, database_url)
    try:
        rootkey_cli.check_source_options(str(root_key_options.get("source") or settings.root_key_source),
                                         dict(root_key_options))
    except RootKeyError as exc:
        fail(str(exc))
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not settings.config_path.exists():
        settings.config_path.write_text(f'[server]\nregion = "{region}"\n')
    audit_signing.load_or_create(audit_settings(settings.audit, settings.data_dir).signing_key_path)
    try:  # the root key source: file (default), passphrase, pkcs11 or kms; recorded in config.toml
        root = rootkey_cli.init_root_key(settings, dict(root_key_options))
    except (RootKeyError, ValueError) as exc:
        fail(str(exc))
        return
    store = open_store(settings.database_url)
    try:
        upgrade(store)
        with store.write() as tx:
            if tx.list_accounts():
                console.print(f"strongroom is already initialized in {settings.data_dir}")
                return
            if root is None:
                fail("the root key is sealed: pass --passphrase-file to finish initializing")
                return
            new = create_account_with_admin(tx, root, "main")
            account_id, key_id, secret = new.account_id, new.access_key_id, new.secret_access_key
    finally:
        store.close()
    console.print(f"Initialized strongroom in {settings.data_dir}")
    console.print(f"  account  {account_id}")
    console.print(f"  admin    arn:aws:iam::{account_id}:user/admin  (access key {key_id})")
    if no_profile:
        click.echo(f"aws_access_key_id = {key_id}")
        click.echo(f"aws_secret_access_key = {secret}")
        console.print("The secret access key is shown only this once.")
    else:
        awsprofile.write_profile(profile, region=region, endpoint_url=endpoint_url,
                                 access_key_id=key_id, secret_access_key=secret)
        console.print(f"  profile  '{profile}' written to {awsprofile.config_path()} "
                      f"and {awsprofile.credentials_path()}")
        console.print(f"Try: aws --profile {profile} secretsmanager list-secrets")


@cli.command()
@data_dir_option
@database_option
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int, help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="PEM certificate for HTTPS.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="PEM private key for HTTPS.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--forwarded-allow-ips", metavar="ADDRESSES",
              help="Comma-separated addresses of reverse proxies (or '*') whose X-Forwarded-For and "
                   "X-Forwarded-Proto name the caller's address and scheme (audit records, aws:SourceIp, "
                   "aws:SecureTransport). Without it, no forwarding header is trusted.")
def serve(data_dir: str | None, database_url: str | None, host: str, port: int, workers: int,
          tls_cert: str | None, tls_key: str | None, log_level: str, forwarded_allow_ips: str | None) -> None:
    """Serve the AWS-compatible API over HTTP (or HTTPS with --tls-cert/--tls-key)."""
    import uvicorn

    from strongroom.server import configure_logging, create_app, open_runtime

    if bool(tls_cert) != bool(tls_key):
        fail("--tls-cert and --tls-key go together")
    settings = load_settings(data_dir, database_url)
    configure_logging(log_level.upper())
    if workers > 1 and settings.root_key.get("source") == "passphrase":
        fail("a passphrase root key is unsealed in one process: serve it with --workers 1")
    if not settings.root_key and not settings.root_key_path.exists():
        # Nothing was ever initialized here: say so before a database is created and migrated.
        fail(f"{settings.data_dir} holds no strongroom root key: run `strongroom init` first "
             "(or name the data directory with --data-dir)")
    try:
        rt = open_runtime(settings)
    except RootKeyError as exc:
        fail(str(exc))
        return
    from strongroom.http import admin

    # The local admin endpoint (unseal, rekey) answers loopback requests carrying this token.
    token = admin.new_token()
    local_host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    local_host = f"[{local_host}]" if ":" in local_host else local_host
    admin.publish(settings.data_dir, f"{'https' if tls_cert else 'http'}://{local_host}:{port}", token)
    if rt.keys is not None and rt.keys.sealed:
        console.print("strongroom is sealed: run `strongroom unseal` to start answering requests")
    common = dict(host=host, port=port, log_config=None, access_log=False, ssl_certfile=tls_cert,
                  ssl_keyfile=tls_key, log_level=log_level, server_header=False,
                  proxy_headers=bool(forwarded_allow_ips), forwarded_allow_ips=forwarded_allow_ips)
    console.print(f"strongroom serving on {'https' if tls_cert else 'http'}://{host}:{port} "
                  f"(data: {settings.data_dir})")
    try:
        if workers == 1:
            uvicorn.run(create_app(rt, token), **common)  # type: ignore[arg-type]
        else:
            rt.store.close()
            os.environ["STRONGROOM_DATA_DIR"] = str(settings.data_dir)
            os.environ["STRONGROOM_DATABASE_URL"] = settings.database_url
            os.environ["STRONGROOM_ADMIN_TOKEN"] = token
            # A worker opening its runtime on a busy host can take longer than uvicorn's default 5 s
            # health check; being killed and restarted for it would only add load.
            uvicorn.run("strongroom.server:app_from_env", factory=True, workers=workers,  # type: ignore[arg-type]
                        timeout_worker_healthcheck=60, **common)
    finally:
        admin.withdraw(settings.data_dir, token)


@cli.command()
@data_dir_option
@database_option
@click.option("--check", is_flag=True,
              help="Only report where the schema is (exit 1 when `strongroom migrate` has work to do).")
def migrate(data_dir: str | None, database_url: str | None, check: bool) -> None:
    """Bring the database schema up to date (expand migrations only; see docs/deployment.md).

    A schema newer than this release (a newer release migrated it during a rolling
    upgrade) is left alone: this release keeps working on it.
    """
    settings = load_settings(data_dir, database_url)
    store = open_store(settings.database_url, pool_size=1)
    try:
        before = schema_state(store)
        if check:
            console.print(f"schema revision {before.current or 'none'}, this release's latest {before.head}: "
                          + _CHECK_VERDICT[before.state])
            # Exit 1 only when this release has migrations to apply: an old release asked about a
            # newer schema during a rolling upgrade must answer "fine" (0), not "pending".
            sys.exit(1 if before.state in (migrate_state.BEHIND, migrate_state.EMPTY) else 0)
        upgrade(store)
        after = schema_state(store)  # the database's own revision, not this release's head
        if after.state == migrate_state.NEWER:
            console.print(f"schema at revision {after.current}, newer than this release knows "
                          f"(latest {after.head}); nothing to do")
        else:
            console.print(f"schema at revision {after.current} (was {before.current or 'none'})")
    finally:
        store.close()


_CHECK_VERDICT = {
    migrate_state.CURRENT: "up to date",
    migrate_state.BEHIND: "the schema is behind this release; run `strongroom migrate`",
    migrate_state.EMPTY: "no strongroom schema; run `strongroom init` or `strongroom migrate`",
    migrate_state.NEWER: "the schema is newer than this release knows (a newer release migrated it); "
                         "this release runs on it",
}


cli.add_command(iam_commands.iam)
cli.add_command(rotation_cli.rotation)
cli.add_command(rotation_cli.functions)
cli.add_command(rootkey_cli.unseal)
cli.add_command(rootkey_cli.seal)
cli.add_command(rekey)
cli.add_command(account)
cli.add_command(backup_commands.backup)
cli.add_command(backup_commands.restore)
cli.add_command(audit)
cli.add_command(usage)


def main() -> None:
    try:
        cli()
    except Exception as exc:  # noqa: BLE001 - an expected failure is one line; any other keeps its traceback
        message = expected_error(exc)
        if message is None:
            raise
        fail(message)


if __name__ == "__main__":
    main()
