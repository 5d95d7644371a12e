"""Real parts for tests and benchmarks: the manager as a real process, real delegates, the
sandbox as a pytest plugin. Not shipped in the wheel; imported from a checkout."""
