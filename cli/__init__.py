"""The ``delegate`` command line: the composition root, the one package that wires the
delegate, the manager, the task handlers and the sandbox together (and the API client and
the demo that use them)."""
