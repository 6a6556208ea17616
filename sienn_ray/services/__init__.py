"""The domain operations, one module per operation, shared by the HTTP routes and the CLI.

Every function takes the ``Services`` it works with and the ``Principal`` it
acts for, explicitly: tenancy is checked here, never in a route alone. Reads
are plain functions over the read-only store (they never wait on another
process); operations that change something are ``async`` and go through the
registry, the one writer.
"""
