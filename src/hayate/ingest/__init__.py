"""Ingest: the one writer of new mail (SMTP, the CLI, DSNs; the HTTP API and campaigns later).

``routing``  decides, per recipient, local mailbox or remote, and which queue it joins.
``headers``  adds Received, Message-ID and Date without parsing the whole message.
``ingest``   ties them together, writes the spool with group commit and hands the message to
             the scheduler.
"""
