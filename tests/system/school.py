"""The school the system tests configure: a staff segment, and school hours all day, every day
(so a test never depends on when it runs), capturing on ``lan0``."""

STAFF_DEVICE = "10.20.0.50"
"""A device in the staff segment, where social platforms are flagged."""
CONFIG = """\
[site]
name = "system-test"

[capture]
interfaces = ["lan0"]

[[segments]]
name = "staff"
cidrs = ["10.20.0.0/16"]
role = "staff"

# School all day, every day: the test does not depend on when it runs.
[calendar.hours]
monday = ["00:00-24:00"]
tuesday = ["00:00-24:00"]
wednesday = ["00:00-24:00"]
thursday = ["00:00-24:00"]
friday = ["00:00-24:00"]
saturday = ["00:00-24:00"]
sunday = ["00:00-24:00"]

[incidents]
idle_gap_minutes = 60
"""
