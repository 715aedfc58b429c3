"""Which local user is at the other end of a TCP connection (Linux), so that a daemon keeps other users of
the same machine out without a token anyone has to type.

A connection made from this machine has its client socket in the kernel's table (``/proc/net/tcp`` and
``tcp6``, this network namespace) with the client's address as its local address, the daemon's as its
remote one, and the uid of the user who opened it. A connection from another machine has no such entry:
its peer is remote, and the API token (``server.api_token``) is what governs it. Where there is no
``/proc/net`` (not Linux) nothing is known and nothing is refused (docs/security.md).
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

PROC_NET = Path("/proc/net")


def _hex_address(ip: str, port: int) -> tuple[str, str]:
    """An address as ``/proc/net/tcp``/``tcp6`` spell it: (tcp form or "", tcp6 form)."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    hport = f"{port:04X}"
    if isinstance(addr, ipaddress.IPv4Address):
        v4 = addr.packed[::-1].hex().upper() + ":" + hport
        mapped = ipaddress.IPv6Address("::ffff:" + str(addr)).packed
    else:
        v4, mapped = "", addr.packed
    # tcp6: four 32-bit words, each in host (little-endian) byte order
    v6 = "".join(mapped[i : i + 4][::-1].hex().upper() for i in range(0, 16, 4)) + ":" + hport
    return v4, v6


def peer_uid(server: tuple[str, int], peer: tuple[str, int], proc_net: Path = PROC_NET) -> int | None:
    """The uid of the local process whose socket ``peer`` is connected to ``server``; None for a peer on
    another machine, or when the kernel's table cannot be read."""
    want_local, want_remote = _hex_address(peer[0], peer[1]), _hex_address(server[0], server[1])
    for name, index in (("tcp", 0), ("tcp6", 1)):
        local, remote = want_local[index], want_remote[index]
        if not local or not remote:
            continue
        try:
            lines = (proc_net / name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 7 and fields[1] == local and fields[2] == remote:
                return int(fields[7])
    return None


def can_tell_local_users(proc_net: Path = PROC_NET) -> bool:
    """Whether this system shows the kernel's TCP table (Linux)."""
    return (proc_net / "tcp").exists()


def socket_pair_uid(sock: socket.socket) -> int | None:
    """``peer_uid`` of an accepted socket (tests, tools)."""
    return peer_uid(sock.getsockname()[:2], sock.getpeername()[:2])
