"""`strongroom iam apply FILE`: accounts, users, roles and policies as code.

The file (YAML or JSON) is the desired state of the principals it names; applying it
twice changes nothing the second time. Principals the file does not name are left alone.

    accounts:
      - name: main                      # or id: "123456789012"
        policies:                       # customer-managed policies
          - name: secrets-read
            document: {Version: "2012-10-17", Statement: [...]}
        users:
          - name: alice
            tags: {team: ops}
            policies: {inline-name: {Version: ..., Statement: [...]}}
            attached: [secrets-read]    # managed policy names or ARNs
        roles:
          - name: app
            trust: {Version: ..., Statement: [...]}
            max_session_duration: 3600
            policies: {...}
            attached: [...]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import click
import yaml

from strongroom.cli.accounts import create_account_recorded
from strongroom.cli.options import location
from strongroom.errors import AwsError


@dataclass
class Plan:
    """What applying the file does, step by step; the steps run in order."""

    steps: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)  # (what, account, op, req)

    def add(self, what: str, account: str, op: str, req: dict[str, Any]) -> None:
        self.steps.append((what, account, op, req))


def _doc(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _same(a: str, b: str) -> bool:
    return json.loads(a) == json.loads(b)


def _tags(value: dict[str, str] | None) -> list[dict[str, str]]:
    return [{"Key": k, "Value": str(v)} for k, v in (value or {}).items()]


def _missing(run: Any, account: str, op: str, req: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return run(account, op, req)  # type: ignore[no-any-return]
    except AwsError as err:
        if err.code == "NoSuchEntity":
            return None
        raise


def _policy_arn(account: str, ref: str, paths: dict[str, str]) -> str:
    if ref.startswith("arn:"):
        return ref
    return f"arn:aws:iam::{account}:policy{paths.get(ref, '/')}{ref}"


def plan_managed(run: Any, plan: Plan, account: str, spec: dict[str, Any]) -> None:
    arn = _policy_arn(account, spec["name"], {spec["name"]: spec.get("path", "/")})
    doc = _doc(spec["document"])
    current = _missing(run, account, "GetPolicy", {"PolicyArn": arn})
    if current is None:
        req = {"PolicyName": spec["name"], "Path": spec.get("path", "/"), "PolicyDocument": doc}
        if spec.get("description"):
            req["Description"] = spec["description"]
        plan.add(f"create policy {arn}", account, "CreatePolicy", req)
        return
    default = current["Policy"]["DefaultVersionId"]
    stored = run(account, "GetPolicyVersion", {"PolicyArn": arn, "VersionId": default})["PolicyVersion"]["Document"]
    if not _same(stored if isinstance(stored, str) else json.dumps(stored), doc):
        versions = run(account, "ListPolicyVersions", {"PolicyArn": arn})["Versions"]
        if len(versions) >= 5:  # IAM keeps at most five versions: drop the oldest non-default one
            oldest = min((v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"])
            plan.add(f"delete old version {oldest['VersionId']} of {arn}", account, "DeletePolicyVersion",
                     {"PolicyArn": arn, "VersionId": oldest["VersionId"]})
        plan.add(f"update policy {arn}", account, "CreatePolicyVersion",
                 {"PolicyArn": arn, "PolicyDocument": doc, "SetAsDefault": True})


def plan_principal(run: Any, plan: Plan, account: str, kind: str, spec: dict[str, Any],
                   paths: dict[str, str]) -> None:
    """Users and roles share the shape of the diff; `kind` is "User" or "Role"."""
    name = spec["name"]
    key = {f"{kind}Name": name}
    current = _missing(run, account, f"Get{kind}", key)
    label = f"{kind.lower()} {name}"
    if current is None:
        req: dict[str, Any] = {**key, "Path": spec.get("path", "/")}
        if spec.get("tags"):
            req["Tags"] = _tags(spec["tags"])
        if kind == "Role":
            req["AssumeRolePolicyDocument"] = _doc(spec["trust"])
            if "max_session_duration" in spec:
                req["MaxSessionDuration"] = int(spec["max_session_duration"])
        plan.add(f"create {label}", account, f"Create{kind}", req)
        inline: dict[str, str] = {}
        attached: set[str] = set()
    else:
        have_tags = {t["Key"]: t["Value"] for t in run(account, f"List{kind}Tags", key)["Tags"]}
        want_tags = {k: str(v) for k, v in (spec.get("tags") or {}).items()}
        if want_tags and any(have_tags.get(k) != v for k, v in want_tags.items()):
            plan.add(f"tag {label}", account, f"Tag{kind}", {**key, "Tags": _tags(want_tags)})
        extra_tags = sorted(set(have_tags) - set(want_tags))
        if extra_tags and "tags" in spec:
            plan.add(f"untag {label}", account, f"Untag{kind}", {**key, "TagKeys": extra_tags})
        if kind == "Role":
            stored = current["Role"]["AssumeRolePolicyDocument"]
            stored = stored if isinstance(stored, str) else json.dumps(stored)
            if not _same(stored, _doc(spec["trust"])):
                plan.add(f"update trust policy of {label}", account, "UpdateAssumeRolePolicy",
                         {"RoleName": name, "PolicyDocument": _doc(spec["trust"])})
        inline = {}
        for pname in run(account, f"List{kind}Policies", key)["PolicyNames"]:
            doc = run(account, f"Get{kind}Policy", {**key, "PolicyName": pname})["PolicyDocument"]
            inline[pname] = doc if isinstance(doc, str) else json.dumps(doc)
        attached = {p["PolicyArn"] for p in run(account, f"ListAttached{kind}Policies", key)["AttachedPolicies"]}
    want_inline = {k: _doc(v) for k, v in (spec.get("policies") or {}).items()}
    for pname, doc in want_inline.items():
        if pname not in inline or not _same(inline[pname], doc):
            plan.add(f"put inline policy {pname} on {label}", account, f"Put{kind}Policy",
                     {**key, "PolicyName": pname, "PolicyDocument": doc})
    if "policies" in spec:
        for pname in sorted(set(inline) - set(want_inline)):
            plan.add(f"delete inline policy {pname} from {label}", account, f"Delete{kind}Policy",
                     {**key, "PolicyName": pname})
    want_attached = {_policy_arn(account, ref, paths) for ref in spec.get("attached") or []}
    for arn in sorted(want_attached - attached):
        plan.add(f"attach {arn} to {label}", account, f"Attach{kind}Policy", {**key, "PolicyArn": arn})
    if "attached" in spec:
        for arn in sorted(attached - want_attached):
            plan.add(f"detach {arn} from {label}", account, f"Detach{kind}Policy", {**key, "PolicyArn": arn})


def load_document(text: str) -> dict[str, Any]:
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("accounts"), list):
        raise click.ClickException("the file must hold a mapping with a list under `accounts`")
    for account in doc["accounts"]:
        if not isinstance(account, dict) or not (account.get("id") or account.get("name")):
            raise click.ClickException("each account needs an `id` or a `name`")
        for kind in ("users", "roles", "policies"):
            for item in account.get(kind) or []:
                if not isinstance(item, dict) or not item.get("name"):
                    raise click.ClickException(f"each entry of `{kind}` needs a `name`")
        for role in account.get("roles") or []:
            if "trust" not in role:
                raise click.ClickException(f"role {role['name']} needs a `trust` policy")
        for policy in account.get("policies") or []:
            if "document" not in policy:
                raise click.ClickException(f"policy {policy['name']} needs a `document`")
    return doc


@click.command("apply")
@click.argument("file", type=click.File("r"))
@location
@click.option("--dry-run", is_flag=True, help="Show what would change, change nothing.")
def apply(file: Any, data_dir: str | None, database_url: str | None, dry_run: bool) -> None:
    """Make accounts, users, roles and policies match FILE (YAML or JSON), idempotently."""
    from strongroom.cli.iam import RootRunner, accounts_of, open_data

    doc = load_document(file.read())
    with open_data({"data_dir": data_dir, "database_url": database_url}) as (store, root):
        run = RootRunner(store, root)
        known = accounts_of(store)
        plan = Plan()
        for spec in doc["accounts"]:
            match = [a["account_id"] for a in known
                     if a["account_id"] == str(spec.get("id", "")) or (not spec.get("id") and a["name"] == spec["name"])]
            if not match:
                if spec.get("id"):
                    raise click.ClickException(f"account {spec['id']} does not exist; name it by `name` to create it")
                if dry_run:  # nothing to compare with: everything the file names would be created
                    new_account = f"new account {spec['name']}"
                    plan.add(f"create account {spec['name']}", new_account, "", {})
                    for kind, items in (("policy", spec.get("policies")), ("user", spec.get("users")),
                                        ("role", spec.get("roles"))):
                        for item in items or []:
                            plan.add(f"create {kind} {item['name']}", new_account, "", {})
                    continue
                new = create_account_recorded(store, root, spec["name"], run.trail)
                click.echo(f"+ created account {new.account_id} ({spec['name']}); admin key "
                           f"{new.access_key_id} / {new.secret_access_key} (shown once)")
                match = [new.account_id]
            account = match[0]
            paths = {p["name"]: p.get("path", "/") for p in spec.get("policies") or []}
            try:
                for policy_spec in spec.get("policies") or []:
                    plan_managed(run, plan, account, policy_spec)
                for user in spec.get("users") or []:
                    plan_principal(run, plan, account, "User", user, paths)
                for role in spec.get("roles") or []:
                    plan_principal(run, plan, account, "Role", role, paths)
            except AwsError as err:
                raise click.ClickException(f"{err.code}: {err.message}") from None
        if not plan.steps:
            click.echo("nothing to change")
            return
        for what, account, op, req in plan.steps:
            click.echo(f"{'~ would' if dry_run else '+'} {what} [{account}]")
            if not dry_run:
                try:
                    run(account, op, req)
                except AwsError as err:
                    raise click.ClickException(f"{what}: {err.code}: {err.message}") from None
        click.echo(f"{len(plan.steps)} change(s) {'planned' if dry_run else 'applied'}")
