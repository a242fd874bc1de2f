"""The POP3 server (RFC 1939 with RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 SASL) over the
mailbox service: the maildrop is the account's INBOX.

``wire``      reply lines, the CAPA list, UIDLs, TOP cutting and dot-stuffed message streams
``maildrop``  the session's numbered snapshot of INBOX and its DELE / RETR marks
``events``    what the protocol machine asks of its adapter
``protocol``  the sans-I/O state machine (bytes in → replies and events out)
``backend``   login (password, maildrop lock, snapshot), message bodies, the UPDATE state
``server``    the asyncio adapter: sockets, TLS, timers, backpressure, lock refreshing
"""
