"""The ``hayate`` subcommand groups, one module each (see ``hayate.cli``)."""
