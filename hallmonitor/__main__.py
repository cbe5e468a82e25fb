"""``python -m hallmonitor`` is the ``hallmonitor`` command."""

from hallmonitor.cli import main

main()
