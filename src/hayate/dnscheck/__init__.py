"""``hayate dns check DOMAIN``: are the DNS records this server needs published, and right?

:mod:`~hayate.dnscheck.checks` runs the checks (MX, the host's address, SPF, DKIM, DMARC,
PTR/FCrDNS, MTA-STS, TLS-RPT) over a :class:`hayate.core.seams.TxtResolver`; each returns
:class:`~hayate.dnscheck.results.CheckResult` rows (found / missing / wrong, with the record to
publish); :mod:`~hayate.dnscheck.report` prints them as a table or JSON. The command itself is
:mod:`hayate.commands.dnscheck`.
"""
