"""Build the compiled modules (Cython, all in ``monitor/compiled/``) of the Python code they speed up.

Also the package list: ``migrations/`` (Alembic's folder, beside ``alembic.ini`` in the
repository) is installed as the package ``monitor.store.migrations``, so a wheel carries it.
Everything else is in pyproject.toml. The compiled modules all live in ``monitor.compiled``;
each is a twin of Python code that stays (the tests run both, and
``monitor.extract.compiled.ORIGINALS`` names every function's original):
``monitor.compiled.scanloop`` (the record loop of ``hallmonitor scan``, whose Python original
is the general path), ``monitor.compiled.quic`` (the QUIC Initial tracker),
``monitor.compiled.reassembly`` (the TCP stream reassembler) and ``monitor.compiled.tls`` (the
ClientHello readers).

They are a speed-up, never a condition of installing: a machine without a C compiler, without
the Python headers or without OpenSSL's headers installs Hall Monitor all the same, says which
modules it could not build and why, and runs their Python twins (``hallmonitor doctor`` says so
too). Release wheels and the Debian package are built where the compiler is, so a gateway gets
the compiled modules without one.
"""

from Cython.Build import cythonize
from setuptools import Extension, find_namespace_packages, setup
from setuptools.command.build_ext import build_ext

COMPILED = [
    Extension("monitor.compiled.scanloop", ["monitor/compiled/scanloop.pyx"]),
    # The QUIC twin decrypts with OpenSSL's libcrypto (headers: Debian's libssl-dev).
    Extension("monitor.compiled.quic", ["monitor/compiled/quic.pyx"], libraries=["crypto"]),
    # Cython's pure-Python mode: the Python module itself, typed by monitor/compiled/reassembly.pxd.
    Extension("monitor.compiled.reassembly", ["monitor/extract/reassembly.py"]),
    Extension("monitor.compiled.tls", ["monitor/compiled/tls.pyx"]),
]


class BuildOptionalExtensions(build_ext):
    """Any failure to build a compiled module is a warning, never the end of the install.

    (setuptools' own ``optional=True`` is not enough: setuptools does not treat a missing
    compiler as a build error.)"""

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as error:
            self.warn(
                f"the compiled module {ext.name} was not built ({error}); Hall Monitor runs its "
                "Python twin instead (install gcc, python3-dev and libssl-dev to build it)"
            )


MIGRATIONS = {
    "monitor.store.migrations": "migrations",
    "monitor.store.migrations.versions": "migrations/versions",
}


def optional(modules: list[Extension]) -> list[Extension]:
    """Mark ``cythonize``'s modules optional again (it drops the flag): an editable install
    copies each built module into the source tree, and skips a missing one only when it is
    optional ("can't copy ... scanloop...so: doesn't exist" ended the install otherwise)."""
    for module in modules:
        module.optional = True
    return modules


setup(
    # Namespace packages too: the folders of templates and static files are packages to
    # setuptools (listed, their files are package data without "would be ignored" warnings).
    packages=find_namespace_packages(
        include=["hallmonitor*", "monitor*", "api*", "blocklists*"], exclude=["*.__pycache__"]
    )
    + list(MIGRATIONS),
    package_dir=MIGRATIONS,
    # annotation_typing off: a pure-Python module's annotations are for mypy; its .pxd types it.
    ext_modules=optional(
        cythonize(COMPILED, compiler_directives={"language_level": "3", "annotation_typing": False})
    ),
    cmdclass={"build_ext": BuildOptionalExtensions},
)
