"""Verification of the audit trail: the hash chain, and the signed digests over it.

Three independent checks, so a problem is both detected and located:
- each event's hash matches its record and the previous event's hash (localizes an edit,
  a removal, an insertion or a reordering to a seq and eventID);
- the chain recomputed from the first event matches what every digest signed (catches an
  attacker who rewrote the hashes too: without the signing key the digests can't follow);
- each digest's signature, and its link to the digest before it (a forged, altered or
  removed digest).
Events after the last digest are chained but not yet signed; the report says how many.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from strongroom.audit.chain import GENESIS, Digest, link, signature_valid
from strongroom.storage import Store
from strongroom.storage import audit_store as q


@dataclass(frozen=True)
class Problem:
    kind: str  # altered, removed, broken-link, columns-altered, digest-forged, digest-mismatch, digest-chain, head
    message: str
    seq: int | None = None
    event_id: str | None = None

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "trail"
        if self.event_id:
            where += f" (eventID {self.event_id})"
        return f"{where}: {self.kind}: {self.message}"


@dataclass
class Report:
    events: int = 0
    digests: int = 0
    last_signed_seq: int = 0
    last_seq: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def unsigned(self) -> int:
        return max(0, self.last_seq - self.last_signed_seq)


def _columns_match(row: Any, record: dict[str, Any]) -> bool:
    """The query columns are copies of record fields; an edit to one alone shows here."""
    principal = (record.get("userIdentity") or {}).get("arn")
    return bool(row.event_id == record.get("eventID") and row.error_code == record.get("errorCode")
                and row.event_name == str(record.get("eventName", ""))[:128]
                and row.event_source == record.get("eventSource") and row.principal_arn == principal)


def verify(store: Store, public_key: Ed25519PublicKey) -> Report:
    report = Report()
    with store.read() as tx:
        digest_rows = q.digests(tx.conn)
        head_seq, _ = q.head(tx.conn)
        wanted = set()
        for row in digest_rows:
            try:
                wanted.add(int(json.loads(row.digest)["lastSeq"]))
            except (ValueError, KeyError, TypeError):
                pass
        true_at: dict[int, str] = {}
        expected, stored_prev, true_prev = 1, GENESIS, GENESIS
        for row in q.iter_chain(tx.conn):
            report.events += 1
            seq = int(row.seq)
            gap = seq != expected
            if gap:
                report.problems.append(Problem("removed", f"events {expected}..{seq - 1} are missing", expected))
            if row.prev_hash != stored_prev and not gap:
                report.problems.append(Problem(
                    "broken-link", "does not follow the event before it (an event was inserted, removed or "
                    "reordered here)", seq, row.event_id))
            if link(row.prev_hash, row.record) != row.hash:
                report.problems.append(Problem("altered", "the record does not match its hash", seq, row.event_id))
            else:
                try:
                    record = json.loads(row.record)
                except ValueError:
                    record = {}
                if not _columns_match(row, record):
                    report.problems.append(Problem("columns-altered", "indexed columns differ from the record",
                                                   seq, row.event_id))
            true_prev = link(true_prev, row.record)
            if seq in wanted:
                true_at[seq] = true_prev
            stored_prev, expected = row.hash, seq + 1
        report.last_seq = expected - 1
    if head_seq != report.last_seq:
        report.problems.append(Problem("head", f"the chain head says the last event is seq {head_seq}, "
                                               f"the table ends at seq {report.last_seq}", head_seq))
    _check_digests(report, digest_rows, true_at, public_key)
    return report


def _check_digests(report: Report, rows: list[Any], true_at: dict[int, str], public_key: Ed25519PublicKey) -> None:
    previous: Digest | None = None
    for row in rows:
        report.digests += 1
        d = Digest(row.first_seq, row.last_seq, row.last_hash, row.digest, row.signature, row.key_fingerprint)
        label = f"digest #{row.id}"
        if not signature_valid(public_key, d):
            report.problems.append(Problem("digest-forged", f"{label}: the signature is not valid for this key"))
            previous = d
            continue
        doc = d.document
        first, last = int(doc["firstSeq"]), int(doc["lastSeq"])
        if previous is not None:
            prev_doc = previous.document if signature_valid(public_key, previous) else None
            linked = (doc.get("previousDigestHash") == hashlib.sha256(previous.text.encode()).hexdigest()
                      and doc.get("previousDigestSignature") == previous.signature)
            if not linked or (prev_doc is not None and first != int(prev_doc["lastSeq"]) + 1):
                report.problems.append(Problem("digest-chain", f"{label}: does not follow the digest before it "
                                                               "(a digest was removed or replaced)"))
        elif doc.get("previousDigestHash") is not None:
            report.problems.append(Problem("digest-chain", f"{label}: the digests before it are missing"))
        recomputed = true_at.get(last)
        if recomputed is None:
            report.problems.append(Problem("digest-mismatch", f"{label} signed events {first}..{last}, but the "
                                                              f"chain has no event {last}", last))
        elif recomputed != doc["lastHash"]:
            report.problems.append(Problem("digest-mismatch", f"{label}: events {first}..{last} changed after it "
                                                              "signed them (chain hash differs)", last))
        report.last_signed_seq = max(report.last_signed_seq, last)
        previous = d
