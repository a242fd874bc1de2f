"""Policy: the decisions the SMTP server asks for at each phase (relay control, sender
ownership, known recipients). Later: rate limits, DNSBLs, SPF/DMARC, spam scoring."""
