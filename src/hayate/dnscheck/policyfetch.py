"""Fetch an MTA-STS policy over HTTPS (RFC 8461 3.3) with the stdlib: asyncio + ssl.

``https://mta-sts.<domain>/.well-known/mta-sts.txt``: the host name is resolved through
*our* resolver (the same answers the rest of the check sees), each address is tried in turn,
the certificate must be valid for ``mta-sts.<domain>`` (system CAs, or ``cafile``), redirects
are not followed (the RFC forbids it), and the answer is bounded in size and time. One
HTTP/1.1 request with ``Connection: close``; Content-Length, chunked and read-to-EOF bodies
are understood.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass

from hayate.core.seams import DnsError, TxtResolver

POLICY_PATH = "/.well-known/mta-sts.txt"
MAX_RESPONSE = 64 * 1024  # a policy is a few hundred bytes; RFC 8461 3.3 suggests 64 KiB


class PolicyFetchError(Exception):
    """The policy could not be fetched; the message says why, for the report."""


@dataclass(frozen=True, slots=True)
class PolicyResponse:
    url: str
    address: str  # the IP it came from
    status: int
    content_type: str
    body: str


def policy_url(domain: str, port: int = 443) -> str:
    where = f"mta-sts.{domain}" if port == 443 else f"mta-sts.{domain}:{port}"
    return f"https://{where}{POLICY_PATH}"


async def fetch_policy(
    resolver: TxtResolver,
    domain: str,
    *,
    port: int = 443,
    cafile: str | None = None,
    timeout: float = 10.0,
) -> PolicyResponse:
    host = f"mta-sts.{domain}"
    try:
        addresses = await resolver.resolve_addresses(host)
    except DnsError as exc:
        raise PolicyFetchError(f"{host} does not resolve: {exc}") from exc
    context = ssl.create_default_context(cafile=cafile)
    errors: list[str] = []
    for address in addresses:
        try:
            raw = await asyncio.wait_for(_get(address, port, host, context), timeout)
        except TimeoutError:
            errors.append(f"{address}: no answer within {timeout:g} s")
            continue
        except ssl.SSLError as exc:
            errors.append(f"{address}: TLS failed: {exc.reason or exc}")
            continue
        except (OSError, PolicyFetchError) as exc:
            errors.append(f"{address}: {exc}")
            continue
        status, headers, body = parse_response(raw)
        return PolicyResponse(
            policy_url(domain, port),
            address,
            status,
            headers.get("content-type", ""),
            body.decode("utf-8", "replace"),
        )
    raise PolicyFetchError("; ".join(errors) or f"{host} has no address")


async def _get(address: str, port: int, host: str, context: ssl.SSLContext) -> bytes:
    reader, writer = await asyncio.open_connection(
        address, port, ssl=context, server_hostname=host
    )
    try:
        request = (
            f"GET {POLICY_PATH} HTTP/1.1\r\nHost: {host}\r\n"
            "User-Agent: hayate-dns-check\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
        )
        writer.write(request.encode("ascii"))
        await writer.drain()
        data = b""
        while len(data) <= MAX_RESPONSE:
            chunk = await reader.read(16384)
            if not chunk:
                break
            data += chunk
        if len(data) > MAX_RESPONSE:
            raise PolicyFetchError(f"answer larger than {MAX_RESPONSE} bytes")
        return data
    finally:
        writer.close()
        # A server may drop the TLS session without close_notify: nothing to do about it.
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """(status, headers with lower-case names, decoded body) of an HTTP/1.1 response."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise PolicyFetchError("incomplete HTTP answer")
    lines = head.decode("iso-8859-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise PolicyFetchError(f"not an HTTP answer: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    elif headers.get("content-length", "").isdigit():
        body = body[: int(headers["content-length"])]
    return int(parts[1]), headers, body


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, sep, rest = data.partition(b"\r\n")
        size_text = size_line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError as exc:
            raise PolicyFetchError("bad chunked encoding") from exc
        if not sep or size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return out
