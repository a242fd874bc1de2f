"""Delivery events: recording them in batches (``recorder``) for ``hayate events``,
webhooks and analytics. The values themselves live in ``hayate.core.events``."""
