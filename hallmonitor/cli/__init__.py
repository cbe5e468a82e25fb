"""The ``hallmonitor`` command line: thin wiring from options to the engine.

``root`` is the group (``main``, the console script) and its global options; each command or
command group has a module of its own (``scan``, ``capture``, ``db``, ``lists``, ``config``,
``serve``, ``users``, ``devices``, ``report``, ``checks``, ``up``), and ``context`` holds what they share:
the settings, and the errors a user can fix turned into one line.
"""
