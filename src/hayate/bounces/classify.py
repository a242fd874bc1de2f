"""Reason categories of a failed delivery, and the hard/soft decision that follows from them.

``reason_for(text, status)`` reads the remote's reply text (and the prose around it) and the
enhanced status code, and returns one of :data:`REASONS`; ``kind_for(reason, status)`` turns
that into "hard" or "soft". Second thoughts that need the context of the reply (the SMTP
phase, a code that contradicts the words) are in ``hayate.bounces.refine``; delay warnings,
which are not bounces, in ``hayate.bounces.delay``.

Text first: a reply such as "550 5.1.1 mailbox full" says more in words than in its code
(many servers put 5.1.1 or 5.0.0 on everything), so the first pattern group that matches wins,
in the order of :data:`_TEXT_RULES` (specific before general). Only when the words say nothing
known does the status code decide (RFC 3463 subjects and details), then "undefined".

Hard or soft (what a deliverability engineer suppresses at once):
- hard: the address is dead whoever sends — user-unknown, host-unknown, has-moved, and
  not-accepted (null MX) when the code is permanent;
- soft: everything else. A suspended / disabled / inactive mailbox is soft: providers
  re-enable them (Gmail "inactive", Yahoo "disabled" after abuse), and the suppression rule
  for repeated soft bounces retires the ones that stay dead (the corpus counts them soft too).
  Rejections that are about the *sender or the message* — blocked (IP/reputation), spam,
  virus, filtered, policy, security-error, sender-rejected, relay-denied, rate-limited,
  message-too-big, content-error, syntax-error (our SMTP) — are soft even with a 5.x.x code:
  the address is fine and suppressing it would lose a good recipient over our own problem.
  This is also how the labelled corpus counts them.
- neither: complaint, auto-reply and delivered are not bounces. A delay warning is kind
  "soft" with reason "delayed" (a temporary failure; ``hayate.bounces.delay``), which the
  processor and the suppression list never count as a bounce.
"""

from __future__ import annotations

import re
from typing import Final

from hayate.bounces.records import BounceKind

REASONS: Final = (
    "user-unknown",
    "mailbox-full",
    "host-unknown",
    "blocked",
    "spam",
    "virus",
    "filtered",
    "policy",
    "security-error",
    "sender-rejected",
    "relay-denied",
    "message-too-big",
    "content-error",
    "expired",
    "system-error",
    "system-full",
    "network-error",
    "mailer-error",
    "suspended",
    "not-accepted",
    "rate-limited",
    "syntax-error",
    "has-moved",
    "on-hold",
    "undefined",
)

HARD_REASONS: Final = frozenset({"user-unknown", "host-unknown", "has-moved"})


def _rx(*parts: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE)


# Ordered: the first group whose pattern matches names the reason.
_TEXT_RULES: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    (
        # a local program failed: its words ("No such user") are not the remote's
        "mailer-error",
        _rx(
            r"procmail",
            r"pipe to (?:\||(?:a )?program)",
            r"mailer error",
            r"unknown mailer",
            r"command (?:died|failed) with",
        ),
    ),
    (
        # words about the sender come before words about the recipient
        "sender-rejected",
        _rx(
            r"domain of sender address",
            r"sender address (?:rejected|refused|denied|invalid|unknown|is not)",
            r"(?:unknown|invalid|unverified|bad) sender",
            r"sender domain (?:must|does not|not)",
            r"(?:don't|do not|does not|not) have permission to post",
            r"only (?:members|subscribers) (?:can|may) post",
        ),
    ),
    (
        "not-accepted",
        _rx(
            r"null mx",
            r"mx or srv record indicated no smtp service",
            r"does not accept (?:any )?(?:e-?)?mail",
            r"accepts no (?:e-?)?mail",
            r"not accepting (?:any )?(?:e-?)?mail\b(?! from)",
        ),
    ),
    (
        "has-moved",
        _rx(
            r"has been replaced by",
            r"address (?:has|was) (?:been )?(?:moved|changed)",
            r"user has moved",
            r"mailbox has moved",
        ),
    ),
    (
        "mailbox-full",
        _rx(
            r"mail ?box (?:is )?(?:full|over ?quota|exceeds|too big)",
            r"mail ?box .{0,40}(?:exceed|over) (?:its |the |his |her )?"
            r"(?:quota|size|storage|limit)",
            r"over ?quota",
            r"quota (?:exceeded|full|violation)",
            r"exceed(?:ed|s)? (?:the |its |his |her )?(?:storage|disk|mailbox)?\s?quota",
            r"insufficient (?:disk )?(?:space|storage) (?:for|in) (?:the )?(?:user|mailbox)",
            r"(?:account|inbox|mailfolder|user) (?:is )?full",
            r"full (?:mail ?box|inbox)",
            r"not enough (?:storage|space) (?:for|in) (?:the )?(?:user|mailbox)",
            r"user(?:'s)? (?:disk|mailbox|storage) .{0,20}(?:full|exceeded)",
            r"(?:recipient|mailbox) (?:storage|size) limit",
            r"too many messages in (?:the|this) mailbox",
            r"out of (?:mailbox )?storage",
            r"容量.{0,10}(?:超|オーバー|一杯|いっぱい)",
            r"(?:一杯|いっぱい)",
        ),
    ),
    (
        "message-too-big",
        _rx(
            r"message (?:is )?too (?:big|large)",
            r"message (?:size|length) (?:exceeds|too|is larger)",
            r"exceeds? (?:the |our )?(?:maximum |max )?(?:allowed )?(?:message |mail )?size",
            r"size (?:limit|exceeds)",
            r"too large for",
            r"maximum (?:message|allowed) size",
            r"message file too big",
        ),
    ),
    (
        "suspended",
        _rx(
            r"(?:account|mail ?box|user|address|recipient)(?: \S+)? "
            r"(?:has been |is |was |currently )?"
            r"(?:disabled|suspended|deactivated|inactive|frozen|locked|expired|closed|not active)",
            r"(?:disabled|suspended|deactivated|inactive|frozen|locked) (?:account|mail ?box|user)",
            r"account .{0,40}(?:is|has been) (?:disabled|suspended|inactive|deactivated)",
        ),
    ),
    (
        "user-unknown",
        _rx(
            r"user(?:name)? (?:is )?unknown",
            r"unknown (?:user|recipient|local[- ]?part|mail ?box|account|address|e-?mail)",
            r"no such (?:user|mail ?box|recipient|account|address|person|local user|e-?mail)",
            r"(?:user|recipient|mail ?box|account|address|addressee|e-?mail)(?: address| account)?"
            r" (?:\S+ )?(?:does not|doesn't|did not|do not|dose not) exists?",
            r"(?:user|recipient|mail ?box|account|address|addressee)(?: address)? (?:is )?"
            r"(?:unknown|not found|not exist|invalid|non-?existent|not valid|not listed|not known)",
            r"(?:invalid|unknown|non-?existent|bad) "
            r"(?:recipient|mail ?box|user|address|destination)",
            r"not a (?:valid|known) (?:user|mail ?box|recipient|address)",
            r"recipient (?:address )?rejected: "
            r"(?:undeliverable|unknown|user|no mailbox|access denied|invalid)",
            r"addressee unknown",
            r"no mail ?box (?:here|by that name|found)?",
            r"no longer (?:valid|available|in use|exists?|active)",
            r"user not (?:found|local|here)",
            r"not our customer",
            r"(?:account|address|mail ?box|user) (?:that|which|you) .{0,40}"
            r"(?:does not|doesn't) exist",
            r"is not a known user",
            r"unknown or illegal alias",
            r"(?:recipient|user|address) .{0,20}(?:was )?not found",
            r"no such address",
            r"not listed in (?:the )?(?:domino |public |global )?(?:directory|address book|name)",
            r"recipient address rejected(?:\.|$|\s*\(in reply)",
            r"@[\w.-]+>?\.{0,3}:?\s+(?:rejected|refused)\b(?!\s+(?:for|due|because|by))",
            r"(?:account|address) (?:has been |was )?(?:deleted|removed)",
            r"存在しない",
            r"ユーザ.{0,80}(?:見つかりません|存在しません)",
            r"please check (?:if|that|whether) (?:the )?(?:recipient(?:'s)? )?(?:e-?mail )?"
            r"address(?:es)? (?:is|are) (?:correct|valid)",
            r"宛先.{0,20}(?:見つかり|存在し)",
        ),
    ),
    (
        "host-unknown",
        _rx(
            r"host (?:or domain name )?(?:unknown|not found)",
            r"unknown (?:host|domain)",
            r"(?:domain|host)(?: name)? (?:not found|does not exist|doesn't exist|lookup failed"
            r"|is invalid|is unknown|not exist)",
            r"no such domain",
            r"name or service not known",
            r"unrouteable (?:mail )?(?:domain|address)",
            r"no (?:mx|dns) (?:or a )?records?",
            r"nxdomain",
            r"couldn't find any host",
            r"non-?existent (?:domain|host)",
            r"illegal host/domain",
            r"domain .{0,40} (?:does not|doesn't) exist",
            r"all relevant mx records point to non-existent hosts",
            r"(?:domain|host) (?:could not|cannot|can't) be (?:found|resolved)",
            r"(?<![@\w.-])(?:[a-z0-9-]+\.)+[a-z]{2,}\s+does not exist",
            r"domain (?:is )?not reachable",
            r"name service error",
            r"host name lookup failure",
        ),
    ),
    (
        "relay-denied",
        _rx(
            r"relay(?:ing)? (?:access )?(?:denied|not permitted|not allowed|prohibited|refused)",
            r"not (?:permitted|allowed|authorized) to relay",
            r"unable to relay",
            r"(?:we|i) do not relay",
            r"no relaying",
            r"cannot relay",
            r"relaying (?:is )?(?:prohibited|disallowed)",
        ),
    ),
    (
        "rate-limited",
        _rx(
            r"too many (?:connections|concurrent|simultaneous|sessions|smtp sessions"
            r"|open connections|recipients)",
            r"frequency limit",
            r"rate limit",
            r"(?:connection|message|sending|recipient) rate",
            r"throttl",
            r"too much (?:mail|traffic)",
            r"exceeded (?:the )?(?:maximum )?(?:number of )?(?:connections|messages per)",
        ),
    ),
    (
        "virus",
        _rx(r"virus", r"malware", r"infected", r"trojan"),
    ),
    (
        # a listed link or domain in the message is about content, not the sending IP
        "spam",
        _rx(r"(?:black|block)listed (?:url|link|domain)", r"\buribl\b", r"\bsurbl\b"),
    ),
    (
        # "blocked" said of the message's content (attachments, links) is the receiver's
        # content policy, not a block of the sending IP
        "policy",
        _rx(r"blocked because (?:of )?(?:its|the|the message's) content"),
    ),
    (
        "blocked",
        _rx(
            # the connecting host is a dynamic or end-user address that should relay
            # through its provider ("Please use the smtp server of your ISP")
            r"(?:smtp|mail|outgoing) (?:server|relay|gateway) of your (?:isp|provider"
            r"|internet service provider)",
            r"(?:use|through|via) your (?:isp|provider)'?s? (?:smtp|mail|outgoing|relay)",
            r"spamhaus",
            r"spamcop",
            r"barracuda",
            r"sorbs",
            r"dnsbl",
            r"\brbl\b",
            r"block ?list",
            r"black ?list",
            r"ip (?:address )?.{0,40}(?:blocked|listed|rejected|refused|blacklisted|banned)",
            r"(?:your|the sending|the connecting|client) (?:ip|host|server)",
            r"reverse (?:dns|lookup|resolution)",
            r"ptr record",
            r"\brdns\b",
            r"(?:poor|bad|low) reputation",
            r"reputation",
            r"dynamic(?:ally assigned)? ip",
            r"dial-?up",
            r"residential",
            r"connection (?:refused|rejected) (?:by|from|due)",
            r"refused to talk",
            r"(?:helo|ehlo) (?:command )?(?:rejected|refused|invalid)",
            r"service unavailable; client host",
            r"client host .{0,60}(?:rejected|blocked|refused)",
            r"access denied",
            r"temporarily (?:deferred|blocked)",
            r"blocked",
        ),
    ),
    (
        "spam",
        _rx(
            r"spam",
            r"junk mail",
            r"unsolicited",
            r"bulk mail",
            r"phish",
            r"scored too high",
            r"classified as (?:spam|junk|bulk)",
            r"(?:message )?content (?:rejected|refused|not accepted)",
            r"(?:suspicious|objectionable|prohibited) (?:content|url|links?|attachment)",
        ),
    ),
    (
        "security-error",
        _rx(
            r"authentication (?:required|failed|is required|credentials)",
            r"must issue a starttls",
            r"(?:tls|encryption|starttls) (?:is )?required",
            r"certificate (?:verification|validation|error)",
            r"sender verify failed",
            r"not authori[sz]ed",
            r"does not have permission",
        ),
    ),
    (
        "policy",
        _rx(
            r"\bdmarc\b",
            r"\bspf\b",
            r"\bdkim\b",
            r"polic(?:y|ies)",
            r"prohibited",
            r"administrative(?:ly)? (?:prohibit|denied)",
            r"not (?:permitted|allowed)",
            r"unauthenticated",
            r"message rejected",
        ),
    ),
    (
        "sender-rejected",
        _rx(
            r"sender (?:address )?(?:rejected|refused|denied|invalid|unknown|is not|not allowed"
            r"|domain (?:must|does|not))",
            r"(?:mail from|from address|envelope sender|return[- ]path|sender address)"
            r" .{0,30}(?:rejected|refused|invalid|not allowed|does not exist)",
            r"domain of sender address",
            r"(?:unknown|invalid|unverified|bad) sender",
            r"(?:don't|do not|does not) have permission to post",
            r"only (?:members|subscribers) (?:can|may) post",
            r"sender .{0,40}not (?:allowed|authori[sz]ed|permitted)",
        ),
    ),
    (
        "filtered",
        _rx(
            r"filter",
            r"refused by (?:the )?recipient",
            r"rejected by (?:the )?recipient",
            r"(?:user|recipient) (?:has )?(?:refused|rejected|blocked)",
            r"does not wish to receive",
            r"recipient(?:'s)? preferences",
            r"receiv(?:er|ing) refused",
            r"受信拒否",
            r"拒否",
        ),
    ),
    (
        "expired",
        _rx(
            r"expired",
            r"retry (?:time|timeout|period) .{0,20}(?:exceeded|expired|reached)",
            r"(?:could|has) not been delivered (?:within|for|in) ",
            r"could not be delivered (?:within|for|in) \d",
            r"too long in (?:the )?queue",
            r"been (?:in the queue|undeliverable|delayed) (?:for|too)",
            r"delivery time (?:expired|exceeded)",
            r"message (?:is )?too old",
            r"no successful delivery",
            r"maximum (?:queue|delivery) time",
            r"retry limit",
            r"deferred for too long",
            r"unable to deliver .{0,40}(?:days?|hours?)",
            r"(?:failed|after) \d+ (?:delivery )?attempts",
            r"timeout waiting",
        ),
    ),
    (
        "network-error",
        _rx(
            r"connection (?:timed out|timeout|refused|reset|lost|dropped|closed)",
            r"timed? ?out",
            r"network (?:error|unreachable|is unreachable)",
            r"no route to host",
            r"(?:could not|unable to|can't|cannot|failed to) (?:connect|establish)",
            r"host (?:is )?unreachable",
            r"lost connection",
            r"name server (?:failure|timeout)",
            r"temporary failure in name resolution",
            r"routing loop",
            r"mail (?:forwarding )?loop",
            r"loop detected",
            r"too many hops",
            r"hop count",
            r"broken pipe",
            r"did not accept our requests? to connect",
        ),
    ),
    (
        "mailer-error",
        _rx(
            r"mailer error",
            r"unknown mailer",
            r"pipe to (?:a )?program",
            r"command (?:died|failed|output)",
            r"exited with",
            r"local delivery (?:failed|error)",
            r"procmail",
            r"program (?:failed|error|returned)",
            r"exit (?:code|status)",
            r"\bsh: ",
        ),
    ),
    (
        "system-full",
        _rx(
            r"insufficient system storage",
            r"mail system (?:is )?full",
            r"(?:disk|file ?system|partition) (?:is )?full",
            r"no space left",
        ),
    ),
    (
        "syntax-error",
        _rx(
            r"syntax error",
            r"command (?:unrecognized|not recognized|not implemented)",
            r"unrecognized command",
            r"bad sequence",
            r"line too long",
            r"invalid command",
        ),
    ),
    (
        "content-error",
        _rx(
            r"(?:header|mime|encoding|charset|8-?bit|bare lf|attachment)s? .{0,30}"
            r"(?:error|invalid|not allowed|rejected|malformed|not supported)",
            r"malformed",
            r"headers? (?:too (?:large|long|big)|(?:is |are )?too many)",
            r"not (?:rfc ?)?(?:5322|2822|822)[- ]compliant",
        ),
    ),
    (
        "system-error",
        _rx(
            r"system (?:error|failure|problem)",
            r"internal (?:server )?error",
            r"server (?:error|failure)",
            r"local (?:error|problem)",
            r"temporary (?:local )?(?:problem|failure|error)",
            r"out of memory",
            r"resources? (?:temporarily )?unavailable",
            r"configuration error",
            r"i/o error",
            r"service (?:is )?(?:currently |temporarily )?(?:refused|unavailable|not available)",
            r"try again later",
        ),
    ),
)

# Enhanced status "subject.detail" → reason (RFC 3463 and registered later codes).
_STATUS_REASONS: Final[dict[str, str]] = {
    "1.1": "user-unknown",
    "1.2": "host-unknown",
    "1.3": "user-unknown",
    "1.4": "user-unknown",
    "1.5": "user-unknown",
    "1.6": "has-moved",
    "1.7": "sender-rejected",
    "1.8": "sender-rejected",
    "1.10": "not-accepted",
    "2.1": "suspended",
    "2.2": "mailbox-full",
    "2.3": "message-too-big",
    "2.4": "mailer-error",
    "3.0": "system-error",
    "3.1": "system-full",
    "3.2": "not-accepted",
    "3.3": "system-error",
    "3.4": "message-too-big",
    "3.5": "system-error",
    "4.0": "network-error",
    "4.1": "network-error",
    "4.2": "network-error",
    "4.3": "system-error",
    "4.4": "host-unknown",
    "4.5": "network-error",
    "4.6": "network-error",
    "4.7": "expired",
    "5.0": "syntax-error",
    "5.1": "syntax-error",
    "5.2": "syntax-error",
    "5.3": "rate-limited",
    "5.4": "syntax-error",
    "5.5": "syntax-error",
    "6.0": "content-error",
    "6.1": "content-error",
    "6.2": "content-error",
    "6.3": "content-error",
    "6.4": "content-error",
    "6.5": "content-error",
    "7.0": "policy",
    "7.1": "policy",
    "7.2": "filtered",
    "7.3": "security-error",
    "7.4": "security-error",
    "7.5": "security-error",
    "7.6": "security-error",
    "7.7": "security-error",
    "7.8": "security-error",
    "7.9": "security-error",
    "7.10": "security-error",
    "7.11": "security-error",
    "7.13": "suspended",
    "7.14": "security-error",
    "7.15": "security-error",
    "7.16": "mailbox-full",
    "7.17": "suspended",
    "7.18": "suspended",
    "7.19": "suspended",
    "7.20": "policy",
    "7.21": "policy",
    "7.22": "policy",
    "7.23": "policy",
    "7.24": "policy",
    "7.25": "blocked",
    "7.26": "policy",
    "7.27": "sender-rejected",
    "7.28": "rate-limited",
}


# Where a quoted SMTP reply starts inside a report's own words ("... error 550-'5.7.1 ...").
_QUOTED_REPLY_RE = re.compile(r"(?<![\w.#-])[45]\d\d[ -]'?")


# An address's words say nothing about the failure ("filtered@example.net"): it is read as a
# bare "x@x" (patterns that need an address still see one).
_NOISE_RE = re.compile(r"[\w.+=-]+@[\w.-]+")


_MAX_TEXT = 4000  # a reply worth reading is shorter; this bounds the time on hostile input


def _match(text: str) -> str:
    for reason, pattern in _TEXT_RULES:
        if pattern.search(text):
            return reason
    return ""


def reason_from_text(text: str) -> str:
    """The reason the words of a reply name, or "" when none of the rules matches.

    When the text quotes a remote SMTP reply after words of its own (Amazon SES: "5.1.0 -
    Unknown address error 550-'5.7.1 ... Access denied'"), the remote's words are read first:
    the relaying service's summary is a guess, the remote's reply is the fact.
    """
    if not text:
        return ""
    text = _NOISE_RE.sub("x@x", text[:_MAX_TEXT])
    quoted = _QUOTED_REPLY_RE.search(text)
    if quoted is not None and quoted.start() > 0:
        found = _match(text[quoted.start() :])
        if found:
            return found
    return _match(text)


def says(reason: str, text: str) -> bool:
    """Do the words of ``text`` match one of the patterns of ``reason`` (any position)?"""
    text = _NOISE_RE.sub("x@x", text[:_MAX_TEXT])
    return any(name == reason and pattern.search(text) for name, pattern in _TEXT_RULES)


def reason_from_status(status: str) -> str:
    """The reason an enhanced status code names ("" for x.0.0 and unknown codes)."""
    parts = status.split(".")
    if len(parts) != 3 or parts[0] not in ("4", "5"):
        return ""
    return _STATUS_REASONS.get(f"{parts[1]}.{parts[2]}", "")


def reason_for(text: str, status: str = "") -> str:
    """Text first, then the status code, then "undefined"."""
    return reason_from_text(text) or reason_from_status(status) or "undefined"


def kind_for(reason: str, status: str = "", temporary: bool | None = None) -> BounceKind:
    """Hard or soft for a failed recipient (see the module docstring for the mapping).

    ``temporary`` is what the report says about the failure when it says something
    (a 4.x.x status, a 4xx reply, a "delayed" action); it only matters for not-accepted.
    """
    if reason in HARD_REASONS:
        return "hard"
    if reason == "not-accepted":
        if temporary is None:
            temporary = status.startswith("4")
        return "soft" if temporary else "hard"
    return "soft"
