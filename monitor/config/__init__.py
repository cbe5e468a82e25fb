"""Hall Monitor's settings: one TOML file, overridden by ``HALLMONITOR_<GROUP>__<KEY>`` variables.

Build settings with ``load_settings``; constructing ``Settings(...)`` directly validates the
values given and reads nothing else. The package, one job a module:

- ``settings``: the schema, one pydantic model per ``[group]`` (``calendar`` and ``review``
  hold some of the groups; ``fields``: the value types, each with its own messages);
- ``loading``: reading the file and the environment, every problem at once (``messages``:
  pydantic's errors as one line each);
- ``rules``: from settings to the engine's rules (segments, calendar, policy, lists);
- ``check``: ``hallmonitor config check``.
"""
