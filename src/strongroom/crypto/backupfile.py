"""Encrypted backup files: a readable header, then the snapshot compressed and sealed in segments.

Layout (format 1):

    MAGIC | u32 header length | header JSON | { u32 length | segment }*

The header names what a restore needs to decide before decrypting anything:
the format, the id of the root key the backup was made under (so a restore
can say "wrong root key" rather than "corrupt file"), the schema revision of
the data, and the backup's own data key, wrapped by that root key (the
purpose string binds the wrap to this backup's id). The snapshot is
zlib-compressed, cut into segments of 1 MiB and each sealed with AES-256-GCM
under the data key. A segment's authenticated data is the digest of the
header, its index and whether it is the last one: a header edited, segments
reordered, dropped, or the file cut short all fail to decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from strongroom.crypto import aead
from strongroom.crypto.rootkey import RootKey, RootKeyError

MAGIC = b"STRONGROOM-BACKUP\n"
FORMAT = 1
SEGMENT = 1 << 20
_U32 = struct.Struct(">I")


class BackupError(Exception):
    """The file is not a strongroom backup this release can read, or it was altered."""


class WrongRootKey(BackupError):
    """The configured root key is not the one the backup was made under."""


@dataclass(frozen=True)
class BackupHeader:
    format: int
    backup_id: str
    created: float
    root_key_id: str
    schema_revision: str | None
    source_backend: str
    strongroom_version: str
    wrapped_key: str  # base64: the data key, wrapped by the root key

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()


def _purpose(backup_id: str) -> bytes:
    return b"strongroom-backup/v1:" + backup_id.encode()


def _aad(header_digest: bytes, index: int, final: bool) -> bytes:
    return header_digest + struct.pack(">QB", index, 1 if final else 0)


class BackupWriter:
    """Write a backup to `path` (mode 0600, atomically: a temporary file renamed when complete)."""

    def __init__(self, path: Path, root: RootKey, *, schema_revision: str | None, source_backend: str,
                 created: float, strongroom_version: str):
        self.path = path
        self._key = aead.new_key()
        backup_id = str(uuid.uuid4())
        self.header = BackupHeader(FORMAT, backup_id, created, root.key_id, schema_revision, source_backend,
                                   strongroom_version,
                                   base64.b64encode(root.wrap(self._key, _purpose(backup_id))).decode())
        raw = self.header.encode()
        self._digest = hashlib.sha256(raw).digest()
        self._tmp = path.with_name(f".{path.name}.{backup_id[:8]}.tmp")
        fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._out: IO[bytes] = os.fdopen(fd, "wb")
        self._out.write(MAGIC + _U32.pack(len(raw)) + raw)
        self._zip = zlib.compressobj(6)
        self._buffer = bytearray()
        self._index = 0

    def write(self, data: bytes) -> None:
        self._buffer += self._zip.compress(data)
        while len(self._buffer) > SEGMENT:
            self._segment(bytes(self._buffer[:SEGMENT]), final=False)
            del self._buffer[:SEGMENT]

    def close(self) -> None:
        """Seal the last segment and put the file in place."""
        self._buffer += self._zip.flush()
        self._segment(bytes(self._buffer), final=True)
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._out.close()
        self._tmp.unlink(missing_ok=True)

    def _segment(self, chunk: bytes, *, final: bool) -> None:
        blob = aead.encrypt(self._key, chunk, _aad(self._digest, self._index, final))
        self._out.write(_U32.pack(len(blob)) + blob)
        self._index += 1


def read_header(path: Path) -> BackupHeader:
    with open(path, "rb") as f:
        return _header(f)[0]


def _header(f: IO[bytes]) -> tuple[BackupHeader, bytes]:
    if f.read(len(MAGIC)) != MAGIC:
        raise BackupError("not a strongroom backup file")
    (size,) = _U32.unpack(_exactly(f, 4))
    raw = _exactly(f, size)
    try:
        fields: dict[str, Any] = json.loads(raw)
    except ValueError:
        raise BackupError("the backup's header is damaged") from None
    if fields.get("format") != FORMAT:
        raise BackupError(f"backup format {fields.get('format')!r} is not one this release reads ({FORMAT})")
    try:
        return BackupHeader(**fields), raw
    except TypeError:
        raise BackupError("the backup's header is damaged") from None


def read_plaintext(path: Path, root: RootKey) -> Iterator[bytes]:
    """The decrypted, decompressed snapshot, chunk by chunk; raises WrongRootKey / BackupError."""
    with open(path, "rb") as f:
        header, raw = _header(f)
        try:
            # Tried even when the ids differ: during a rekey the configured chain holds both keys.
            key = root.unwrap(base64.b64decode(header.wrapped_key), _purpose(header.backup_id))
        except (RootKeyError, ValueError):
            if header.root_key_id != root.key_id:
                raise WrongRootKey(f"the backup was made under root key {header.root_key_id}, "
                                   f"but the configured root key is {root.key_id}") from None
            raise WrongRootKey(f"the configured root key ({root.key_id}) cannot open this backup") from None
        digest, unzip, index = hashlib.sha256(raw).digest(), zlib.decompressobj(), 0
        end = os.fstat(f.fileno()).st_size
        while True:
            size_bytes = f.read(4)
            if not size_bytes:
                raise BackupError("the backup file is incomplete (its last segment is missing)")
            blob = _exactly(f, _U32.unpack(size_bytes)[0])
            final = f.tell() == end
            try:
                chunk = aead.decrypt(key, blob, _aad(digest, index, final))
            except aead.DecryptError:
                raise BackupError(f"segment {index} of the backup does not authenticate: "
                                  "the file was altered or cut short") from None
            yield unzip.decompress(chunk)
            index += 1
            if final:
                yield unzip.flush()
                return


def _exactly(f: IO[bytes], size: int) -> bytes:
    data = f.read(size)
    if len(data) != size:
        raise BackupError("the backup file is incomplete")
    return data
