"""Build the compiled modules (Cython) beside the Python code they speed up.

Everything else is in pyproject.toml. Each module is a twin of Python code that stays (the
tests run both): ``monitor._scanloop`` (the record loop of ``hallmonitor scan``) and
``monitor.extract._quic`` (the QUIC Initial tracker) and ``monitor.extract._tls`` (the
ClientHello readers). They are optional extensions, so a
machine without a C compiler installs Hall Monitor all the same (with a warning) and runs the
Python code.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

COMPILED = {
    "monitor._scanloop": "monitor/_scanloop.pyx",
    "monitor.extract._quic": "monitor/extract/_quic.pyx",
    "monitor.extract._tls": "monitor/extract/_tls.pyx",
}

setup(
    ext_modules=cythonize(
        [Extension(name, [source], optional=True) for name, source in COMPILED.items()],
        compiler_directives={"language_level": "3"},
    )
)
