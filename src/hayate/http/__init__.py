"""The HTTP listener: health, metrics, mail client autoconfiguration and the own-password
change now; the send API, webhooks and dashboard later."""
