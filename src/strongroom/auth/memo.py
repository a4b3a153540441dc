"""Decisions already taken, reused for requests that ask the same question again (pure).

Evaluation is a function of the request, the policies, and the condition keys it reads;
most requests read few of them, and applications ask the same question over and over. The
memo remembers which keys an evaluation read and what they held. A later request with the
same policies (the same objects: the policy cache hands out one tuple per principal until a
change or its TTL replaces it), principal, action, resource and owner reuses the decision
when those keys hold equal values. A policy reading aws:CurrentTime thus never repeats a
decision for another instant.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from strongroom.auth.conditions import normalize_context
from strongroom.auth.policy import EvaluationResult, Policy, Request, evaluate_in


class _Reads(dict[str, Any]):
    """The normalized context, noting every key evaluation looks up."""

    __slots__ = ("seen",)

    def __init__(self, context: dict[str, Any]):
        super().__init__(context)
        self.seen: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        value = dict.get(self, key)
        self.seen[key] = value
        return default if value is None else value


class DecisionMemo:
    """Bounded: at most `max_entries` questions, `variants` answers each. A new question
    past the bound pushes out the oldest one, so a working set that fits stays whole (the
    server sizes it with the read cache: one question per secret read)."""

    def __init__(self, max_entries: int = 4096, variants: int = 4):
        self.max_entries, self.variants = max(1, max_entries), variants
        self._lock = threading.Lock()  # taken only to add a question, never on a reuse
        # question -> [(keys read and their values, result, the policy objects it holds alive)]
        self._entries: dict[tuple[Any, ...], list[tuple[tuple[tuple[str, Any], ...], EvaluationResult, Any]]] = {}

    def evaluate(self, request: Request, identity_policies: Sequence[Policy] = (),
                 resource_policy: Policy | None = None, resource_account: str | None = None,
                 context: Callable[[], Mapping[str, Any]] | None = None) -> EvaluationResult:
        """`context`, when given, builds the condition keys in place of `request.context`, and
        only if needed: a decision that read no key holds whatever they are."""
        # Objects are named by id(): each entry holds them alive, so no other object takes the id.
        rp = None if resource_policy is None else (resource_policy.name, id(resource_policy.document))
        question = (id(identity_policies), rp, request.principal_arn, request.principal_account,
                    request.principal_service, request.action, request.resource, resource_account)
        answers = self._entries.get(question)
        normalized = None
        if answers:
            for reads, result, _ in answers:
                if not reads:
                    return result
            normalized = normalize_context(context() if context is not None else request.context)
            for reads, result, _ in answers:
                if all(normalized.get(k) == v for k, v in reads):
                    return result
        if normalized is None:
            normalized = normalize_context(context() if context is not None else request.context)
        view = _Reads(normalized)
        result = evaluate_in(view, request, identity_policies, resource_policy, resource_account)
        held = (identity_policies, None if resource_policy is None else resource_policy.document)
        answer = (tuple(view.seen.items()), result, held)
        if answers is None:
            with self._lock:
                while len(self._entries) >= self.max_entries:
                    del self._entries[next(iter(self._entries))]  # the oldest question
                self._entries[question] = [answer]
        elif len(answers) < self.variants:
            answers.append(answer)
        else:
            answers[0] = answer
        return result


DECISIONS = DecisionMemo()


def size_decisions(secrets: int) -> None:
    """Room for a decision per cached secret (their ARNs are the questions' resources), and
    the 4,096 questions of other resources the memo always holds."""
    DECISIONS.max_entries = 4096 + max(0, secrets)


@lru_cache(maxsize=4096)
def parsed_policy(text: str) -> Any:
    """A stored policy document, parsed once (one object per text, which the memo relies on).
    Stored documents were validated; an unreadable one is None. Never change what it returns."""
    try:
        return json.loads(text)
    except ValueError:
        return None
