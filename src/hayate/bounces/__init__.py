"""Bounces and complaints: parsing inbound DSNs, non-standard bounces and ARF reports,
VERP return paths, the suppression list and its rules, and the processor that ties them
together for mail that arrives at the bounce domain."""
