"""The queue: what is waiting, what is being delivered, and what happens after each attempt.

``scheduler``  the active window (Postfix's active queue) and one queue per destination.
``backoff``    when to try again and when to give up.
``dsn``        delivery status notifications (RFC 3464) for mail that failed or is late.
"""
