"""The ingest filter that DKIM-signs outbound mail of our own users and applications.

``DkimSigningFilter`` is an :class:`hayate.ingest.ingest.IngestFilter` (it must be the last
filter, since it signs the final headers). It signs a message when both hold:

- the message is ours to vouch for: it did not come through the MX listener, or the
  client authenticated (``auth_user``), or it came from a ``relay_networks`` address;
- a key exists for the domain of the From header (the domain DMARC aligns with), or for a
  parent of it ("news.example.com" is signed with example.com's key: relaxed alignment);
  when neither has one, the envelope sender's domain (and its parents) is tried.

Every active key of the chosen domain signs (rsa and ed25519 when both are active). A
message that cannot be signed (no From header, a broken key) is passed on unsigned and
logged: signing never refuses mail.

The private-key operation runs inline on the event loop: ~0.23 ms for rsa-2048 on a quiet
machine (OpenSSL with AVX-512 IFMA; 0.48 ms without it) and ~0.04 ms for ed25519
(``python -m bench.dkim_sign``); inside a loaded ``hayate serve`` the whole ``sign()`` call
takes ~0.31 ms of CPU (RSA ~0.27, canonicalization, hashes and header building ~0.045) and
the key choice ~0.01. Moving the RSA elsewhere measured no better on the 2-vCPU machine
(signed/unsigned relay throughput, ``bench.dkim``'s setup: 10 sessions, median of 3
alternating rounds per run, all variants in the same run; Nov 2026):

    2 KB   inline 0.75 | helper process 0.67 | helper process at nice 19 0.71
    2 KB   inline 0.90 | thread pool 0.78 | thread, switch interval 0.5 ms 0.77
    50 KB  inline 0.81 | helper process 0.82 | helper process at nice 19 0.74
    2 KB   inline 0.71 | C extension: OpenSSL in its own pthread, results over an eventfd,
                         never touching the GIL 0.70 (a prototype, not kept)
    2 KB   inline 0.68-0.75 | signing at delivery instead of at acceptance 0.72-0.80
                         (separate runs: no difference beyond the noise)
    with other work on the machine (the relays at nice -15):
    2 KB   inline 0.82 | helper process 0.75 | thread, switch interval 0.2 ms 0.66
    2 KB   inline 0.85 | helper process 0.81 | helper process 10 nice steps lower 0.88
    2 KB   inline 0.71 | nice 19 0.67 | SCHED_IDLE helper, inline after 2 / 5 ms 0.67 / 0.62

A helper process (one per worker, digests over a socketpair, batched) pays ~35 µs of CPU
per round trip in this VM; a Python thread's result waits for the GIL. The C prototype had
neither cost and still did not help, which settles the question: the relay is bound by the
machine's CPU, not by the event loop waiting. Unsigned at 10 sessions the machine is ~80%
busy (Hayate ~520 µs CPU/msg, smtp-source + smtp-sink ~200, the benchmark and kernel ~50),
so the ~770 µs of CPU the machine spends per relayed 2 KB message against one 230 µs
signature caps signed/unsigned near 0.75 once every CPU is busy (``bench.dkim`` prints
this bound); runs land at 0.71-0.90 (median ~0.77), and the ratio falls as the rest of
Hayate gets cheaper. The reference stack does worse on the same machine: Postfix with
OpenDKIM as its milter keeps 0.55 of Postfix's unsigned throughput (OpenDKIM adds ~2.3 ms
of CPU per message), and Hayate signed relays ~3x more than Postfix+OpenDKIM. An ed25519
key (40 µs to sign) gave 0.84.
"""

from __future__ import annotations

import logging
import re

from hayate.auth.canon import split_message
from hayate.auth.dkim_keys import DkimKey, DkimKeyStore
from hayate.auth.dkim_sign import DkimSigner, DkimSignError
from hayate.auth.dmarc import FromFieldError, from_domains
from hayate.config import DkimConfig
from hayate.core.envelope import Envelope, Listener, SessionInfo, domain_of
from hayate.core.seams import Clock, SystemClock

log = logging.getLogger("hayate.dkim")

_FROM = re.compile(rb"(?:^|\r\n)from[ \t]*:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", re.IGNORECASE)


def from_domain(message: bytes) -> str:
    """The lower-cased domain of the first address in the first From header ('' if none).

    Only the first From field is found here (one regular expression over the header block:
    this runs for every outbound message); its address is read by DMARC's parser
    (:func:`hayate.auth.dmarc.from_domains`), so signing and DMARC agree on the From domain.
    """
    head, _ = split_message(message)
    m = _FROM.search(head)
    if m is None:
        return ""
    value = m.group(1).replace(b"\r\n", b"").strip(b" \t").decode("utf-8", "replace")
    try:
        domain = from_domains([value])[0]
    except FromFieldError:
        return ""
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return ""
    return domain


def is_outbound(session: SessionInfo) -> bool:
    """Mail we vouch for: not from the MX door, or from an authenticated or trusted client."""
    return (
        session.listener is not Listener.MX
        or session.auth_user is not None
        or session.relay_allowed
    )


class DkimSigningFilter:
    """Prepends DKIM-Signature headers to outbound mail whose domain has active keys."""

    def __init__(
        self,
        config: DkimConfig,
        keys: DkimKeyStore,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.keys = keys
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.signer = DkimSigner(config.headers, config.oversign, config.expire_after)
        self.signed = 0  # messages signed (for metrics)
        self.failed = 0  # messages that should have been signed but could not be

    def keys_for(self, domain: str) -> tuple[DkimKey, ...]:
        """Active keys of ``domain`` or of its nearest parent that has some."""
        while domain:
            found = self.keys.signing_keys(domain)
            if found:
                return found
            _, dot, domain = domain.partition(".")
            if not dot or "." not in domain:
                break
        return ()

    def choose_keys(self, message: bytes, envelope: Envelope) -> tuple[DkimKey, ...]:
        """The keys to sign with: From's domain first, then the envelope sender's."""
        found = self.keys_for(from_domain(message))
        if not found and envelope.sender:
            found = self.keys_for(domain_of(envelope.sender).rstrip("."))
        return found

    async def __call__(self, session: SessionInfo, envelope: Envelope, data: bytes) -> bytes:
        if not self.config.sign or not is_outbound(session):
            return data
        try:
            keys = self.choose_keys(data, envelope)
            if not keys:
                return data
            # Inline on the event loop: a helper process or a thread measured slower (see
            # the module docstring).
            header = self.signer.sign(data, keys, self.clock.now())
        except DkimSignError as exc:
            self.failed += 1
            log.warning("not signed (from=<%s>): %s", envelope.sender, exc)
            return data
        except Exception:  # signing must never lose or refuse mail
            self.failed += 1
            log.exception("not signed (from=<%s>): unexpected error", envelope.sender)
            return data
        self.signed += 1
        return header + data
