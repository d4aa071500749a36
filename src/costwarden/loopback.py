"""Whether an address is this machine only: the rule behind every open (no login) page.

The dashboard without a master key shows every user's spend to whoever connects, so it is
served to this machine only: ``costwarden dashboard`` refuses to bind anything else, and the
app (standalone or the gateway's ``/dashboard``) refuses a request from any other client. A
module of its own, free of web dependencies, because the CLI checks it before importing them.
"""

from __future__ import annotations

import ipaddress


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` names only this machine (``localhost``, 127.0.0.0/8, ``::1``, and
    127.0.0.0/8 mapped into IPv6); False for None (an unknown peer) and for any name."""
    if host == "localhost":
        return True
    try:
        addr = ipaddress.ip_address((host or "").strip("[]"))
    except ValueError:
        return False
    mapped = getattr(addr, "ipv4_mapped", None)
    return bool(addr.is_loopback or (mapped is not None and mapped.is_loopback))


__all__ = ["is_loopback"]
