"""The inbound-check ingest filter: SPF, DKIM, ARC and DMARC on mail from outside.

:class:`InboundAuthFilter` is an ``IngestFilter`` (see :mod:`hayate.ingest.ingest`). It acts
only on mail that arrives from the outside on the MX port (``Listener.MX``, client not in
``relay_networks``, not authenticated); every other message passes untouched.

For such a message, in order:

1. SPF of the MAIL FROM identity (``postmaster@<HELO>`` for the null sender, RFC 7208
   2.4), SPF of the HELO identity on its own (RFC 7208 2.3; only when the HELO name is a
   domain name, not an address literal, and the sender is not null — then the first check
   already is the HELO check), DKIM and ARC run at once (``asyncio.gather``); their DNS goes
   through the cached resolver, so a domain that publishes nothing costs a few cached
   NODATA answers. A check that crashes is logged and recorded as "temperror" (SPF, DKIM)
   or "fail" (ARC), never losing the message.
2. DMARC on the From domain(s) with those results. DMARC's SPF identity is the MAIL FROM
   one (the HELO one only for the null sender, RFC 7489 4.1); the separate HELO result only
   goes into Authentication-Results, as a second ``spf=`` with ``smtp.helo``.
3. Forged fields are dropped: Authentication-Results with our authserv-id (RFC 8601 5) and
   any X-Hayate-Quarantine a sender put there. Then our Authentication-Results is prepended.
4. Policy: a DMARC "fail" whose disposition is "reject" is refused with
   ``550 5.7.1 Message rejected by DMARC policy of <domain>`` when ``[auth] dmarc_reject``
   is on, unless a sealer in ``trusted_arc_sealers`` passed the ARC chain (a mailing list or
   forwarder we trust). With ``dmarc_reject`` off a "reject" is handled as "quarantine".
   A "quarantine" disposition adds ``X-Hayate-Quarantine: dmarc`` when
   ``dmarc_quarantine`` is on. "temperror" (DNS trouble) never refuses mail.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from hayate.auth.arc import verify_arc
from hayate.auth.dkim_verify import verify_dkim
from hayate.auth.dmarc import DmarcResult, check_dmarc
from hayate.auth.results import authentication_results, remove_fields, remove_our_results
from hayate.auth.spf import SpfResult, check_helo, check_spf, helo_is_domain
from hayate.auth.verdicts import ArcVerdict, DkimVerdict
from hayate.core.envelope import Envelope, Listener, SessionInfo, domain_of
from hayate.core.reply import SmtpError
from hayate.core.seams import TxtResolver

if TYPE_CHECKING:
    from hayate.config import InboundAuthConfig

log = logging.getLogger("hayate.auth")

QUARANTINE_HEADER = b"X-Hayate-Quarantine"

DkimCheck = Callable[[bytes, TxtResolver], Awaitable[list[DkimVerdict]]]
ArcCheck = Callable[[bytes, TxtResolver], Awaitable[ArcVerdict]]


def _is_quarantine(name: bytes, _value: bytes) -> bool:
    return name == QUARANTINE_HEADER.lower()


def from_outside(session: SessionInfo) -> bool:
    """Mail the checks apply to: MX port, not a relay client, not authenticated."""
    return (
        session.listener is Listener.MX
        and not session.relay_allowed
        and not session.auth_user
    )


class InboundAuthFilter:
    """``await filter(session, envelope, data)`` → data with Authentication-Results."""

    def __init__(
        self,
        config: InboundAuthConfig,
        hostname: str,
        resolver: TxtResolver,
        *,
        dkim: DkimCheck | None = None,
        arc: ArcCheck | None = None,
    ) -> None:
        self.config = config
        self.hostname = hostname
        self.authserv_id = config.authserv_id or hostname
        self.resolver = resolver
        self._dkim: DkimCheck = dkim if dkim is not None else verify_dkim
        self._arc: ArcCheck = arc if arc is not None else verify_arc
        self._trusted = {s.lower().rstrip(".") for s in config.trusted_arc_sealers}
        self.checked = 0
        self.rejected = 0
        self.quarantined = 0

    async def __call__(self, session: SessionInfo, envelope: Envelope, data: bytes) -> bytes:
        if not self.config.enabled or not from_outside(session):
            return data
        spf, spf_helo, dkim, arc = await asyncio.gather(
            self._spf(session, envelope), self._spf_helo(session, envelope),
            self._dkim_safe(data), self._arc_safe(data),
        )
        dmarc = await check_dmarc(data, spf, dkim, self.resolver)
        self.checked += 1
        action, note = self.decide(dmarc, arc)
        header = authentication_results(
            self.authserv_id, spf=spf, spf_helo=spf_helo, dkim=dkim, dmarc=dmarc, arc=arc,
            dmarc_note=note,
        )
        log.info(
            "auth: from=<%s> helo=%s client=%s spf=%s spf_helo=%s dkim=%s dmarc=%s (%s) "
            "arc=%s action=%s",
            envelope.sender, session.helo, session.peer_ip, spf.result,
            spf_helo.result if spf_helo is not None else "-",
            ",".join(f"{v.result}:{v.domain}" for v in dkim) or "none",
            dmarc.result, dmarc.from_domain or "-", arc.result, action,
        )
        if action == "reject":
            self.rejected += 1
            raise SmtpError(
                550, "5.7.1", f"Message rejected by DMARC policy of {dmarc.from_domain}"
            )
        data = remove_our_results(data, self.authserv_id)
        data = remove_fields(data, _is_quarantine, QUARANTINE_HEADER.lower())
        if action == "quarantine":
            self.quarantined += 1
            header += QUARANTINE_HEADER + b": dmarc\r\n"
        return header + data

    def decide(self, dmarc: DmarcResult, arc: ArcVerdict) -> tuple[str, str]:
        """("accept" | "quarantine" | "reject", a note for the dmarc comment)."""
        if dmarc.result != "fail" or dmarc.disposition == "none":
            return "accept", ""
        if arc.result == "pass" and arc.sealer.lower().rstrip(".") in self._trusted:
            return "accept", f"accepted: ARC sealed by trusted {arc.sealer}"
        if dmarc.disposition == "reject" and self.config.dmarc_reject:
            return "reject", ""
        if self.config.dmarc_quarantine:
            return "quarantine", "quarantined"
        return "accept", "policy not enforced here"

    async def _spf(self, session: SessionInfo, envelope: Envelope) -> SpfResult:
        try:
            return await check_spf(
                session.peer_ip, envelope.sender, session.helo, self.resolver,
                receiver=self.hostname,
            )
        except Exception as exc:  # a bug in a check must not lose mail
            log.exception("SPF check crashed")
            domain = domain_of(envelope.sender) or session.helo
            return SpfResult("temperror", domain, reason=f"internal error: {exc!r}")

    async def _spf_helo(self, session: SessionInfo, envelope: Envelope) -> SpfResult | None:
        """The HELO identity checked on its own; None when it is not checked (see above)."""
        if not envelope.sender or not helo_is_domain(session.helo):
            return None
        try:
            return await check_helo(
                session.peer_ip, session.helo, self.resolver, receiver=self.hostname
            )
        except Exception as exc:  # a bug in a check must not lose mail
            log.exception("SPF check of the HELO name crashed")
            return SpfResult("temperror", session.helo.lower(), identity="helo",
                             reason=f"internal error: {exc!r}")

    async def _dkim_safe(self, data: bytes) -> Sequence[DkimVerdict]:
        try:
            return await self._dkim(data, self.resolver)
        except Exception as exc:
            log.exception("DKIM verification crashed")
            return [DkimVerdict("temperror", "", "", reason=f"internal error: {exc!r}")]

    async def _arc_safe(self, data: bytes) -> ArcVerdict:
        try:
            return await self._arc(data, self.resolver)
        except Exception as exc:
            log.exception("ARC verification crashed")
            return ArcVerdict("fail", reason=f"internal error: {exc!r}")
