"""A small, real authoritative DNS server on 127.0.0.1 for tests (UDP and TCP on one port).

Zones are master-file text loaded with ``dns.zone.from_text``; :func:`zone_text` writes the
SOA and NS lines a zone needs so a test only lists its records. :class:`TestDnsServer` runs in
background threads, so synchronous and asyncio tests can both use it::

    with TestDnsServer({"example.test": zone_text("@ MX 10 mx\\nmx A 192.0.2.1")}) as dns:
        resolver = CachingResolver([dns.address])

It answers the way an authoritative server does: the AA flag on everything inside its zones,
NXDOMAIN (with the zone's SOA in the authority section) for a missing name, NOERROR with no
answer (NODATA, SOA in authority) for an existing name without the asked type, CNAMEs chased
while the chain stays inside its zones, REFUSED for names outside them. UDP answers larger than
the client's buffer come back truncated (TC), so clients retry over TCP as in real life.

Test switches: ``no_answer`` (names it never answers, to provoke timeouts), ``servfail``
(names answered with SERVFAIL), :meth:`TestDnsServer.set_zone` to change a zone while it runs,
and a query log with :meth:`TestDnsServer.count` to see whether a client asked at all.
"""

from __future__ import annotations

import errno
import socket
import socketserver
import struct
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.node
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.zone

_MAX_CHAIN = 8  # CNAMEs followed before giving up with SERVFAIL
_TCP_IDLE = 10.0  # seconds a TCP client may stay silent before the server hangs up


def zone_text(records: str, *, ttl: int = 300, negative_ttl: int = 300) -> str:
    """Master-file text: ``$TTL``, an SOA and an NS at the origin, then ``records``.

    ``negative_ttl`` is the SOA minimum, which (with the SOA's own TTL) bounds how long
    resolvers may cache NXDOMAIN and NODATA answers (RFC 2308).
    """
    head = (
        f"$TTL {ttl}\n"
        f"@ {ttl} IN SOA ns hostmaster 1 3600 600 86400 {negative_ttl}\n"
        f"@ {ttl} IN NS ns\n"
    )
    return head + records.strip("\n") + "\n"


def _key(name: str | dns.name.Name) -> str:
    text = name.to_text(omit_final_dot=True) if isinstance(name, dns.name.Name) else name
    return text.rstrip(".").lower()


@dataclass(frozen=True, slots=True)
class QueryRecord:
    """One query the server received."""

    name: str  # lower case, no trailing dot
    rdtype: str  # "MX", "A", ...
    transport: str  # "udp" or "tcp"


class TestDnsServer:
    """An authoritative DNS server for tests; use it as a context manager."""

    __test__ = False  # a helper, not a pytest test class

    def __init__(
        self,
        zones: Mapping[str, str],
        *,
        no_answer: Iterable[str] = (),
        servfail: Iterable[str] = (),
    ) -> None:
        self._lock = threading.Lock()
        self._zones: dict[dns.name.Name, dns.zone.Zone] = {}
        for origin, text in zones.items():
            self.set_zone(origin, text)
        self.no_answer: set[str] = {_key(n) for n in no_answer}
        self.servfail: set[str] = {_key(n) for n in servfail}
        self.log: list[QueryRecord] = []
        self._udp: _UdpServer | None = None
        self._tcp: _TcpServer | None = None
        self._threads: list[threading.Thread] = []

    # -- zones and switches ---------------------------------------------------------------

    def set_zone(self, origin: str, text: str) -> None:
        """Load (or replace) the zone ``origin`` from master-file text."""
        name = dns.name.from_text(origin)
        zone = dns.zone.from_text(text, origin=name, relativize=False)
        with self._lock:
            self._zones[name] = zone

    def remove_zone(self, origin: str) -> None:
        with self._lock:
            self._zones.pop(dns.name.from_text(origin), None)

    def count(self, name: str | None = None, rdtype: str | None = None) -> int:
        """Queries received so far, optionally only for ``name`` and/or ``rdtype``."""
        want = _key(name) if name is not None else None
        with self._lock:
            return sum(
                1
                for q in self.log
                if (want is None or q.name == want) and (rdtype is None or q.rdtype == rdtype)
            )

    @property
    def queries(self) -> int:
        """All queries received so far (answered or not)."""
        with self._lock:
            return len(self.log)

    def reset_counts(self) -> None:
        with self._lock:
            self.log.clear()

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        if self._udp is None:
            raise RuntimeError("the DNS server is not running")
        return int(self._udp.server_address[1])

    @property
    def address(self) -> str:
        """``"127.0.0.1:PORT"``, the form CachingResolver and the config accept."""
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        """Bind UDP and TCP on the same free port and serve in background threads."""
        for _ in range(20):  # another process may take the TCP side of our UDP port
            udp = _UdpServer(self)
            try:
                tcp = _TcpServer(self, udp.server_address[1])
            except OSError as exc:
                udp.server_close()
                if exc.errno != errno.EADDRINUSE:
                    raise
                continue
            self._udp, self._tcp = udp, tcp
            break
        else:
            raise RuntimeError("no free port with both UDP and TCP available")
        for server in (udp, tcp):
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        for server in (self._udp, self._tcp):
            if server is not None:
                server.shutdown()
                server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def __enter__(self) -> TestDnsServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- answering ------------------------------------------------------------------------

    def answer(self, wire: bytes, transport: str) -> bytes | None:
        """The wire reply to one query, or None to stay silent."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None  # not even a header we could answer to
        response = dns.message.make_response(query)
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
            return response.to_wire()
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        key = _key(question.name)
        with self._lock:
            self.log.append(QueryRecord(key, dns.rdatatype.to_text(question.rdtype), transport))
            zones = dict(self._zones)
        if key in self.no_answer:
            return None
        if key in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        _fill(response, zones, question.name, question.rdtype)
        if transport == "tcp":
            return response.to_wire(max_size=65535)  # the client's EDNS size is for UDP only
        limit = max(512, query.payload) if query.edns >= 0 else 512
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            truncated = dns.message.make_response(query)
            truncated.flags |= dns.flags.TC | (response.flags & dns.flags.AA)
            return truncated.to_wire()


def _zone_for(
    zones: Mapping[dns.name.Name, dns.zone.Zone], name: dns.name.Name
) -> dns.zone.Zone | None:
    best: dns.name.Name | None = None
    for origin in zones:
        if name.is_subdomain(origin) and (best is None or len(origin) > len(best)):
            best = origin
    return zones[best] if best is not None else None


def _rrset(name: dns.name.Name, rdataset: dns.rdataset.Rdataset) -> dns.rrset.RRset:
    return dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset))


def _add_soa(response: dns.message.Message, zone: dns.zone.Zone) -> None:
    """The SOA for a negative answer, its TTL lowered to the SOA minimum (RFC 2308 3)."""
    assert zone.origin is not None
    soa = zone.get_rdataset(zone.origin, dns.rdatatype.SOA)
    if soa is None:
        return
    ttl = min(soa.ttl, min(rd.minimum for rd in soa))
    response.authority.append(dns.rrset.from_rdata_list(zone.origin, ttl, list(soa)))


def _fill(
    response: dns.message.Message,
    zones: Mapping[dns.name.Name, dns.zone.Zone],
    qname: dns.name.Name,
    rdtype: dns.rdatatype.RdataType,
) -> None:
    """Put the authoritative answer for ``qname``/``rdtype`` into ``response``."""
    name = qname
    for _ in range(_MAX_CHAIN):
        zone = _zone_for(zones, name)
        if zone is None:
            if name == qname:
                response.set_rcode(dns.rcode.REFUSED)
            return  # the chain left our zones: the client follows it on its own
        response.flags |= dns.flags.AA
        node: dns.node.Node | None = zone.get_node(name)
        if node is None:
            if not any(n != name and n.is_subdomain(name) for n in zone.nodes):
                response.set_rcode(dns.rcode.NXDOMAIN)
            _add_soa(response, zone)  # an empty non-terminal is NODATA, not NXDOMAIN
            return
        if rdtype == dns.rdatatype.ANY:
            response.answer.extend(_rrset(name, rds) for rds in node.rdatasets)
            return
        found = node.get_rdataset(dns.rdataclass.IN, rdtype)
        if found is not None:
            response.answer.append(_rrset(name, found))
            return
        cname = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
        if cname is None:
            _add_soa(response, zone)
            return
        response.answer.append(_rrset(name, cname))
        name = next(iter(cname)).target
    response.set_rcode(dns.rcode.SERVFAIL)  # CNAME loop or an absurdly long chain


class _UdpServer(socketserver.UDPServer):
    def __init__(self, owner: TestDnsServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _UdpHandler)

    def server_bind(self) -> None:
        # Room for bursts (hundreds of queries at once) so the kernel does not drop them.
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        super().server_bind()


class _UdpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        assert isinstance(self.server, _UdpServer)
        reply = self.server.owner.answer(data, "udp")
        if reply is not None:
            sock.sendto(reply, self.client_address)


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, owner: TestDnsServer, port: int) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", port), _TcpHandler)


class _TcpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(_TCP_IDLE)
        assert isinstance(self.server, _TcpServer)
        try:
            while True:  # one connection may carry several queries; ends on EOF or idle
                head = _read_exactly(sock, 2)
                if head is None:
                    return
                body = _read_exactly(sock, struct.unpack("!H", head)[0])
                if body is None:
                    return
                reply = self.server.owner.answer(body, "tcp")
                if reply is not None:
                    sock.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError:
            return  # idle timeout or the client hung up


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    buf = b""
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf
