"""Delivery agents: remote SMTP (``remote``, on ``client``/``pool``/``route``/``wire``) and
local mailboxes (``local``). They return per-recipient results and never touch queue state.
"""
