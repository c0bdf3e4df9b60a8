"""Is a URL under a machine-readable reservation on record? One in-memory index, by host.

Which files speak for a URL: those loaded for its exact host (the normalised host of the
opt-out registry, `marketplace.optout.urls`), as robots.txt and `/.well-known/` files speak
only for their own origin; `www.example.com` has its own files, not `example.com`'s.

Precedence when a host has several files: TDMRep, then ai.txt, then robots.txt; the first
that reserves the URL gives the hit. A TDMRep rule with `tdm-reservation: 0` ends TDMRep's
answer ("not reserved by TDMRep") but does not cancel a reservation in the site's ai.txt or
robots.txt: each file is the site's own statement, and a dataset check errs on the side of
the reservation.

- TDMRep: the first rule (file order) whose location matches the path decides.
- ai.txt: every group applies (the file speaks to AI agents only); in each, the longest
  matching rule decides, Allow winning a tie (RFC 9309 2.2.2); a file-type rule (`*.jpg`)
  matches by the path's extension, case-insensitively, and counts its own length.
- robots.txt: only groups naming an AI crawler (`marketplace.reservations.crawlers`), merged
  per crawler as RFC 9309 2.2.1 asks; the `*` group is for every crawler and not read as a
  reservation against AI. Longest match as above.

The index is plain tuples, dicts and compiled regexes: it pickles (to broadcast to Spark).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.optout.urls import normalize_url
from marketplace.reservations.crawlers import is_ai_crawler
from marketplace.reservations.parsers import (
    ParsedRule,
    ReservationKind,
    canonical,
    file_type,
    path_extension,
    pattern_regex,
)


@dataclass(frozen=True)
class ReservationHit:
    kind: str  # "tdmrep" | "ai.txt" | "robots"
    domain: str
    rule: str  # the pattern / line that matched
    policy_url: str | None  # TDMRep tdm-policy, kept as evidence


# A compiled rule: (regex or None, extension or None, reserve, evidence text, policy URL).
_Rule = tuple[re.Pattern[str] | None, str | None, bool, str, str | None]
# A group: the rules of one user agent, most specific first (robots.txt / ai.txt).
_Group = tuple[_Rule, ...]
# Per host: (TDMRep rules in file order, ai.txt groups, robots.txt AI-crawler groups).
_Entry = tuple[tuple[_Rule, ...], tuple[_Group, ...], tuple[_Group, ...]]


class _Compiler:
    """Compiles rules for one index build, sharing equal regexes, rules and groups across
    hosts: thousands of sites publish the same generated robots.txt or ai.txt, and shared
    objects are built once and pickled once."""

    def __init__(self) -> None:
        self._regexes: dict[str, re.Pattern[str]] = {}
        self._rules: dict[tuple[object, ...], _Rule] = {}
        self._groups: dict[tuple[_Rule, ...], _Group] = {}

    def rule(self, rule: ParsedRule, *, file_types: bool) -> _Rule:
        extension = file_type(rule.pattern) if file_types else None
        regex = None
        if extension is None:
            regex = self._regexes.get(rule.pattern)
            if regex is None:
                regex = self._regexes[rule.pattern] = pattern_regex(rule.pattern)
        if rule.agent is None:
            text = rule.pattern
        else:
            verb = "Disallow" if rule.reserve else "Allow"
            text = f"{verb}: {rule.pattern} (User-agent: {rule.agent}, line {rule.line})"
        compiled: _Rule = (regex, extension, rule.reserve, text, rule.policy_url)
        return self._rules.setdefault((rule.pattern, *compiled[1:]), compiled)

    def group(self, rules: tuple[_Rule, ...]) -> _Group:
        return self._groups.setdefault(rules, rules)

    def groups(
        self, rules: Iterable[ParsedRule], *, ai_only: bool, file_types: bool
    ) -> tuple[_Group, ...]:
        by_agent: dict[str, list[ParsedRule]] = defaultdict(list)
        for rule in rules:
            if rule.agent is not None and (not ai_only or is_ai_crawler(rule.agent)):
                by_agent[rule.agent.lower()].append(rule)
        groups: dict[tuple[tuple[str, bool], ...], _Group] = {}
        for agent_rules in by_agent.values():
            # RFC 9309 2.2.2: the most octets wins; Allow wins a tie.
            ordered = sorted(agent_rules, key=lambda r: (-len(canonical(r.pattern)), r.reserve))
            signature = tuple((r.pattern, r.reserve) for r in ordered)
            if signature not in groups:  # thirty crawlers sharing one "Disallow: /" group: once
                groups[signature] = self.group(
                    tuple(self.rule(r, file_types=file_types) for r in ordered)
                )
        return tuple(groups.values())

    def entry(self, files: dict[ReservationKind, list[ParsedRule]]) -> _Entry:
        tdmrep = tuple(
            self.rule(r, file_types=False)
            for r in sorted(files.get(ReservationKind.TDMREP, []), key=lambda r: r.position)
        )
        ai_txt = self.groups(files.get(ReservationKind.AI_TXT, []), ai_only=False, file_types=True)
        robots = self.groups(files.get(ReservationKind.ROBOTS, []), ai_only=True, file_types=False)
        return (self.group(tdmrep), ai_txt, robots)


def _decides(group: _Group, path: str, extension: str | None) -> _Rule | None:
    for rule in group:
        regex, rule_extension = rule[0], rule[1]
        if regex.match(path) if regex is not None else rule_extension == extension:
            return rule
    return None


class ReservationIndex:
    """Every current reservation file, compiled, keyed by host. Build once, match many."""

    __slots__ = ("_entries",)

    def __init__(self, entries: dict[str, _Entry] | None = None) -> None:
        self._entries: dict[str, _Entry] = entries or {}

    def __getstate__(self) -> dict[str, _Entry]:
        return self._entries

    def __setstate__(self, state: dict[str, _Entry]) -> None:
        self._entries = state

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def from_rules(
        cls, files: Iterable[tuple[str, ReservationKind, list[ParsedRule]]]
    ) -> ReservationIndex:
        """From (host, kind, parsed rules) triples, one per current file."""
        by_host: dict[str, dict[ReservationKind, list[ParsedRule]]] = defaultdict(dict)
        for host, kind, rules in files:
            by_host[host][kind] = rules
        compiler = _Compiler()
        return cls({host: compiler.entry(kinds) for host, kinds in by_host.items()})

    @classmethod
    def from_session(cls, session: Session) -> ReservationIndex:
        """The files on record now (the current one per host and kind)."""
        from marketplace.reservations.models import ReservationFile, ReservationRule

        rows = session.execute(
            select(
                ReservationFile.id,
                ReservationFile.domain,
                ReservationFile.kind,
                ReservationRule.position,
                ReservationRule.line,
                ReservationRule.agent,
                ReservationRule.reserve,
                ReservationRule.pattern,
                ReservationRule.policy_url,
            )
            .join(ReservationRule, ReservationRule.file_id == ReservationFile.id)
            .where(ReservationFile.replaced_at.is_(None))
            .order_by(ReservationFile.id, ReservationRule.position)
            .execution_options(yield_per=10_000)
        )
        files: dict[int, tuple[str, ReservationKind, list[ParsedRule]]] = {}
        for file_id, domain, kind, position, line, agent, reserve, pattern, policy in rows:
            entry = files.get(file_id)
            if entry is None:
                entry = files[file_id] = (domain, ReservationKind(kind), [])
            entry[2].append(ParsedRule(position, line, agent, reserve, pattern, policy))
        return cls.from_rules(files.values())

    def match(self, url: str) -> ReservationHit | None:
        """The reservation `url` falls under, or None. Raises BadUrl (a ValueError) for a URL
        the opt-out registry would refuse too."""
        normalized = normalize_url(url)
        return self.match_normalized(normalized.host, normalized.key)

    def match_normalized(self, host: str, key: str) -> ReservationHit | None:
        """`match` for a URL already normalised by `marketplace.optout.urls.normalize_url`."""
        entry = self._entries.get(host)
        if entry is None:
            return None
        tdmrep, ai_txt, robots = entry
        path = canonical(key[len(host) :])
        for regex, _, reserve, text, policy in tdmrep:
            if regex is not None and regex.match(path):
                if reserve:
                    return ReservationHit(ReservationKind.TDMREP.value, host, text, policy)
                break
        if ai_txt:
            extension = path_extension(path)
            for group in ai_txt:
                rule = _decides(group, path, extension)
                if rule is not None and rule[2]:
                    return ReservationHit(ReservationKind.AI_TXT.value, host, rule[3], None)
        for group in robots:
            rule = _decides(group, path, None)
            if rule is not None and rule[2]:
                return ReservationHit(ReservationKind.ROBOTS.value, host, rule[3], None)
        return None
