"""The HTTP listener: health and metrics now; the send API, webhooks and dashboard later."""
