"""The ``microvae`` command line."""
