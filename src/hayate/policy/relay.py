"""Relay control and sender rules, like Postfix's smtpd_relay_restrictions.

* Mail to the bounce domain (``bounces.domain``: VERP return paths and feedback-loop
  reports) is accepted on every listener for any local part; the bounce processor reads it.
* Mail to a local domain is accepted on every listener if the recipient exists (an account,
  an alias, or a catch-all); otherwise 550 5.1.1.
* Quota (like Dovecot's LMTP with ``quota_full_tempfail``): an account with a quota that is
  already used up gets ``452 4.2.2 Mailbox full`` (temporary: the sender keeps the message
  and retries, the user may make room meanwhile); a message whose declared size (``SIZE=``
  of MAIL FROM, when the SMTP side passes it as ``declared_size``) does not fit in the room
  left gets ``552 5.2.2``. The account row is the one the existence check reads anyway, so
  this costs no extra query. Aliases and catch-alls are not checked here: local delivery
  refuses what does not fit.
* Mail to any other domain (relaying) needs an authenticated session or a client address in
  ``relay_networks``; otherwise 554 5.7.1 Relay access denied. Never an open relay.
* An authenticated user may use as envelope sender its own address, any address of its own
  domain, or anything — per ``policy.authenticated_senders`` — plus ``extra_sender_domains``;
  otherwise 553 5.7.1.
"""

from __future__ import annotations

from hayate.config import PolicyConfig
from hayate.core.envelope import SessionInfo, domain_of
from hayate.core.reply import SmtpReply
from hayate.store.base import Account, Store

RELAY_DENIED = "Relay access denied"


class RelayPolicy:
    """Implements :class:`hayate.core.seams.SmtpPolicy`."""

    def __init__(
        self,
        store: Store,
        local_domains: list[str],
        cfg: PolicyConfig,
        bounce_domain: str | None = None,
    ) -> None:
        self.store = store
        self.local_domains = {d.lower() for d in local_domains}
        self.bounce_domain = bounce_domain.lower().rstrip(".") if bounce_domain else None
        self.cfg = cfg
        self.extra_sender_domains = {d.lower() for d in cfg.extra_sender_domains}

    async def authenticate(self, username: str, password: str) -> str | None:
        account = await self.store.authenticate(username, password)
        if account is None or account.disabled:
            return None
        return account.address

    async def check_sender(self, session: SessionInfo, sender: str) -> SmtpReply | None:
        user = session.auth_user
        if user is None or sender == "" or self.cfg.authenticated_senders == "any":
            return None
        sender_domain = domain_of(sender)
        if sender_domain in self.extra_sender_domains:
            return None
        if self.cfg.authenticated_senders == "own_address":
            if sender.lower() == user.lower():
                return None
        elif sender_domain == domain_of(user):
            return None
        return SmtpReply(
            553, "5.7.1", f"<{sender}>: Sender address rejected: not owned by user {user}"
        )

    async def check_recipient(
        self,
        session: SessionInfo,
        sender: str,
        recipient: str,
        declared_size: int | None = None,
    ) -> SmtpReply | None:
        domain = domain_of(recipient)
        if domain == self.bounce_domain:
            return None
        if domain in self.local_domains:
            account = await self.store.get_account(recipient)
            if account is not None:
                return quota_reply(account, recipient, declared_size)
            if await self._alias_exists(recipient):
                return None
            return SmtpReply(
                550, "5.1.1", f"<{recipient}>: Recipient address rejected: User unknown"
            )
        if session.auth_user is not None or session.relay_allowed:
            return None
        return SmtpReply(554, "5.7.1", f"<{recipient}>: {RELAY_DENIED}")

    async def _alias_exists(self, address: str) -> bool:
        if await self.store.get_alias(address) is not None:
            return True
        return await self.store.get_alias("@" + domain_of(address)) is not None


def quota_reply(account: Account, recipient: str, declared_size: int | None) -> SmtpReply | None:
    """452 4.2.2 when the account's quota is used up, 552 5.2.2 when a message of
    ``declared_size`` bytes would not fit in the room left, else None (no quota: None)."""
    quota = account.quota_bytes
    if quota <= 0:
        return None
    if account.used_bytes >= quota:
        return SmtpReply(452, "4.2.2", f"<{recipient}>: Mailbox full, try again later")
    if declared_size is not None and account.used_bytes + declared_size > quota:
        return SmtpReply(
            552, "5.2.2",
            f"<{recipient}>: Mailbox full: a message of {declared_size} bytes does not fit",
        )
    return None
