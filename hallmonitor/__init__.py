"""The ``hallmonitor`` command and the processes it starts: the composition root.

It sits above both ``api`` (the review app) and ``monitor`` (capture, store, reports), the one
package that may import both (the layers contract in pyproject.toml): ``cli`` turns options into
calls, ``serve`` and ``up`` build the review app with ``api.app.create_app(settings)`` and hand it
to uvicorn, and ``doctor`` and ``selftest`` check a sensor end to end.
"""
