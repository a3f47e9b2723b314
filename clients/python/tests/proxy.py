"""A TCP proxy in front of sessiond that the tests steer, to make network faults a real
server cannot be asked for: a revocation stream held open but silent, sessiond unreachable
for the feed only, or for everything. It reads each connection's request line (every
request of the verifier is its own connection) and counts requests per path."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import Counter


class Proxy:
    # modes for the revocation stream; other paths are cut only in "down"
    PASS = "pass"
    SILENT = "silent"  # accept and never answer
    REFUSE = "refuse"  # close at once
    DOWN = "down"  # every path closed at once

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.mode = self.PASS
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_mode(self, mode: str) -> None:
        """Switches mode and cuts every connection open now, so the next ones obey it."""
        self.mode = mode
        with self._lock:
            conns, self._open = self._open, []
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def count(self, path: str) -> int:
        with self._lock:
            return self.counts[path]

    def close(self) -> None:
        self._closed = True
        self.set_mode(self.DOWN)
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        head = b""
        try:
            while b"\r\n" not in head and len(head) < 8192:
                chunk = client.recv(4096)
                if not chunk:
                    client.close()
                    return
                head += chunk
        except OSError:
            client.close()
            return
        parts = head.split(b"\r\n", 1)[0].split(b" ")
        path = parts[1].decode("latin-1").split("?")[0] if len(parts) > 1 else ""
        with self._lock:
            self.counts[path] += 1
        mode = self.mode
        is_stream = path.endswith("/v1/revocations/stream")
        if mode == self.DOWN or (is_stream and mode == self.REFUSE):
            client.close()
            return
        with self._lock:
            self._open.append(client)
        if is_stream and mode == self.SILENT:
            return  # held open: the verifier hears nothing at all
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        with self._lock:
            self._open.append(upstream)
        upstream.sendall(head)
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        _pipe(client, upstream)


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
