"""Sender authentication: DKIM signing and verification, SPF, DMARC, ARC, Authentication-Results.

Pure checks over message bytes and a :class:`hayate.core.seams.TxtResolver`; the ingest
filters in :mod:`hayate.auth.inbound` and :mod:`hayate.auth.signing` apply them to mail.
"""
