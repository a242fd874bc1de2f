"""Mailboxes: what IMAP and POP3 sessions read and change, over the store.

``model`` is the contract (values, errors and the :class:`~hayate.mailbox.model.Mailboxes`
interface); ``service`` implements it over the store (:class:`StoreMailboxes`, one per
session); ``watch`` wakes sessions when a folder changes (:class:`FolderWatcher`, one per
process); ``locks`` is the POP3 maildrop lock (:class:`MailboxLocks`); ``sessions`` counts the
IMAP and POP3 sessions of each account in this process (the per-user limit); ``retention``
expunges old messages by rule (:func:`retention.sweep`); ``mime`` reads a stored message's
MIME structure for IMAP.
"""
