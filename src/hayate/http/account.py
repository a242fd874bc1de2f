"""``POST /account/password``: a user changes its own password.

The request authenticates with HTTP Basic (the address and its current password, checked by
``Store.authenticate`` like an IMAP login) and carries the new password as JSON
``{"new_password": "..."}`` or as a form field ``new_password=...``. Answers (JSON
``{"error": reason}`` on failure):

    200  changed; IMAP, POP3 and SMTP AUTH take the new password at once
    400  no usable new password (empty, longer than ``max_password_length``, control
         characters: they would break IMAP LOGIN and SASL PLAIN), bad JSON or form, body too big
    401  no credentials or wrong ones (a wrong password is answered after ``failure_delay``
         seconds; a disabled or unknown account looks the same)
    403  not over TLS: the request must come over HTTPS (the ``[listen] https`` listener;
         uvicorn takes the scheme from the connection, never from a header), from loopback
         (a reverse proxy on the same host that terminates TLS; if it says
         ``X-Forwarded-Proto: http`` it is refused too), or ``[mailbox] plaintext_auth``
         must be on
    415  a body that is neither JSON nor a form
    429  too many failures for this address or this client within ``failure_window``
         (``Retry-After`` says when to try again)

The client of a request from loopback is the last ``X-Forwarded-For`` entry when the proxy
sends one (so the per-client limit counts real clients, not the proxy).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import json
import logging
import math
from dataclasses import dataclass
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from hayate.core.ratelimit import FailureLimiter
from hayate.core.seams import Clock, SystemClock
from hayate.http.bodies import BodyTooLarge, read_limited
from hayate.http.storeaccess import StoreAccess
from hayate.store.base import StoreError

log = logging.getLogger("hayate.http.account")

REALM = 'Basic realm="Hayate", charset="UTF-8"'
MAX_AUTH_HEADER = 4096


@dataclass(frozen=True, slots=True)
class AccountSettings:
    plaintext_auth: bool = False  # [mailbox] plaintext_auth: allow plain HTTP from anywhere
    failure_delay: float = 2.0  # seconds before a 401 for wrong credentials (like Dovecot)
    failure_window: float = 900.0  # seconds over which failures are counted
    max_failures_per_address: int = 5
    max_failures_per_client: int = 20
    max_body: int = 4096  # bytes
    max_password_length: int = 1024  # characters


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": reason}, status_code=status, headers=headers)


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def secure_enough(request: Request, plaintext_auth: bool) -> bool:
    """May a password travel over this request? (see module doc)"""
    if plaintext_auth or request.url.scheme == "https":
        return True
    if not _is_loopback(request.client.host if request.client else None):
        return False
    forwarded = request.headers.get("x-forwarded-proto")
    return forwarded is None or forwarded.split(",")[0].strip().lower() == "https"


def client_of(request: Request) -> str:
    peer = request.client.host if request.client else "unknown"
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and _is_loopback(peer):
        last = forwarded.split(",")[-1].strip()[:64]
        if last:
            return last
    return peer


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) from an ``Authorization: Basic`` header, or None."""
    if not header or len(header) > MAX_AUTH_HEADER:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep or not user or not password:
        return None
    return user, password


def password_problem(password: str, max_length: int) -> str | None:
    """Why ``password`` cannot be used, or None."""
    if not password:
        return "the new password is empty"
    if len(password) > max_length:
        return f"the new password is longer than {max_length} characters"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in password):
        return "the new password contains control characters"
    return None


class BadBody(ValueError):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def new_password_from(content_type: str, body: bytes) -> str:
    """The ``new_password`` of a JSON or form body; raises :class:`BadBody`."""
    kind = content_type.split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadBody(400, "the body is not UTF-8") from exc
    if kind == "application/json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise BadBody(400, "the body is not valid JSON") from exc
        value = data.get("new_password") if isinstance(data, dict) else None
    elif kind in ("application/x-www-form-urlencoded", ""):
        try:
            fields = parse_qs(text, keep_blank_values=True, max_num_fields=20)
        except ValueError as exc:
            raise BadBody(400, "the form has too many fields") from exc
        values = fields.get("new_password")
        value = values[0] if values and len(values) == 1 else None
    else:
        raise BadBody(415, "send JSON or a form (application/x-www-form-urlencoded)")
    if not isinstance(value, str):
        raise BadBody(400, "new_password is missing (one string)")
    return value


def account_router(
    store: StoreAccess, settings: AccountSettings, clock: Clock | None = None
) -> APIRouter:
    router = APIRouter()
    clock = clock or SystemClock()
    by_address = FailureLimiter(settings.max_failures_per_address, settings.failure_window,
                                clock)
    by_client = FailureLimiter(settings.max_failures_per_client, settings.failure_window, clock)

    @router.post("/account/password", include_in_schema=False)
    async def change_password(request: Request) -> Response:
        if not secure_enough(request, settings.plaintext_auth):
            return _error(403, "a password is accepted only over HTTPS")
        credentials = basic_credentials(request.headers.get("authorization"))
        if credentials is None:
            return _error(401, "give your address and current password (HTTP Basic)",
                          {"WWW-Authenticate": REALM})
        address, current = credentials[0].strip().lower(), credentials[1]
        client = client_of(request)
        wait = max(by_address.retry_after(address), by_client.retry_after(client))
        if wait > 0:
            return _error(429, "too many failed attempts; try again later",
                          {"Retry-After": str(math.ceil(wait))})
        try:
            body = await read_limited(request, settings.max_body)
            new_password = new_password_from(request.headers.get("content-type", ""), body)
        except BodyTooLarge as exc:
            return _error(400, str(exc))
        except BadBody as exc:
            return _error(exc.status, str(exc))
        problem = password_problem(new_password, settings.max_password_length)
        if problem is not None:
            return _error(400, problem)
        # Counted before the check, taken back on success: parallel guesses cannot all get
        # past the limit while the first ones are still being checked.
        by_address.note_failure(address)
        by_client.note_failure(client)
        try:
            opened = await store.get()
            account = await opened.authenticate(address, current)
            if account is None:
                log.info("password change for %r from %s refused: wrong credentials",
                         address[:320], client)
                await asyncio.sleep(settings.failure_delay)
                return _error(401, "wrong address or password", {"WWW-Authenticate": REALM})
            changed = await opened.set_password(account.address, new_password)
        except StoreError:
            by_address.forgive(address)
            by_client.forgive(client)
            log.exception("password change for %r: store failure", address[:320])
            return _error(503, "the account store is unavailable; try again later")
        if not changed:  # deleted between the two statements
            return _error(401, "wrong address or password", {"WWW-Authenticate": REALM})
        by_address.reset(address)
        by_client.forgive(client)
        log.info("password changed for %s from %s", account.address, client)
        return JSONResponse({"status": "password changed", "address": account.address})

    return router
