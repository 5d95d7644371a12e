"""``python -m cli``: the same as ``delegate``."""

from cli.main import main

main()
