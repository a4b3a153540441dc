"""Events to syslog through logging.handlers.SysLogHandler (local socket, UDP or TCP).

Use TCP (or the local socket) where every event must arrive: a UDP datagram nobody
receives is lost without an error, so the forwarder cannot retry it.
"""

from __future__ import annotations

import logging
import logging.handlers
import socket


class _RaisingHandler(logging.handlers.SysLogHandler):
    # The stock handler prints send errors to stderr and carries on; the forwarder must know,
    # so it keeps its position and retries.
    def handleError(self, record: logging.LogRecord) -> None:
        raise  # noqa: PLE0704 - re-raises the exception emit() is handling


class SyslogSink:
    def __init__(self, address: str = "/dev/log", facility: str = "auth", protocol: str = "udp",
                 tag: str = "strongroom", name: str | None = None):
        self.name = name or f"syslog:{address}"
        self.target: str | tuple[str, int] = address
        if not address.startswith("/"):
            host, _, port = address.rpartition(":")
            self.target = (host or "127.0.0.1", int(port or 514))
        names = logging.handlers.SysLogHandler.facility_names
        if facility not in names:
            raise ValueError(f"unknown syslog facility {facility!r}")
        self.facility = names[facility]
        self.socktype = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
        self.tag = tag
        self.handler: _RaisingHandler | None = None

    def _connected(self) -> _RaisingHandler:
        # Connected lazily, and again after a failure: a syslog server that is down at start
        # (or restarts) delays events instead of stopping strongroom.
        if self.handler is None:
            handler = _RaisingHandler(address=self.target, facility=self.facility, socktype=self.socktype)
            handler.ident = f"{self.tag}: "
            handler.setFormatter(logging.Formatter("%(message)s"))
            self.handler = handler
        return self.handler

    def write(self, records: list[str]) -> None:
        try:
            handler = self._connected()
            for text in records:
                handler.emit(logging.LogRecord("strongroom.audit", logging.INFO, "", 0, text, None, None))
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self.handler is not None:
            self.handler.close()
            self.handler = None
