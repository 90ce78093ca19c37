"""The command line's insides; ``runnerhub.cli`` is the entry point and parser.

By concern: ``_accounts`` (the ``accounts`` command), ``_runners`` (commands on
one runner), ``_fleet`` (``ls``, ``watch``), ``_sandbox`` (``sandbox``,
``demo``), with ``_common`` (context, exit codes, accounts, finding a runner)
and ``_commands`` (the name → function table). ``_output`` writes (stdout for
results, stderr for everything else), ``_progress`` draws an inventory's
progress on stderr, ``_mask`` masks credentials in vendor data. Nothing here is
imported by ``runnerhub`` itself, and rich is imported only inside the
functions that draw with it.
"""
