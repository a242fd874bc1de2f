"""The IMAP4rev1 server (RFC 3501) with the extensions current clients use.

Protocol layer (sans-I/O, no sockets):
``response``        encoding value trees and response lines
``commands``        the parsed-command types (and the reader's Bad / No / NeedContinuation)
``parser``          ``CommandReader``: framing (lines, literals, limits) → results
``grammar``         one complete command's bytes → a ``commands`` object
``grammar_fetch``   FETCH items, sections, partials, modifiers
``grammar_search``  SEARCH criteria and CHARSET
``tokens``          atoms, strings, literals, numbers, sets, dates: the grammar's cursor
``utf7``            RFC 3501 modified UTF-7 for mailbox names
``fetch``           rendering FETCH responses
``search``          SEARCH evaluation against the mailbox service; SEARCH/ESEARCH lines
``sort``            SORT (RFC 5256) ordering

Sessions and server:
``session``   the per-connection state machine over ``hayate.mailbox.model.Mailboxes``
``selected``  the selected folder's state (sequence numbers ↔ UIDs, pending updates)
``keywords``  the keywords in use per folder (SELECT's FLAGS), cached per process
``server``    the asyncio server: TLS, STARTTLS, IDLE, literals, timeouts
"""
