"""The ``segprovider`` command line, one module per command group (see :mod:`.main`)."""
