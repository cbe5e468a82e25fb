"""``python -m hallmonitor`` is the ``hallmonitor`` command."""

from hallmonitor.cli.root import main

# Guarded: capture workers start by spawning, which imports this module again in each worker.
if __name__ == "__main__":
    main()
