"""Local delivery: recipients in our own domains go into their INBOX in the mailbox store.

Results follow what an MTA's local delivery agent reports: an account that does not exist
bounces with 5.1.1; a full mailbox defers with 4.2.2 (the owner can make room, and the queue
retries until the message's lifetime ends, like Dovecot with ``quota_full_tempfail``), but a
message larger than the whole quota bounces with 5.2.2 at once; a store that cannot be
reached defers with 4.3.0.
"""

from __future__ import annotations

import logging

from hayate.core.reply import SmtpReply
from hayate.core.results import DeliveryResult, Outcome
from hayate.core.seams import DeliveryJob
from hayate.store.base import NoSuchAccount, QuotaExceeded, Store

log = logging.getLogger("hayate.delivery.local")

DELIVERED = SmtpReply(250, "2.0.0", "delivered to mailbox")
NO_SUCH_USER = SmtpReply(550, "5.1.1", "user unknown (no such mailbox here)")
MAILBOX_FULL = SmtpReply(452, "4.2.2", "mailbox full (over quota), will retry")
TOO_BIG_FOR_QUOTA = SmtpReply(552, "5.2.2", "message is larger than the mailbox quota")
STORE_ERROR = SmtpReply(451, "4.3.0", "mailbox store unavailable, will retry")


class LocalDeliveryAgent:
    """Implements :class:`hayate.core.seams.DeliveryAgent` for route "local"."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def deliver(self, job: DeliveryJob) -> list[DeliveryResult]:
        results = []
        for rcpt in job.recipients:
            try:
                await self.store.deliver(rcpt, job.data)
                reply, outcome = DELIVERED, Outcome.DELIVERED
            except NoSuchAccount:
                reply, outcome = NO_SUCH_USER, Outcome.BOUNCED
            except QuotaExceeded as full:
                if full.size > full.quota_bytes:
                    reply, outcome = TOO_BIG_FOR_QUOTA, Outcome.BOUNCED
                else:
                    reply, outcome = MAILBOX_FULL, Outcome.DEFERRED
            except Exception as exc:  # the store is down or locked: try again later
                log.warning("%s: local delivery to %s failed: %r", job.queue_id, rcpt, exc)
                reply, outcome = STORE_ERROR, Outcome.DEFERRED
            results.append(DeliveryResult(rcpt, outcome, reply, "local", remote_reported=False))
        return results
