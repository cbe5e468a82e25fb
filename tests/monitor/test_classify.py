"""The classifier: names to platforms, by suffix, CNAME chain and remembered address."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.classify import Classifier, SuffixIndex
from monitor.lists.directories import load_lists
from monitor.lists.files import ListSet, parse_platform_list
from monitor.values import Attribution, Category, Flag, Match, Observation, Presence, Proto

EXPECTED = Path(__file__).resolve().parents[1] / "data" / "pcaps" / "expected"

FACEBOOK = """\
# platform: facebook
# name: Facebook
# category: social
facebook.com primary
graph.facebook.com embedded
facebook.net embedded
fbcdn.net embedded
"""
INSTAGRAM = """\
# platform: instagram
# name: Instagram
# category: social
instagram.com primary
cdninstagram.com primary
"""
TUMBLR = """\
# platform: tumblr
# name: Tumblr
# category: social
tumblr.com primary
media.tumblr.com embedded
"""
IDN = """\
# platform: idn
# name: An IDN platform
# category: messaging
bücher.example primary
"""


def make_lists(*, allow: frozenset[str] = frozenset()) -> ListSet:
    entries = []
    platforms = {}
    for text in (FACEBOOK, INSTAGRAM, TUMBLR, IDN):
        found, info = parse_platform_list(text, "test.txt")
        entries.extend(found)
        platforms[found[0].platform] = info
    return ListSet(tuple(entries), allow, platforms)


@pytest.fixture
def classifier() -> Classifier:
    return Classifier(make_lists(), address_ttl_s=60.0, max_addresses=3)


def dns_answer(
    name: str, *, cnames: tuple[str, ...] = (), addresses: tuple[str, ...] = (), ts: float = 0.0
) -> Observation:
    return Observation(
        ts=ts,
        proto=Proto.DNS,
        name=name,
        client_ip="10.0.0.5",
        client_mac=None,
        server_ip="10.0.0.1",
        server_port=53,
        flags=frozenset({Flag.RESPONSE}),
        cnames=cnames,
        addresses=addresses,
    )


def hello(
    name: str, server_ip: str, *, ts: float = 0.0, ech: bool = False, proto: Proto = Proto.TLS
) -> Observation:
    return Observation(
        ts=ts,
        proto=proto,
        name=name,
        client_ip="10.0.0.5",
        client_mac=None,
        server_ip=server_ip,
        server_port=443,
        flags=frozenset({Flag.ECH}) if ech else frozenset(),
    )


def verdict(match: Match | None) -> tuple[str, str, str, str] | None:
    if match is None:
        return None
    return (match.platform, match.presence.value, match.rule, match.via.value)


# --- names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("facebook.com", ("facebook", "primary", "facebook.com", "name")),
        ("www.facebook.com", ("facebook", "primary", "facebook.com", "name")),
        ("a.b.c.facebook.com", ("facebook", "primary", "facebook.com", "name")),
        ("notfacebook.com", None),  # label boundary: not a suffix on a dot
        ("facebook.com.evil.example", None),  # the suffix must be at the end
        ("facebook", None),
        ("com", None),
        ("", None),
        (".", None),
        ("xfbcdn.net", None),
        ("connect.facebook.net", ("facebook", "embedded", "facebook.net", "name")),
    ],
)
def test_match_name_on_label_boundaries(classifier, name, expected) -> None:
    assert verdict(classifier.match_name(name)) == expected


@pytest.mark.parametrize(
    "name",
    ["WWW.FaceBook.COM", "www.facebook.com.", "WWW.FACEBOOK.COM.", "www.facebook.com"],
)
def test_match_name_ignores_case_and_a_trailing_dot(classifier, name) -> None:
    assert verdict(classifier.match_name(name)) == ("facebook", "primary", "facebook.com", "name")


@pytest.mark.parametrize(
    "name", ["shop.bücher.example", "SHOP.BÜCHER.EXAMPLE.", "shop.xn--bcher-kva.example"]
)
def test_match_name_normalises_idna(classifier, name) -> None:
    assert verdict(classifier.match_name(name)) == (
        "idn",
        "primary",
        "xn--bcher-kva.example",
        "name",
    )


@pytest.mark.parametrize(
    ("name", "rule", "presence"),
    [
        ("graph.facebook.com", "graph.facebook.com", "embedded"),
        ("x.graph.facebook.com", "graph.facebook.com", "embedded"),
        ("graphx.facebook.com", "facebook.com", "primary"),
        ("64.media.tumblr.com", "media.tumblr.com", "embedded"),
        ("catasters.tumblr.com", "tumblr.com", "primary"),
    ],
)
def test_match_name_longest_suffix_wins(classifier, name, rule, presence) -> None:
    match = classifier.match_name(name)
    assert match is not None
    assert (match.rule, match.presence.value) == (rule, presence)


@pytest.mark.parametrize(
    ("allow", "name", "expected"),
    [
        ({"help.instagram.com"}, "help.instagram.com", None),
        ({"help.instagram.com"}, "x.help.instagram.com", None),
        ({"help.instagram.com"}, "www.instagram.com", "instagram"),
        ({"instagram.com"}, "i.instagram.com", None),  # a shorter allowed suffix still wins
        ({"media.tumblr.com"}, "64.media.tumblr.com", None),
        ({"gov.uk"}, "www.facebook.com", "facebook"),
    ],
)
def test_match_name_allowlist_beats_lists(allow, name, expected) -> None:
    classifier = Classifier(make_lists(allow=frozenset(allow)))
    match = classifier.match_name(name)
    assert (match.platform if match else None) == expected


def test_match_name_returns_the_list_category() -> None:
    match = Classifier(make_lists()).match_name("chat.bücher.example")
    assert match is not None
    assert match.category is Category.MESSAGING


@given(st.text(max_size=300))
def test_match_name_never_raises_on_arbitrary_text(text: str) -> None:
    match = Classifier(make_lists()).match_name(text)
    assert match is None or isinstance(match, Match)


# --- DNS answers: CNAME chains and addresses ---------------------------------------------


@pytest.mark.parametrize(
    ("name", "cnames", "expected"),
    [
        # a blog on its own domain points into Tumblr
        ("blog.example.org", ("domains.tumblr.com",), ("tumblr", "primary", "tumblr.com", "cname")),
        # the first platform name in the chain decides
        (
            "pics.example.org",
            ("edge.example.net", "scontent.cdninstagram.com", "x.fbcdn.net"),
            ("instagram", "primary", "cdninstagram.com", "cname"),
        ),
        # a listed question name wins over its chain
        (
            "www.facebook.com",
            ("star-mini.c10r.fbcdn.net",),
            ("facebook", "primary", "facebook.com", "name"),
        ),
        ("www.example.org", ("www.example.org.cdn.example.net",), None),
        ("www.example.org", (), None),
    ],
)
def test_classify_follows_cname_chains_of_dns_answers(classifier, name, cnames, expected) -> None:
    assert verdict(classifier.classify(dns_answer(name, cnames=cnames))) == expected


def test_classify_ignores_cnames_of_dns_questions(classifier) -> None:
    question = Observation(
        0.0,
        Proto.DNS,
        "blog.example.org",
        "10.0.0.5",
        None,
        "10.0.0.1",
        53,
        cnames=("domains.tumblr.com",),
    )
    assert classifier.classify(question) is None


def test_classify_allowlisted_question_blocks_its_cname_chain() -> None:
    classifier = Classifier(make_lists(allow=frozenset({"ourschool.example"})))
    answer = dns_answer(
        "blog.ourschool.example", cnames=("domains.tumblr.com",), addresses=("192.0.2.9",)
    )
    assert classifier.classify(answer) is None
    assert classifier.classify(hello("", "192.0.2.9", ts=1.0)) is None


@pytest.mark.parametrize(
    ("later", "expected"),
    [
        # no server name at all
        (hello("", "192.0.2.1", ts=10.0), ("instagram", "primary", "instagram.com", "address")),
        # a server name that matches nothing (an IP literal, a front)
        (
            hello("192.0.2.1", "192.0.2.1", ts=10.0),
            ("instagram", "primary", "instagram.com", "address"),
        ),
        (
            hello("", "192.0.2.1", ts=10.0, proto=Proto.QUIC),
            ("instagram", "primary", "instagram.com", "address"),
        ),
        # ECH: the outer name is the provider's
        (
            hello("cloudflare-ech.com", "192.0.2.1", ts=10.0, ech=True),
            ("instagram", "primary", "instagram.com", "address"),
        ),
        # ECH (Chrome sends GREASE ECH always): a matching name still wins
        (
            hello("www.facebook.com", "192.0.2.1", ts=10.0, ech=True),
            ("facebook", "primary", "facebook.com", "name"),
        ),
        # the name wins over the address
        (
            hello("www.facebook.com", "192.0.2.1", ts=10.0),
            ("facebook", "primary", "facebook.com", "name"),
        ),
        # another address
        (hello("", "192.0.2.99", ts=10.0), None),
        # expired: ttl is 60 s
        (hello("", "192.0.2.1", ts=60.5), None),
        # at the edge of the ttl, still remembered
        (hello("", "192.0.2.1", ts=60.0), ("instagram", "primary", "instagram.com", "address")),
    ],
)
def test_classify_attributes_connections_by_remembered_address(classifier, later, expected) -> None:
    classifier.classify(
        dns_answer("i.instagram.com", addresses=("192.0.2.1", "2001:db8::1"), ts=0.0)
    )
    assert verdict(classifier.classify(later)) == expected


def test_classify_remembers_addresses_of_cname_matches(classifier) -> None:
    classifier.classify(
        dns_answer("blog.example.org", cnames=("domains.tumblr.com",), addresses=("192.0.2.7",))
    )
    assert verdict(classifier.classify(hello("", "192.0.2.7", ts=1.0))) == (
        "tumblr",
        "primary",
        "tumblr.com",
        "address",
    )


def test_classify_does_not_remember_addresses_of_unlisted_names(classifier) -> None:
    classifier.classify(dns_answer("www.example.org", addresses=("192.0.2.8",)))
    assert classifier.classify(hello("", "192.0.2.8", ts=1.0)) is None
    assert classifier.remembered_addresses == 0


def test_classify_an_answer_refreshes_the_expiry(classifier) -> None:
    classifier.classify(dns_answer("i.instagram.com", addresses=("192.0.2.1",), ts=0.0))
    classifier.classify(dns_answer("i.instagram.com", addresses=("192.0.2.1",), ts=50.0))
    assert classifier.classify(hello("", "192.0.2.1", ts=100.0)) is not None


def test_classify_keeps_embedded_for_an_address_shared_with_a_widget_host(classifier) -> None:
    classifier.classify(dns_answer("connect.facebook.net", addresses=("192.0.2.3",), ts=0.0))
    classifier.classify(dns_answer("www.facebook.com", addresses=("192.0.2.3",), ts=1.0))
    match = classifier.classify(hello("", "192.0.2.3", ts=2.0))
    assert match is not None
    assert (match.platform, match.presence, match.via) == (
        "facebook",
        Presence.EMBEDDED,
        Attribution.ADDRESS,
    )


def test_classify_address_memory_is_bounded_oldest_first(classifier) -> None:
    for number in range(5):  # max_addresses is 3
        classifier.classify(
            dns_answer("i.instagram.com", addresses=(f"192.0.2.{number}",), ts=float(number))
        )
    assert classifier.remembered_addresses == 3
    assert classifier.classify(hello("", "192.0.2.0", ts=5.0)) is None
    assert classifier.classify(hello("", "192.0.2.1", ts=5.0)) is None
    assert classifier.classify(hello("", "192.0.2.4", ts=5.0)) is not None


@pytest.mark.parametrize(
    "observation",
    [
        Observation(0.0, Proto.DHCP, "facebook.com", "10.0.0.5", None, "255.255.255.255", 67),
        Observation(
            0.0,
            Proto.DNS,
            "facebook.com",
            "10.0.0.5",
            None,
            "224.0.0.251",
            5353,
            flags=frozenset({Flag.LOCAL}),
        ),
    ],
)
def test_classify_ignores_dhcp_host_names_and_local_names(classifier, observation) -> None:
    assert classifier.classify(observation) is None


def test_classify_dns_addresses_are_not_used_for_dns_observations(classifier) -> None:
    classifier.classify(dns_answer("i.instagram.com", addresses=("192.0.2.1",)))
    question = Observation(1.0, Proto.DNS, "www.example.org", "10.0.0.5", None, "192.0.2.1", 53)
    assert classifier.classify(question) is None


# --- the shipped lists against every name in the shared captures ----------------------------

SOCIAL_NAMES: dict[str, tuple[str, str]] = {
    # name: (platform, presence). Every other name in the captures must match nothing.
    "facebook.com": ("facebook", "primary"),  # ndpi-facebook
    "www.facebook.com": ("facebook", "primary"),  # ndpi-facebook; ndpi-pinterest (login, pixel)
    "connect.facebook.net": ("facebook", "embedded"),  # ndpi-pinterest: the SDK on a page
    "graph.facebook.com": ("facebook", "embedded"),  # ndpi-kakaotalk-sll, ndpi-viber: SDK in apps
    "api.facebook.com": ("facebook", "embedded"),  # ndpi-kakaotalk-sll
    "developers.facebook.com": ("facebook", "embedded"),  # ndpi-kakaotalk-sll
    "video.fmct2-3.fna.fbcdn.net": ("facebook", "embedded"),  # ndpi-tls-2-reasms-b
    "instagram.faae1-1.fna.fbcdn.net": ("facebook", "embedded"),  # ndpi-dns-ambiguous-names
    "i.instagram.com": ("instagram", "primary"),  # ndpi-tls-2-reasms
    "photos-b.ak.instagram.com": ("instagram", "primary"),  # ndpi-instagram
    "telegraph-ash.instagram.com": ("instagram", "primary"),
    "scontent-mxp1-1.cdninstagram.com": ("instagram", "primary"),
    "igcdn-photos-a-a.akamaihd.net": ("instagram", "primary"),
    "igcdn-photos-g-a.akamaihd.net": ("instagram", "primary"),
    "igcdn-photos-h-a.akamaihd.net": ("instagram", "primary"),
    "accounts.pinterest.com": ("pinterest", "primary"),  # ndpi-pinterest
    "www.pinterest.fr": ("pinterest", "primary"),
    "assets.pinterest.com": ("pinterest", "embedded"),
    "s.pinimg.com": ("pinterest", "embedded"),
    "feelinsonice-hrd.appspot.com": ("snapchat", "primary"),  # ndpi-snapchat
    "app-analytics-v2.snapchat.com": ("snapchat", "primary"),  # ndpi-quic-crypto-aes-auth-size
    "gcp.api.snapchat.com": ("snapchat", "primary"),
    "tr6.snapchat.com": ("snapchat", "embedded"),  # zeek-quic-39264-rand: the Snap Pixel
    "catasters.tumblr.com": ("tumblr", "primary"),  # ndpi-tumblr
    "64.media.tumblr.com": ("tumblr", "embedded"),
    "sun9-10.userapi.com": ("vk", "primary"),  # ndpi-vk
    "sun9-80.userapi.com": ("vk", "primary"),
    "sun9-87.userapi.com": ("vk", "primary"),
    "sun9-88.userapi.com": ("vk", "primary"),
    "discord.com": ("discord", "primary"),  # ndpi-discord
    "e12.whatsapp.net": ("whatsapp", "primary"),  # ndpi-whatsapp-login-chat
    "www.youtube.com": ("youtube", "primary"),  # ndpi-tls-trojan-sll, zeek-dns-var-services
    "wide-youtube.l.google.com": ("youtube", "primary"),  # ndpi-dns-ambiguous-names
    # ndpi-viber: Viber is on no list; only its Facebook SDK call (graph.facebook.com) matches.
}


def capture_names() -> list[tuple[str, str]]:
    names: set[tuple[str, str]] = set()
    for path in sorted(EXPECTED.glob("*.json")):
        expected = json.loads(path.read_text(encoding="utf-8"))
        for key in ("dns_queries", "sni", "quic_sni"):
            names.update((path.stem, name) for name in expected.get(key) or ())
    return sorted(names)


def test_capture_names_are_available() -> None:
    assert len(capture_names()) > 500


def test_shipped_lists_match_exactly_the_social_names_of_the_captures() -> None:
    classifier = Classifier(load_lists())
    wrong = {}
    for capture, name in capture_names():
        match = classifier.match_name(name)
        got = (match.platform, match.presence.value) if match else None
        if got != SOCIAL_NAMES.get(name):
            wrong[f"{capture}: {name}"] = got
    assert wrong == {}


def test_no_non_social_capture_name_yields_primary() -> None:
    classifier = Classifier(load_lists())
    primary = [
        name
        for _, name in capture_names()
        if name not in SOCIAL_NAMES
        and (match := classifier.match_name(name)) is not None
        and match.presence is Presence.PRIMARY
    ]
    assert primary == []


# --- the index --------------------------------------------------------------------------------


def test_suffix_index_grows_and_retags() -> None:
    index = SuffixIndex([])
    for number in range(1000):
        index.add(f"d{number}.example", number % 7)
    index.add("d5.example", 6)
    assert len(index) == 1000
    assert index.longest("www.d5.example") == ("d5.example", 6)
    assert index.longest("www.d999.example") == ("d999.example", 999 % 7)
    assert index.longest("d1000.example") is None


labels = st.text(alphabet="abc", min_size=1, max_size=3)
names = st.lists(labels, min_size=2, max_size=5).map(".".join)


@given(st.dictionaries(names, st.integers(0, 9), max_size=30), st.lists(names, max_size=20))
def test_suffix_index_agrees_with_a_plain_walk(entries: dict[str, int], queries: list[str]) -> None:
    index = SuffixIndex(entries.items())
    for query in [*queries, *entries]:
        labels_ = query.split(".")
        expected = None
        for start in range(len(labels_) - 1):
            suffix = ".".join(labels_[start:])
            if suffix in entries:
                expected = (suffix, entries[suffix])
                break
        assert index.longest(query) == expected
