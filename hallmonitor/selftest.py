"""`hallmonitor selftest`: look up a platform name and confirm the sensor sees and classifies it.

This is the end-to-end proof an IT technician (and, through the recorded check, the governors)
can rely on: the query leaves through a captured interface, the daemon's capture and pipeline
read it, and the platform lists recognise the name. No answer is needed (the lookup may time
out): seeing the query is what counts. A failure names the step that failed, because the fixes
differ: not seen means the sensor is not on the query's path; seen but not classified means the
lists.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import dns.exception
import dns.resolver

from monitor.checks import CheckResult, current_user, failed, passed, record_run, render
from monitor.classify import Classifier
from monitor.config.rules import build_rules
from monitor.config.settings import Settings
from monitor.errors import BlocklistError
from monitor.extract.dns import DNS_PORTS
from monitor.hostnames import normalise_hostname
from monitor.pipeline import Pipeline
from monitor.runner import default_interfaces
from monitor.sources.live import CaptureSetupError, LiveSource, build_bpf_filter
from monitor.values import Flag, Observation, Proto

SEEN_GRACE_S = 1.0
"""How long after the lookup the capture may take to hand over the query (ring blocks retire
every 50 ms)."""
NAME = "selftest"


@dataclass(frozen=True, slots=True)
class Lookup:
    """The DNS lookup made: to which server, and what came of it (any outcome will do)."""

    server: str
    outcome: str


def system_resolver() -> str:
    """The first name server of ``/etc/resolv.conf`` (what the system resolver asks)."""
    try:
        servers = dns.resolver.Resolver(configure=True).nameservers
    except dns.resolver.NoResolverConfiguration:
        return ""
    return str(servers[0]) if servers else ""


def look_up(name: str, server: str, timeout_s: float) -> Lookup:
    """Ask ``server`` for the A record of ``name``; never raises for a DNS failure."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [server]
    resolver.lifetime = timeout_s
    resolver.timeout = timeout_s
    try:
        answer = resolver.resolve(name, "A", search=False)
    except dns.exception.Timeout:
        return Lookup(server, f"no answer within {timeout_s:g} s")
    except dns.resolver.NXDOMAIN:
        return Lookup(server, "answered: no such name")
    except dns.resolver.NoAnswer:
        return Lookup(server, "answered: no A record")
    except (dns.exception.DNSException, OSError) as e:  # refused, unreachable, SERVFAIL
        return Lookup(server, f"failed: {e}")
    addresses = ", ".join(sorted(str(record) for record in answer))
    return Lookup(server, f"answered {addresses}")


def is_test_query(observation: Observation, name: str) -> bool:
    """A DNS query (not an answer) for the test name."""
    return (
        observation.proto is Proto.DNS
        and Flag.RESPONSE not in observation.flags
        and observation.name == name
    )


class QueryWatch:
    """Captures on the interfaces, through the daemon's pipeline, until the test query is seen."""

    def __init__(self, source: LiveSource, pipeline: Pipeline, name: str) -> None:
        self.source = source
        self.pipeline = pipeline
        self.name = name
        self.stop = threading.Event()
        self.found = threading.Event()
        self.query: Observation | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="selftest-capture", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def wait(self, timeout_s: float) -> Observation | None:
        self.found.wait(timeout_s)
        self.stop.set()
        self.thread.join(timeout=5)
        return self.query

    def _run(self) -> None:
        try:
            for frame in self.source.frames(self.stop, poll_s=0.05):
                for observation in self.pipeline.process(frame):
                    if is_test_query(observation, self.name):
                        self.query = observation
                        self.found.set()
                        self.stop.set()
                        return
        except Exception as e:  # reported as the result, not lost in a thread
            self.error = e
            self.stop.set()


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def judge(
    name: str,
    expected_platform: str,
    interfaces: Sequence[str],
    lookup: Lookup,
    query: Observation | None,
    classifier: Classifier,
) -> CheckResult:
    """Which step failed (not seen, not classified, wrong platform), or what passed."""
    where = ", ".join(interfaces)
    asked = f"the lookup of {name} at {lookup.server} ({lookup.outcome})"
    if query is None:
        fix = (
            "the sensor is not on the query's path: capture on the interface the clients' "
            "lookups cross (capture.interfaces), or set selftest.resolver to a DNS server "
            "beyond the sensor"
        )
        if _is_loopback(lookup.server):
            fix = (
                f"{lookup.server} is a resolver on this host, so the query never crosses an "
                "interface: set selftest.resolver to the school's DNS server"
            )
        return failed(NAME, f"not seen: {asked} did not cross {where}", fix)
    seen = f"query seen on {where} from {query.client_ip} to {query.server_ip}"
    match = classifier.classify(query)
    if match is None:
        return failed(
            NAME,
            f"seen but not classified: {seen}, but {name} is in no platform list (or is "
            "allowlisted)",
            "check the lists (`hallmonitor lists check`; lists.directories, lists.allow), or "
            "set selftest.name to a name a platform list holds",
        )
    if expected_platform and match.platform != expected_platform:
        return failed(
            NAME,
            f"seen but classified as {match.platform}, not {expected_platform}: {seen}",
            f"set selftest.platform to {match.platform!r}, or check which list holds {match.rule}",
        )
    return passed(
        NAME,
        f"{seen}, classified as {match.platform} ({match.category.value}, by {match.rule}); "
        f"{lookup.outcome}",
    )


def perform_selftest(settings: Settings) -> CheckResult:
    """Capture, look up, and judge; the result says which step failed."""
    test = settings.selftest
    name = normalise_hostname(test.name)
    names = list(settings.capture.interfaces) or default_interfaces()
    if not names:
        return failed(
            NAME,
            "no interface to capture on: capture.interfaces is empty and no interface is up",
            "set capture.interfaces to the LAN-side interface(s)",
        )
    try:
        classifier, _ = build_rules(settings)
    except BlocklistError as e:
        return failed(NAME, f"the lists do not load: {e}", "run `hallmonitor lists check`")
    server = test.resolver or system_resolver()
    if not server:
        return failed(
            NAME,
            "no DNS server to ask: /etc/resolv.conf names none",
            "set selftest.resolver to the school's DNS server",
        )
    ports = DNS_PORTS | set(settings.capture.dns_ports)
    try:
        source = LiveSource(names, bpf=build_bpf_filter(sorted(ports)), buffer_bytes=4 << 20)
    except CaptureSetupError as e:
        return failed(NAME, f"cannot capture: {e}", "run `hallmonitor doctor` and fix what it says")
    with source:
        watch = QueryWatch(source, Pipeline(dns_ports=ports), name)
        watch.start()  # the socket already filters and keeps what arrives
        lookup = look_up(name, server, test.timeout_s)
        query = watch.wait(SEEN_GRACE_S)
    if watch.error is not None:
        return failed(NAME, f"capture failed: {watch.error}", "run `hallmonitor doctor`")
    return judge(name, test.platform, names, lookup, query, classifier)


def run_selftest(settings: Settings, *, by: str | None = None) -> tuple[int, list[str]]:
    """``hallmonitor selftest``: exit status and the lines to print; the run is recorded."""
    result = perform_selftest(settings)
    lines = render(result)
    lines.append(
        record_run(
            settings.database.url.get_secret_value(),
            kind=NAME,
            ok=result.ok,
            detail=result.detail,
            username=current_user(by),
            site=settings.site.name,
        )
    )
    return (0 if result.ok else 1), lines
