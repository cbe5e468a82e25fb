"""``hallmonitor up --demo``: bundled sample traffic, replayed in a loop into the school day.

``sample.pcap`` is written by the project's own generator (``tests/bench/make_mix.py``: DNS, TLS
and QUIC to social and ordinary sites from staff laptops in 10.20.0.0/16 and 2001:db8:20::/48,
private and documentation ranges); ``tests/monitor/demo/test_source.py`` checks that
regenerating it gives the same bytes.
"""
