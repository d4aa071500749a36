"""``python -m costwarden.cli``: the same entry point as the console script."""

from costwarden.cli import main

main()
