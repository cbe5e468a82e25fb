"""``python -m monitor`` is the ``hallmonitor`` command."""

from monitor.cli import main

main()
