"""The receiving SMTP server for the MX, submission and submissions listeners.

``protocol``  the sans-I/O state machine (bytes in → replies and events out)
``events``    what the machine asks of its adapter
``replies``   the fixed replies, already encoded
``address``   MAIL/RCPT path and ESMTP parameter syntax
``eager``     running policy/sink coroutines without a Task when they do not suspend
``server``    the asyncio adapter: sockets, TLS, timers, limits, policy and sink calls
``bench``     ``python -m hayate.smtp.bench``: smtp-source against a sink that stores nothing
"""
