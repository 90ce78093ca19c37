"""``python -m runnerhub``: the same command line as the ``runnerhub`` script."""

from .cli import main

raise SystemExit(main())
