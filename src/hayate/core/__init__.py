"""Pure types shared by every layer: no I/O and no imports from the rest of Hayate.

``reply``     SMTP replies and the error that carries one.
``envelope``  who sent what to whom, and what the SMTP session knew about the client.
``results``   what a delivery attempt reports back to the queue.
``seams``     the typing.Protocol interfaces that the runtime wires concrete classes into.
"""
