"""Benchmarks run from the repository root with the project's virtualenv.

``python -m bench.relay``         end-to-end relay throughput, Hayate against Postfix, through
                                  Postfix's smtp-source and smtp-sink on 127.0.0.1.
``python -m bench.queue_memory``  resident memory of Hayate holding 100,000 undeliverable messages.

Helpers: ``procs`` (ports, process groups, /proc accounting), ``smtptools`` (smtp-sink and
smtp-source), ``postfix`` (a private Postfix instance), ``hayate`` (``hayate serve`` under test).
"""
