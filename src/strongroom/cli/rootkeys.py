"""Root-key commands: the `init` options choosing a source, `unseal`, `seal` and `rekey`.

`unseal`, `seal` and `rekey` talk to the running server through its local
admin endpoint, at the address and with the token the server wrote to
`<data dir>/admin.json` when it started (see http/admin.py).
"""

from __future__ import annotations

import json
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from strongroom.cli.options import data_dir_option
from strongroom.cli.output import console, fail
from strongroom.config import Settings, load_settings
from strongroom.crypto.rootkey import RootKey, RootKeyError
from strongroom.rootkeys import configfile, sources
from strongroom.rootkeys.sources import Spec

ADMIN_FILE = "admin.json"


# -- choosing a source (init, rekey --to) ------------------------------------------------
def source_options(flag: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options that describe a root-key source; `flag` names the source (--root-key or --to)."""
    opts = [
        click.option(flag, "source", type=click.Choice(sources.SOURCES),
                     help="Root key source (default for init: file)."),
        click.option("--passphrase-file", type=click.Path(dir_okay=False, allow_dash=True),
                     help="passphrase: read the passphrase from this file ('-' for stdin) instead of prompting."),
        click.option("--shares", type=click.IntRange(1, 255), help="passphrase: make this many unseal shares "
                     "(Shamir) instead of using a passphrase."),
        click.option("--threshold", type=click.IntRange(1, 255), help="passphrase: shares needed to unseal."),
        click.option("--pkcs11-module", help="pkcs11: path of the PKCS#11 module (.so)."),
        click.option("--pkcs11-token-label", help="pkcs11: label of the token holding the key."),
        click.option("--pkcs11-key-label", help="pkcs11: label of the AES key (created if absent)."),
        click.option("--pkcs11-pin-env", help=f"pkcs11: environment variable holding the PIN "
                     f"[default: {sources.DEFAULT_PIN_ENV}]."),
        click.option("--kms-endpoint-url", help="kms: endpoint of the AWS-KMS-compatible service."),
        click.option("--kms-key-id", help="kms: the external key (id, ARN or alias)."),
        click.option("--kms-region", help="kms: region of the external key [default: us-east-1]."),
        click.option("--kms-profile", help="kms: AWS profile whose credentials call the external KMS "
                     "(default: the usual AWS credential chain)."),
    ]

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for opt in reversed(opts):
            fn = opt(fn)
        return fn
    return decorate


def read_secret_lines(path: str | None) -> list[str]:
    """Non-empty lines of a file ('-': stdin), or of stdin when it is not a terminal."""
    if path == "-" or (path is None and not sys.stdin.isatty()):
        text = sys.stdin.read()
    elif path is not None:
        text = Path(path).read_text(encoding="utf-8")
    else:
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


_SOURCE_OPTIONS = {"passphrase": ("passphrase_file", "shares", "threshold"),
                   "pkcs11": ("pkcs11_module", "pkcs11_token_label", "pkcs11_key_label", "pkcs11_pin_env"),
                   "kms": ("kms_endpoint_url", "kms_key_id", "kms_region", "kms_profile")}


def check_source_options(source: str, o: dict[str, Any]) -> None:
    """Refuse options that belong to another source, or share counts that cannot work, before
    anything is written."""
    for owner, names in _SOURCE_OPTIONS.items():
        given = [n for n in names if o.get(n)]
        if given and owner != source:
            flags = ", ".join("--" + n.replace("_", "-") for n in given)
            raise RootKeyError(f"{flags} go with the {owner} source, not {source}")
    if o.get("threshold") and not o.get("shares"):
        raise RootKeyError("--threshold needs --shares")
    if o.get("shares") and not 1 <= (o.get("threshold") or o["shares"]) <= o["shares"]:
        raise RootKeyError("need 1 <= --threshold <= --shares <= 255")


def spec_from_options(source: str, o: dict[str, Any], *, confirm: bool) -> Spec:
    """The spec (and, for a passphrase source, the passphrase or share counts) the options describe."""
    spec: Spec = {"source": source}
    if source == "passphrase":
        if o.get("shares"):
            spec["shares"], spec["threshold"] = o["shares"], o.get("threshold") or o["shares"]
        else:
            lines = read_secret_lines(o.get("passphrase_file"))
            spec["passphrase"] = lines[0] if lines else click.prompt(
                "New passphrase", hide_input=True, confirmation_prompt=confirm, err=True)
    elif source == "pkcs11":
        for opt, key in (("pkcs11_module", "module"), ("pkcs11_token_label", "token_label"),
                         ("pkcs11_key_label", "key_label"), ("pkcs11_pin_env", "pin_env")):
            if o.get(opt):
                spec[key] = o[opt]
    elif source == "kms":
        for opt, key in (("kms_endpoint_url", "endpoint_url"), ("kms_key_id", "key_id"),
                         ("kms_region", "region"), ("kms_profile", "profile")):
            if o.get(opt):
                spec[key] = o[opt]
    return spec


def print_shares(shares: list[str], threshold: int) -> None:
    console.print(f"[bold]Unseal shares[/bold] — any {threshold} of these {len(shares)} unseal strongroom. "
                  "They are shown only this once; give each to a different person.")
    for share in shares:
        click.echo(share)


def init_root_key(settings: Settings, o: dict[str, Any]) -> RootKey | None:
    """Create the root key `init` asked for and record it in config.toml; load it if it exists.

    Returns None when the key exists but is sealed (a passphrase source given no passphrase).
    """
    configured = sources.normalize(settings.root_key)
    source = o.get("source") or configured["source"]
    if settings.root_key and source != configured["source"]:
        raise RootKeyError(f"config.toml already names the {configured['source']} root key source")
    if source == "pkcs11" and not o.get("pkcs11_key_label"):
        o = {**o, "pkcs11_key_label": "strongroom-root"}
    if source == "kms" and not o.get("kms_key_id"):
        raise RootKeyError("--root-key kms needs --kms-key-id")
    if settings.root_key or source == "file":
        existing = _existing(settings, configured if settings.root_key else {"source": "file"}, o)
        if existing is not False:
            return existing  # type: ignore[return-value]
    created = sources.create(spec_from_options(source, o, confirm=True), settings.data_dir)
    if source != "file" or created.spec != {"source": "file"}:
        configfile.write_root_key(settings.config_path, created.spec)
    if created.shares:
        print_shares(created.shares, int(o.get("threshold") or o.get("shares") or len(created.shares)))
    return created.key


def _existing(settings: Settings, spec: Spec, o: dict[str, Any]) -> RootKey | None | bool:
    """The configured key if it exists (None if sealed), False if it must be created."""
    data_dir = settings.data_dir
    match spec["source"]:
        case "file":
            if not (data_dir / spec.get("path", "root.key")).exists():
                return False
        case "passphrase":
            if not (data_dir / spec.get("path", "root-passphrase.json")).exists():
                return False
            vault = sources.vault_of(spec, data_dir)
            lines = read_secret_lines(o.get("passphrase_file")) if o.get("passphrase_file") else []
            if not lines:
                return None
            kek = vault.combine(lines) if vault.mode == "shares" else vault.derive(lines[0])
            return sources.load(spec, data_dir, kek)
        case "kms":
            if not (data_dir / spec.get("path", "root-kms.json")).exists():
                return False
    return sources.load(spec, data_dir)


# -- talking to the running server -------------------------------------------------------
def _admin(data_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((data_dir / ADMIN_FILE).read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def call(data_dir: Path, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    admin = _admin(data_dir)
    if admin is None:
        fail(f"no running strongroom server found for {data_dir} (no {ADMIN_FILE}); start `strongroom serve`")
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(admin["url"] + "/_strongroom/" + path, data=data, method=method,
                                 headers={"x-strongroom-admin-token": admin["token"],
                                          "content-type": "application/json"})
    # Loopback only: the server's certificate (if any) names its public host, not 127.0.0.1.
    context = ssl._create_unverified_context() if admin["url"].startswith("https") else None
    try:
        with urllib.request.urlopen(req, timeout=120, context=context) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as err:
        try:
            message = json.loads(err.read()).get("message", "")
        except ValueError:
            message = err.reason
        fail(message)
    except OSError as exc:
        fail(f"cannot reach the strongroom server at {admin['url']}: {exc}")


def server_running(data_dir: Path) -> bool:
    admin = _admin(data_dir)
    if admin is None:
        return False
    try:
        with urllib.request.urlopen(admin["url"] + "/health", timeout=3,
                                    context=ssl._create_unverified_context()):
            return True
    except OSError:
        return False


def describe_status(status: dict[str, Any]) -> str:
    if status["sealed"]:
        unseal = status.get("unseal", {})
        if unseal.get("mode") == "shares":
            return f"sealed ({unseal['progress']} of {unseal['threshold']} shares given)"
        return "sealed"
    return f"unsealed (root key {status.get('root_key_id')}, {status.get('description')})"


@click.command()
@data_dir_option
@click.option("--passphrase-file", type=click.Path(dir_okay=False, allow_dash=True),
              help="Read the passphrase, or shares one per line, from this file ('-' for stdin).")
@click.option("--reset", is_flag=True,
              help="Forget the shares given so far (then read shares only from --passphrase-file).")
def unseal(data_dir: str | None, passphrase_file: str | None, reset: bool) -> None:
    """Unseal the running server: a passphrase, or one share at a time until the threshold is met.

    A server whose root key comes from a file, PKCS#11 or an external KMS reads it again."""
    root = load_settings(data_dir).data_dir
    status = call(root, "POST", "unseal", {"reset": True}) if reset else call(root, "GET", "status")
    if not status["sealed"] or (reset and passphrase_file is None):  # --reset alone only forgets
        console.print(describe_status(status))
        return
    mode = status.get("unseal", {}).get("mode", "passphrase")
    if mode == "source":  # a key file, PKCS#11 or an external KMS: read again, nothing to type
        console.print(describe_status(call(root, "POST", "unseal", {})))
        return
    lines = read_secret_lines(passphrase_file)
    if mode == "passphrase":
        text = lines[0] if lines else click.prompt("Passphrase", hide_input=True, err=True)
        status = call(root, "POST", "unseal", {"passphrase": text})
    else:
        for share in lines or [click.prompt("Unseal share", hide_input=True, err=True)]:
            status = call(root, "POST", "unseal", {"share": share})
            if not status["sealed"]:
                break
    console.print(describe_status(status))


@click.command()
@data_dir_option
def seal(data_dir: str | None) -> None:
    """Seal the running server: it forgets its root key until the next `strongroom unseal`."""
    status = call(load_settings(data_dir).data_dir, "POST", "seal", {})
    console.print(describe_status(status))
