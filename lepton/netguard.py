"""The SSRF guard for every URL a person enters (alert webhooks, database imports).

Each of those features has its own allow-list of hosts (LEPTON_WEBHOOK_ALLOWED_HOSTS,
LEPTON_IMPORT_ALLOWED_HOSTS). Whatever an operator lists, some addresses are never a
legitimate target and are refused here: link-local addresses (169.254.0.0/16, fe80::/10;
the cloud metadata services that hand out credentials live there), multicast, the
unspecified address and reserved ranges. A name is resolved and every address it gives is
checked, so a DNS name pointing at such an address is refused too. Private and loopback
addresses stay allowed: on-premises databases and webhook receivers live there, and the
allow-lists decide about them.

Pure Python (no Django), so the engines may use it as well.
"""

import ipaddress
import socket

# Addresses some clouds give their metadata service outside the link-local range.
METADATA_ADDRESSES = {ipaddress.ip_address("fd00:ec2::254")}


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (
        address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or (address.is_reserved and not address.is_loopback)
        or address in METADATA_ADDRESSES
    )


def address_problem(host: str) -> str | None:
    """The forbidden address `host` is or resolves to, or None. A name that does not resolve
    is not refused here: the connection fails by itself."""
    host = (host or "").strip().strip("[]")
    if not host:
        return None
    try:
        candidates = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return None
        candidates = []
        for info in infos:
            try:
                candidates.append(ipaddress.ip_address(info[4][0].split("%")[0]))
            except ValueError:
                continue
    for address in candidates:
        if _forbidden(address):
            return str(address)
    return None
