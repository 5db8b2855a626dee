"""The `jiandang` command line: the same operations as the window, for scripting and county batch work."""
