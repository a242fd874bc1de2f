"""Hayate (疾風): a self-hosted mail delivery system.

One package: SMTP server (MX and submission), durable queue, delivery by MX, local
mailboxes. See the README for the operator's view and ``core`` for the shared vocabulary.
"""

__version__ = "0.1.0"
