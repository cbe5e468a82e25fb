"""The compiled modules (Cython), all here: a twin of each hot-path function or class of the
Python code, built by setup.py when a C compiler is there.

They hold no rules of their own: the values they decide by (ports, record starts, limits,
flag bits) are the Python modules' constants, imported or handed over as data when a walk
starts. ``monitor.extract.compiled.ORIGINALS`` names the Python original of every public
function and class here (tests/monitor/compiled/ check both directions, and that the results
agree on the golden captures); ``monitor.extract.compiled`` loads them, says at start which
could not be loaded and why, and ``hallmonitor doctor`` shows it (check ``compiled``).
"""
