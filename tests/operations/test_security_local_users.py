"""Other users of the machine are kept out of a loopback daemon without a token (issue 25): a connection
from another local user's process gets 403 and is closed before anything is read; the daemon's own user,
root, and (with ``server.api_token``) anyone with the token get in. Who is at the other end of a local
connection comes from the kernel's TCP table (Linux)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from assistant.cli.local_peers import can_tell_local_users, peer_uid
from assistant.cli.serve import local_owners
from assistant.config import ServerSettings
from tests.operations.test_security_headers import _daemon_protocol

pytestmark = pytest.mark.skipif(not can_tell_local_users(), reason="needs Linux's /proc/net/tcp")


@pytest.mark.parametrize(("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_the_uid_of_a_local_peer_is_known(family: socket.AddressFamily, host: str) -> None:
    with socket.socket(family) as server, socket.socket(family) as client:
        server.bind((host, 0))
        server.listen()
        client.connect(server.getsockname()[:2])
        accepted, _ = server.accept()
        with accepted:
            assert peer_uid(accepted.getsockname()[:2], accepted.getpeername()[:2]) == os.getuid()


def test_a_peer_missing_from_the_table_is_remote(tmp_path: Path) -> None:
    (tmp_path / "tcp").write_text("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when\n")
    assert peer_uid(("127.0.0.1", 8765), ("192.168.1.9", 50000), tmp_path) is None


def test_another_local_users_connection_is_refused() -> None:
    someone_else = frozenset({os.getuid() + 4242})  # this test's own process plays the other user
    with _daemon_protocol(local_uids=someone_else) as port:
        r = httpx.get(f"http://127.0.0.1:{port}/x")
        assert r.status_code == 403 and r.json()["error"]["code"] == "other_local_user"
    with _daemon_protocol(local_uids=frozenset({os.getuid()})) as port:
        assert httpx.get(f"http://127.0.0.1:{port}/x").status_code == 200


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as uid nobody")
def test_uid_nobody_is_refused_by_the_daemons_own_configuration() -> None:
    with _daemon_protocol() as port:  # the default: this user and root only
        code = (  # everything imported before the switch: nobody cannot read root's Python
            "import os, socket\n"
            "'127.0.0.1'.encode('idna')\n"
            "os.setgid(65534); os.setuid(65534)\n"
            f"s = socket.create_connection(('127.0.0.1', {port}))\n"
            "s.sendall(b'GET /api/memories HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n\\r\\n')\n"
            "print(s.recv(100).split()[1].decode())\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert out.stdout.strip() == "403", out.stderr
        assert httpx.get(f"http://127.0.0.1:{port}/x").status_code == 200  # root, the owner here


def test_a_token_protected_daemon_lets_the_token_decide() -> None:
    assert local_owners(ServerSettings(api_token="t")) is None
    assert local_owners(ServerSettings()) == frozenset({os.getuid(), 0})
