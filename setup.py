"""Build the one compiled module, ``monitor._scanloop`` (Cython), beside the Python code.

Everything else is in pyproject.toml. The module only makes ``hallmonitor scan`` faster: it is
an optional extension, so a machine without a C compiler installs Hall Monitor all the same
(with a warning) and scans with the Python loop in monitor/fastscan.py.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [Extension("monitor._scanloop", ["monitor/_scanloop.pyx"], optional=True)],
        compiler_directives={"language_level": "3"},
    )
)
