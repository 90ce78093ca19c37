"""runnerhub's benchmark suite: ``python -m benchmarks`` (``nox -s bench``).

One module per benchmark (``bulk_listing``, ``get_throughput``, ``rate_limit``,
``fan_out``, ``memory``, ``import_cost``, ``scale``), each with ``run(quick=False) ->
Section``; ``_server`` is the fast Soda server they share, ``_baselines`` the
hand-written clients they compare with, ``_report`` the results format.
``redis_limits`` is a separate study of limits shared across processes.
"""
