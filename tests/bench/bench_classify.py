"""Classifier benchmark: index memory and lookups/s for a million listed domains, and coverage.

Run (from the repository root)::

    .venv/bin/python -m tests.bench.bench_classify [--domains 1000000] [--lookups 200000]
        [--repeats 5] [--baseline] [--public-lists /work/shared/blocklists]

What it measures:

1. Memory: a ``ListSet`` of ``--domains`` generated entries (deterministic, seeded) is built
   first; then the ``Classifier`` is built from it, and the process RSS before and after is
   compared (``/proc/self/statm``). That delta is the index (target: at most 100 MB for 1M).
   The ``ListSet`` itself is reported too: the engine should drop it once the classifier exists.
2. Speed: ``Classifier.match_name`` over ``--lookups`` normalised names, half of them below a
   listed domain (``www.<listed>``) and half unlisted three-label names, ``--repeats`` times;
   the median lookups/s is printed (target: at least 400k/s).
3. ``--baseline``: the same in a child process for a plain Python ``set`` of the suffix strings
   with the same label walk, the structure the targets were set against.
4. Coverage: for each public list in ``--public-lists`` (skipped when absent), the share of its
   domains that the shipped lists match, by platform and presence. Sinfonietta's hosts file is
   split by its ``# Platform`` section headings.

Timings on the shared development machine are noisy; the exit status never depends on them.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import string
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from monitor.classify import Classifier
from monitor.lists.directories import load_lists
from monitor.lists.files import ListEntry, ListSet, PlatformInfo
from monitor.lists.public import PublicFormat, read_public_list
from monitor.values import Category, Presence

TARGET_MB = 100.0
TARGET_LOOKUPS = 400_000.0
TLDS = ("com", "net", "org", "co.uk", "de", "fr", "io", "com.au")
PLATFORMS = 20
PUBLIC_LISTS: dict[str, PublicFormat] = {
    "blocklistproject-facebook-nl.txt": "plain",
    "blocklistproject-tiktok-nl.txt": "plain",
    "blocklistproject-twitter-nl.txt": "plain",
    "blocklistproject-whatsapp-nl.txt": "plain",
    "blocklistproject-youtube-nl.txt": "plain",
    "sinfonietta-social-hosts.txt": "hosts",
    "ut1-social_networks-domains.txt": "ut1",
}


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * 4096 / 1e6


def generated_domains(count: int, seed: int) -> Iterator[str]:
    """Deterministic domain names: 60% two labels under a TLD, 40% three."""
    rng = random.Random(seed)
    alphabet = string.ascii_lowercase + string.digits

    def label() -> str:
        return "".join(rng.choices(alphabet, k=rng.randint(4, 12)))

    for _ in range(count):
        tld = rng.choice(TLDS)
        yield f"{label()}.{tld}" if rng.random() < 0.6 else f"{label()}.{label()}.{tld}"


def generated_lists(count: int) -> ListSet:
    platforms = {f"p{n}": PlatformInfo(f"Platform {n}", Category.SOCIAL) for n in range(PLATFORMS)}
    presences = (Presence.PRIMARY, Presence.EMBEDDED)
    entries = tuple(
        ListEntry(domain, f"p{n % PLATFORMS}", Category.SOCIAL, presences[n % 2], "generated")
        for n, domain in enumerate(generated_domains(count, seed=1))
    )
    return ListSet(entries, frozenset(), platforms)


def lookup_names(count: int, listed: int) -> list[str]:
    """Half below a listed domain, half unlisted (another seed), interleaved."""
    rng = random.Random(2)
    hits = [
        f"www.{name}" for name in generated_domains(listed, seed=1) if rng.random() < count / listed
    ]
    misses = [f"www.{name}" for name in generated_domains(count // 2, seed=3)]
    names = [name for pair in zip(hits[: count // 2], misses, strict=False) for name in pair]
    return names


def lookups_per_second(
    match: Callable[[str], object], names: list[str], repeats: int
) -> tuple[float, int]:
    rates = []
    found = 0
    for _ in range(repeats):
        start = time.perf_counter()
        found = sum(1 for name in names if match(name) is not None)
        rates.append(len(names) / (time.perf_counter() - start))
    return statistics.median(rates), found


def bench_classifier(domains: int, lookups: int, repeats: int) -> None:
    gc.collect()
    before_lists = rss_mb()
    lists = generated_lists(domains)
    gc.collect()
    before = rss_mb()
    start = time.perf_counter()
    classifier = Classifier(lists)
    build_s = time.perf_counter() - start
    gc.collect()
    index_mb = rss_mb() - before
    names = lookup_names(lookups, domains)
    rate, found = lookups_per_second(classifier.match_name, names, repeats)
    miss_rate, _ = lookups_per_second(classifier.match_name, names[1::2], repeats)
    hit_rate, _ = lookups_per_second(classifier.match_name, names[0::2], repeats)
    rng = random.Random(4)
    repeated = rng.choices(
        names, weights=[1 / (rank + 1) for rank in range(len(names))], k=len(names)
    )
    repeated_rate, _ = lookups_per_second(classifier.match_name, repeated, repeats)
    say(f"classifier: {domains:,} domains, index built in {build_s:.1f} s")
    say(f"  index RSS delta   {index_mb:7.1f} MB   (target <= {TARGET_MB:.0f} MB)")
    say(f"  ListSet RSS       {before - before_lists:7.1f} MB   (input; drop it after building)")
    say(
        f"  match_name        {rate:9,.0f} lookups/s median of {repeats}   (target >= {TARGET_LOOKUPS:,.0f}/s)"
    )
    say(f"  matched           {found:,} of {len(names):,} names (expected half)")
    say(f"    misses only     {miss_rate:9,.0f} lookups/s")
    say(f"    hits only       {hit_rate:9,.0f} lookups/s (each a new Match: about 1 us)")
    say(f"    Zipf repeats    {repeated_rate:9,.0f} lookups/s (names repeat as in real traffic)")


def bench_set(domains: int, lookups: int, repeats: int) -> None:
    gc.collect()
    before = rss_mb()
    suffixes = set(generated_domains(domains, seed=1))
    gc.collect()
    set_mb = rss_mb() - before

    def match(name: str) -> str | None:
        start = 0
        while True:
            dot = name.find(".", start)
            if dot < 0:
                return None
            if name[start:] in suffixes:
                return name[start:]
            start = dot + 1

    rate, _ = lookups_per_second(match, lookup_names(lookups, domains), repeats)
    say(f"baseline set: RSS delta {set_mb:.1f} MB, {rate:,.0f} lookups/s median of {repeats}")


def sinfonietta_sections(text: str) -> dict[str, str]:
    """Sinfonietta's hosts file, split at its ``# Platform`` headings (after the header)."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("# ") and ":" not in line:
            current = line[2:].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()}


def coverage(public_lists: Path) -> None:
    if not public_lists.is_dir():
        say(f"coverage: {public_lists} not found, skipped")
        return
    classifier = Classifier(load_lists())
    say(f"coverage of public lists by the shipped lists ({public_lists}):")
    say(f"  {'list':48} {'domains':>8} {'matched':>8}  by platform/presence")
    for file_name, fmt in PUBLIC_LISTS.items():
        path = public_lists / file_name
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        parts = sinfonietta_sections(text) if fmt == "hosts" else {"": text}
        for section, part in parts.items():
            domains = read_public_list(part, fmt, source=file_name).domains
            if not domains:
                continue
            by: Counter[str] = Counter()
            for domain in domains:
                match = classifier.match_name(domain)
                if match is not None:
                    by[f"{match.platform}/{match.presence.value}"] += 1
            matched = sum(by.values())
            top = ", ".join(f"{key} {count}" for key, count in by.most_common(4))
            label = f"{file_name} {section}".strip()
            say(f"  {label:48} {len(domains):8,} {matched / len(domains):8.1%}  {top}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--domains", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--baseline", action="store_true", help="also measure a plain set (child process)"
    )
    parser.add_argument("--only", choices=("classifier", "set", "coverage"), help=argparse.SUPPRESS)
    parser.add_argument("--public-lists", type=Path, default=Path("/work/shared/blocklists"))
    args = parser.parse_args(argv)
    sizes = (args.domains, args.lookups, args.repeats)
    if args.only == "set":
        bench_set(*sizes)
        return 0
    if args.only in (None, "classifier"):
        bench_classifier(*sizes)
    if args.baseline and args.only is None:
        command = [sys.executable, "-m", "tests.bench.bench_classify", "--only", "set"]
        command += [
            "--domains",
            str(args.domains),
            "--lookups",
            str(args.lookups),
            "--repeats",
            str(args.repeats),
        ]
        subprocess.run(command, check=True)
    if args.only in (None, "coverage"):
        coverage(args.public_lists)
    return 0


if __name__ == "__main__":
    sys.exit(main())
