"""Build the compiled modules (Cython) beside the Python code they speed up.

Everything else is in pyproject.toml. Each module is a twin of Python code that stays (the
tests run both): ``monitor._scanloop`` (the record loop of ``hallmonitor scan``) and
``monitor.extract._quic`` (the QUIC Initial tracker), ``monitor.extract._reassembly`` (the TCP
stream reassembler) and ``monitor.extract._tls`` (the ClientHello readers). They are optional extensions, so a
machine without a C compiler installs Hall Monitor all the same (with a warning) and runs the
Python code.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

COMPILED = [
    Extension("monitor._scanloop", ["monitor/_scanloop.pyx"], optional=True),
    # The QUIC twin decrypts with OpenSSL's libcrypto (headers: Debian's libssl-dev).
    Extension(
        "monitor.extract._quic", ["monitor/extract/_quic.pyx"], libraries=["crypto"], optional=True
    ),
    Extension("monitor.extract._reassembly", ["monitor/extract/_reassembly.pyx"], optional=True),
    Extension("monitor.extract._tls", ["monitor/extract/_tls.pyx"], optional=True),
]

setup(ext_modules=cythonize(COMPILED, compiler_directives={"language_level": "3"}))
