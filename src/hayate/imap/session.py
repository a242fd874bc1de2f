"""One IMAP session: the per-connection state machine that executes parsed commands.

States (RFC 3501 §3): not authenticated → authenticated → selected → logout. The session
owns the state, the account's ``Mailboxes`` (after login) and the ``SelectedFolder``; it
writes its responses through a ``Connection`` (the server's side: buffering, TLS, reading
raw lines) and never touches a socket itself.

Layout: this module holds the state, dispatch, the commands of any state (CAPABILITY, NOOP,
LOGOUT, ID, ENABLE, NAMESPACE), login (LOGIN, AUTHENTICATE PLAIN, STARTTLS), IDLE and the
rules around every command. The handlers of the other commands live in
``session_folders`` (folders, APPEND, QUOTA) and ``session_messages`` (FETCH, STORE, COPY,
MOVE, EXPUNGE, SEARCH, SORT, CLOSE); each handler writes its untagged data and returns the
tagged line, so that the pending updates of the selected folder can go between the two.

Rules applied around every command:
- wrong state → BAD; ``max_bad_commands`` BADs (and failed logins) → ``* BYE``;
- every login attempt is counted up front by the process-wide ``LoginGuard`` (per address
  and per client IP); over its limit a login is answered ``NO [AUTHENTICATIONFAILED]``
  without checking the password;
- after each command in the selected state the store's changes are polled and sent
  (EXISTS, EXPUNGE/VANISHED, FETCH FLAGS), except while more pipelined commands are
  already waiting (the last of them sends them) and without EXPUNGE after FETCH, STORE,
  SEARCH and SORT by sequence number (RFC 3501 §7.4.1);
- mailbox errors map to response codes (NONEXISTENT, ALREADYEXISTS, OVERQUOTA, CANNOT);
  any other exception answers ``NO [SERVERBUG]``, is logged, and the session goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from hayate import __version__
from hayate.config import MailboxConfig
from hayate.core.sasl import decode_response, parse_plain
from hayate.imap import commands as C
from hayate.imap.keywords import KEYWORDS, KeywordCache
from hayate.imap.response import quoted, tagged
from hayate.imap.selected import SelectedFolder
from hayate.mailbox.login_guard import LoginGuard, login_guard_for
from hayate.mailbox.model import (
    FolderExists,
    FolderNotFound,
    MailboxError,
    Mailboxes,
    OverQuota,
)
from hayate.mailbox.sessions import SESSIONS, SessionCounter
from hayate.store.base import Store, StoreError

if TYPE_CHECKING:
    from hayate.imap.server import ImapStats

log = logging.getLogger("hayate.imap")

KEEPALIVE_INTERVAL = 120.0  # "* OK Still here" while IDLE, like Dovecot
AUTH_LINE_TIMEOUT = 60.0  # seconds to answer an AUTHENTICATE continuation
PRE_LOGIN_CAPS = "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE"
POST_LOGIN_CAPS = (
    "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE SORT UNSELECT NAMESPACE UIDPLUS MOVE "
    "SPECIAL-USE CREATE-SPECIAL-USE CONDSTORE QRESYNC QUOTA QUOTA=RES-STORAGE "
    "LIST-EXTENDED LIST-STATUS CHILDREN ESEARCH STATUS=SIZE BINARY"
)
ENABLEABLE = ("CONDSTORE", "QRESYNC")


class ChangeWatcher(Protocol):
    """What the session needs of ``hayate.mailbox.watch.FolderWatcher``."""

    async def wait_change(
        self, folder_id: int, known_modseq: int, known_uidnext: int, timeout: float
    ) -> bool: ...


class Connection(Protocol):
    """The server's side of one connection, as the session sees it."""

    tls_active: bool
    peer_ip: str  # the client's address, for the login guard

    def write(self, data: bytes) -> None:
        """Queue response bytes (written at the next flush)."""

    async def drain(self) -> None:
        """Write out when much is queued; wait while the client reads slowly."""

    async def flush(self) -> None:
        """Write out everything queued now."""

    def pipelined(self) -> bool:
        """More input is already waiting."""

    async def read_line(self, timeout: float) -> bytes | None:
        """A raw line from the client, None on timeout or disconnect."""

    def input_ready(self) -> asyncio.Future[None]:
        """Completes when input (or the end of the connection) arrives."""

    async def start_tls(self) -> bool:
        """Upgrade the connection; False when that failed (the connection is closed)."""


@dataclass
class SessionContext:
    """What every session of one listener shares."""

    hostname: str
    config: MailboxConfig
    store: Store
    watcher: ChangeWatcher
    mailboxes: Callable[[str], Mailboxes]
    stats: ImapStats
    starttls_available: bool
    auth_failure_delay: float = 1.0
    # Login attempts per address and client IP, shared by the listeners of this process.
    login_guard: LoginGuard = field(default_factory=lambda: login_guard_for(MailboxConfig()))
    # Logged-in sessions per account, shared by every IMAP and POP3 listener of this process.
    sessions: SessionCounter = field(default_factory=lambda: SESSIONS)
    # The keywords in use per folder (SELECT's FLAGS), shared by the sessions of this process.
    keywords: KeywordCache = field(default_factory=lambda: KEYWORDS)


Handler = Callable[["ImapSession", C.Command], Awaitable[bytes]]

# Which state each command needs.
ANY_STATE = frozenset({"CAPABILITY", "NOOP", "LOGOUT", "ID"})
NOT_AUTH = frozenset({"LOGIN", "AUTHENTICATE", "STARTTLS"})
SELECTED = frozenset(
    {"CHECK", "CLOSE", "EXPUNGE", "UID EXPUNGE", "UNSELECT", "FETCH", "STORE", "COPY", "MOVE",
     "SEARCH", "SORT"}
)
# Commands after which an EXPUNGE must not be sent unless they are UID commands.
NO_EXPUNGE_AFTER = frozenset({"FETCH", "STORE", "SEARCH", "SORT"})


class SessionClosed(Exception):
    """The session must end now (BYE already written)."""


class ImapSession:
    """One connection's IMAP state. ``execute`` each parsed command, ``bad`` each BAD."""

    def __init__(self, context: SessionContext, conn: Connection) -> None:
        self.ctx = context
        self.conn = conn
        self.user: str | None = None
        self.mailboxes: Mailboxes | None = None
        self.selected: SelectedFolder | None = None
        self.condstore = False
        self.qresync = False
        self.closing = False
        self.commands = 0
        self.bad_count = 0
        self._counted_user: str | None = None
        self._bye = b""

    # ------------------------------------------------------------------ public

    def greeting(self) -> bytes:
        return b"* OK [CAPABILITY " + self.capabilities().encode() + b"] Hayate ready.\r\n"

    def capabilities(self) -> str:
        if self.user is not None:
            return POST_LOGIN_CAPS
        caps = PRE_LOGIN_CAPS
        if self.ctx.starttls_available and not self.conn.tls_active:
            caps += " STARTTLS"
        caps += " AUTH=PLAIN" if self.passwords_allowed() else " LOGINDISABLED"
        return caps

    def passwords_allowed(self) -> bool:
        return self.conn.tls_active or self.ctx.config.plaintext_auth

    def bad(self, item: C.Bad | C.No) -> None:
        """Answer a command the reader refused."""
        if isinstance(item, C.No) or (item.code == "TOOBIG" and item.tag is not None):
            # A literal over the limit is refused with NO [TOOBIG] and costs nothing.
            assert item.tag is not None
            self.conn.write(tagged(item.tag, "NO", item.text, item.code))
        elif item.tag is None:
            self.conn.write(b"* BAD " + item.text.encode("utf-8", "replace") + b"\r\n")
            self.count_bad()
        else:
            self.conn.write(tagged(item.tag, "BAD", item.text, item.code))
            self.count_bad()
        self._flush_bye()

    def count_bad(self) -> None:
        """One more BAD (or failed login); past the limit the session ends."""
        self.bad_count += 1
        self.ctx.stats.bad_commands += 1
        if self.bad_count >= self.ctx.config.max_bad_commands and not self.closing:
            self.ctx.stats.error_disconnects += 1
            self._bye = b"* BYE Too many invalid IMAP commands.\r\n"  # after the reply
            self.closing = True

    def _flush_bye(self) -> None:
        if self._bye:
            self.conn.write(self._bye)
            self._bye = b""

    async def execute(self, cmd: C.Command) -> None:
        """Run one command: its untagged data, the pending updates, its tagged reply."""
        self.commands += 1
        name = cmd.name
        refusal = self._state_refusal(name)
        if refusal is not None:
            self.conn.write(tagged(cmd.tag, "BAD", refusal))
            self.count_bad()
            self._flush_bye()
            return
        handler = HANDLERS.get(type(cmd))
        if handler is None:
            self.conn.write(tagged(cmd.tag, "BAD", "Unknown command."))
            self.count_bad()
            self._flush_bye()
            return
        try:
            reply = await handler(self, cmd)
            if self.selected is not None and not self.closing:
                uid_command = getattr(cmd, "uid", False)
                allow_expunge = uid_command or name not in NO_EXPUNGE_AFTER
                if name in ("NOOP", "CHECK", "IDLE") or not self.conn.pipelined():
                    await self.send_updates(allow_expunge=allow_expunge)
        except SessionClosed:
            self.closing = True
            return
        except FolderNotFound as exc:
            if self.selected is not None and name in SELECTED:
                # The selected folder itself is gone (deleted by another session).
                self.conn.write(b"* BYE Selected mailbox was deleted, have to disconnect.\r\n")
                self.closing = True
                return
            reply = tagged(cmd.tag, "NO", str(exc) or "Mailbox doesn't exist.", "NONEXISTENT")
        except FolderExists as exc:
            reply = tagged(cmd.tag, "NO", str(exc) or "Mailbox already exists.",
                           "ALREADYEXISTS")
        except OverQuota as exc:
            reply = tagged(cmd.tag, "NO", str(exc) or "Quota exceeded.", "OVERQUOTA")
        except MailboxError as exc:
            reply = tagged(cmd.tag, "NO", str(exc) or "Not possible.", "CANNOT")
        except StoreError:
            self.ctx.stats.internal_errors += 1
            log.exception("store failure in %s for %s", name, self.user)
            reply = tagged(cmd.tag, "NO", "Temporary failure, try again later.", "UNAVAILABLE")
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception:
            self.ctx.stats.internal_errors += 1
            log.exception("internal error in %s for %s", name, self.user)
            reply = tagged(cmd.tag, "NO", "Internal error occurred.", "SERVERBUG")
        self.conn.write(reply)
        self._flush_bye()

    async def send_updates(self, *, allow_expunge: bool) -> None:
        """Write what changed in the selected folder since the last look."""
        sel = self.selected
        if sel is None or self.mailboxes is None:
            return
        try:
            lines = await sel.poll(self.mailboxes, allow_expunge=allow_expunge)
        except FolderNotFound:
            self.selected = None
            self.conn.write(b"* BYE Selected mailbox was deleted, have to disconnect.\r\n")
            raise SessionClosed from None
        if lines:
            self.conn.write(b"".join(lines))

    def release(self) -> None:
        """The connection ended: give back the per-user connection slot."""
        user = self._counted_user
        if user is not None:
            self._counted_user = None
            self.ctx.sessions.release(user)

    # ------------------------------------------------------------------ helpers

    def _state_refusal(self, name: str) -> str | None:
        if name in ANY_STATE:
            return None
        if name in NOT_AUTH:
            return "Already logged in." if self.user is not None else None
        if self.user is None:
            return "Please log in first."
        if name in SELECTED and self.selected is None:
            return "No mailbox selected."
        return None

    def box(self) -> Mailboxes:
        assert self.mailboxes is not None
        return self.mailboxes

    def sel(self) -> SelectedFolder:
        assert self.selected is not None
        return self.selected

    # ------------------------------------------------------------------ login

    async def login(self, tag: str, user: str, password: str) -> bytes:
        if not self.passwords_allowed():
            return tagged(tag, "NO", "Plaintext authentication disallowed on non-secure "
                          "(SSL/TLS) connections.", "PRIVACYREQUIRED")
        ctx = self.ctx
        guard, ip = ctx.login_guard, self.conn.peer_ip
        if not guard.begin(user, ip):
            ctx.stats.auth_refused += 1
            log.info("imap login refused unchecked for %r from %s: too many failures",
                     user[:100], ip)
            account = None
        else:
            try:
                account = await ctx.store.authenticate(user, password)
            except StoreError:
                guard.abandon(user, ip)
                log.exception("authentication lookup failed for %r", user)
                return tagged(tag, "NO", "Temporary authentication failure.", "UNAVAILABLE")
            if account is not None:
                guard.succeeded(user, ip)
            else:
                log.info("imap login failed for %r from %s", user[:100], ip)
        if account is None:
            ctx.stats.auth_failures += 1
            if ctx.auth_failure_delay > 0:
                await asyncio.sleep(ctx.auth_failure_delay)
            self.count_bad()
            return tagged(tag, "NO", "Authentication failed.", "AUTHENTICATIONFAILED")
        address = account.address
        if not ctx.sessions.acquire(address, ctx.config.max_connections_per_user):
            return tagged(tag, "NO", "Too many connections for this user.", "LIMIT")
        self._counted_user = address
        self.user = address
        self.mailboxes = ctx.mailboxes(address)
        ctx.stats.logins += 1
        return tagged(tag, "OK", "Logged in", "CAPABILITY " + self.capabilities())


# ---------------------------------------------------------------------- any state


async def do_capability(s: ImapSession, cmd: C.Command) -> bytes:
    s.conn.write(b"* CAPABILITY " + s.capabilities().encode() + b"\r\n")
    return tagged(cmd.tag, "OK", "Capability completed.")


async def do_noop(s: ImapSession, cmd: C.Command) -> bytes:
    return tagged(cmd.tag, "OK", f"{cmd.name.capitalize()} completed.")


async def do_logout(s: ImapSession, cmd: C.Command) -> bytes:
    s.conn.write(b"* BYE Logging out\r\n")
    s.closing = True
    return tagged(cmd.tag, "OK", "Logout completed.")


async def do_id(s: ImapSession, cmd: C.Command) -> bytes:
    assert isinstance(cmd, C.Id)
    s.conn.write(b'* ID ("name" "Hayate" "version" ' + quoted(__version__) + b")\r\n")
    return tagged(cmd.tag, "OK", "ID completed.")


async def do_namespace(s: ImapSession, cmd: C.Command) -> bytes:
    s.conn.write(b'* NAMESPACE (("" "/")) NIL NIL\r\n')
    return tagged(cmd.tag, "OK", "Namespace completed.")


async def do_enable(s: ImapSession, cmd: C.Command) -> bytes:
    assert isinstance(cmd, C.Enable)
    enabled: list[str] = []
    for cap in cmd.capabilities:
        if cap == "QRESYNC" and not s.qresync:
            s.qresync = s.condstore = True
            enabled.append(cap)
        elif cap == "CONDSTORE" and not s.condstore:
            s.condstore = True
            enabled.append(cap)
    if s.selected is not None:
        s.selected.condstore = s.condstore
        s.selected.qresync = s.qresync
    s.conn.write(b"* ENABLED" + b"".join(b" " + c.encode() for c in enabled) + b"\r\n")
    return tagged(cmd.tag, "OK", "Enabled.")


# ---------------------------------------------------------------------- login


async def do_login(s: ImapSession, cmd: C.Command) -> bytes:
    assert isinstance(cmd, C.Login)
    return await s.login(cmd.tag, cmd.user, cmd.password)


async def do_authenticate(s: ImapSession, cmd: C.Command) -> bytes:
    assert isinstance(cmd, C.Authenticate)
    if cmd.mechanism.upper() != "PLAIN":
        return tagged(cmd.tag, "NO", "Unsupported authentication mechanism.")
    if not s.passwords_allowed():
        return tagged(cmd.tag, "NO", "Plaintext authentication disallowed on non-secure "
                      "(SSL/TLS) connections.", "PRIVACYREQUIRED")
    response = cmd.initial
    if response is None:
        s.conn.write(b"+ \r\n")
        await s.conn.flush()
        line = await s.conn.read_line(AUTH_LINE_TIMEOUT)
        if line is None:
            raise SessionClosed
        if line.strip() == b"*":
            s.count_bad()
            return tagged(cmd.tag, "BAD", "Authentication aborted by client.")
        response = decode_response(line.strip())
        if response is None:
            s.count_bad()
            return tagged(cmd.tag, "BAD", "Invalid base64 data in continued response.")
    plain = parse_plain(response)
    if plain is None:
        s.count_bad()
        return tagged(cmd.tag, "BAD", "Invalid PLAIN authentication data.")
    if plain.authzid and plain.authzid.lower() != plain.user.lower():
        s.ctx.stats.auth_failures += 1
        s.count_bad()
        return tagged(cmd.tag, "NO", "Authorization as another user is not allowed.",
                      "AUTHORIZATIONFAILED")
    return await s.login(cmd.tag, plain.user, plain.password)


async def do_starttls(s: ImapSession, cmd: C.Command) -> bytes:
    if s.conn.tls_active:
        s.count_bad()
        return tagged(cmd.tag, "BAD", "TLS is already active.")
    if not s.ctx.starttls_available:
        s.count_bad()
        return tagged(cmd.tag, "BAD", "STARTTLS is not available.")
    s.conn.write(tagged(cmd.tag, "OK", "Begin TLS negotiation now."))
    if not await s.conn.start_tls():
        raise SessionClosed
    return b""


# ---------------------------------------------------------------------- IDLE


async def do_idle(s: ImapSession, cmd: C.Command) -> bytes:
    """RFC 2177: ``+ idling``, updates pushed as they happen, ends on DONE."""
    conn = s.conn
    ctx = s.ctx
    ctx.stats.idles += 1
    conn.write(b"+ idling\r\n")
    await s.send_updates(allow_expunge=True)
    await conn.flush()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ctx.config.idle_timeout
    next_keepalive = loop.time() + KEEPALIVE_INTERVAL
    input_ready = conn.input_ready()
    change: asyncio.Task[bool] | None = None
    try:
        while True:
            now = loop.time()
            if now >= deadline:
                conn.write(b"* BYE Disconnected for inactivity.\r\n")
                ctx.stats.timeouts += 1
                raise SessionClosed
            if now >= next_keepalive:
                conn.write(b"* OK Still here\r\n")
                await conn.flush()
                next_keepalive = now + KEEPALIVE_INTERVAL
            wait = min(deadline, next_keepalive) - now
            sel = s.selected
            if sel is not None and change is None:
                change = loop.create_task(ctx.watcher.wait_change(
                    sel.folder.id, sel.modseq, sel.uidnext, wait))
            waiting: set[asyncio.Future[object]] = {input_ready}  # type: ignore[arg-type]
            if change is not None:
                waiting.add(change)  # type: ignore[arg-type]
            await asyncio.wait(waiting, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            if input_ready.done():
                line = await conn.read_line(max(deadline - loop.time(), 0.1))
                if line is None:
                    raise SessionClosed
                if line.strip().upper() == b"DONE":
                    return tagged(cmd.tag, "OK", "Idle completed.")
                s.count_bad()
                return tagged(cmd.tag, "BAD", "Expected DONE.")
            if change is not None and change.done():
                change = None
                await s.send_updates(allow_expunge=True)
                await conn.flush()
    finally:
        if change is not None and not change.done():
            change.cancel()
        if not input_ready.done():
            input_ready.cancel()


def _handlers() -> dict[type, Handler]:
    from hayate.imap import session_folders as F
    from hayate.imap import session_messages as M

    table: dict[type, Handler] = {
        C.Login: do_login,
        C.Authenticate: do_authenticate,
        C.Enable: do_enable,
        C.Id: do_id,
    }
    table.update(F.HANDLERS)
    table.update(M.HANDLERS)
    return table


SIMPLE_HANDLERS: dict[str, Handler] = {
    "CAPABILITY": do_capability,
    "NOOP": do_noop,
    "CHECK": do_noop,
    "LOGOUT": do_logout,
    "STARTTLS": do_starttls,
    "NAMESPACE": do_namespace,
    "IDLE": do_idle,
}


async def do_simple(s: ImapSession, cmd: C.Command) -> bytes:
    assert isinstance(cmd, C.Simple)
    handler = SIMPLE_HANDLERS.get(cmd.name)
    if handler is None:
        from hayate.imap.session_messages import SIMPLE_HANDLERS as MESSAGE_SIMPLE

        handler = MESSAGE_SIMPLE.get(cmd.name)
    if handler is None:
        s.count_bad()
        return tagged(cmd.tag, "BAD", "Unknown command.")
    return await handler(s, cmd)


HANDLERS: dict[type, Handler] = {}


def _install() -> None:
    HANDLERS.update(_handlers())
    HANDLERS[C.Simple] = do_simple


_install()
