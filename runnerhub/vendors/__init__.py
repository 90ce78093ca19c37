"""One module per vendor: routes, default limits, auth, paging and wire-to-model mapping."""
