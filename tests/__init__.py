"""NeSSA's test suite, one folder per subsystem (store, service, select, device, rtl, trainer, sim, cli)."""
