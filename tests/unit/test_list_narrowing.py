"""ListSecrets narrows filters in SQL (Tx.secrets_in_order): never a match fewer than the
filters themselves find (services/secretsmanager/filters.py), whichever plan SQLite runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.services.secretsmanager import filters
from strongroom.storage import SecretRecord, Store, open_store
from strongroom.storage.migrate import upgrade
from strongroom.storage.store import Tx

ACCOUNT, REGION = "111122223333", "us-east-1"
# Characters JSON or LIKE treat specially, a non-ASCII letter and the highest code point.
ALPHABET = ["a", "b", "A", "é", "%", "_", "/", '"', "\\", "\U0010ffff", "1"]
texts = st.text(alphabet=ALPHABET, min_size=1, max_size=4)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path: Path = tmp_path_factory.mktemp("narrowing") / "db.sqlite"
    s = open_store(f"sqlite:///{path}")
    upgrade(s)
    names = ["a", "ab", "abc", "b", "A", "é", "%a", "_b", "a/b", 'a"b', "a\\b", "\U0010ffff", "a\U0010ffff",
             "ba", "1a", "%", "_"]
    with s.write() as tx:
        for i, name in enumerate(names):
            tags = [{"Key": names[(i + 3) % len(names)], "Value": names[(i + 5) % len(names)]}] if i % 3 else []
            tx.insert_secret(SecretRecord(ACCOUNT, REGION, name,
                                          f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-abcdef",
                                          float(i), float(i), tags=tags))
    yield s
    s.close()


def _listed(store: Store, flt: list[dict[str, object]], narrow: bool) -> list[str]:
    def prefixes(key: str) -> list[str] | None:
        return [str(v) for f in flt if f["Key"] == key for v in f["Values"]] or None  # type: ignore[attr-defined]

    with store.read() as tx:
        found = tx.secrets_in_order(ACCOUNT, REGION, sort_by="created-date", descending=True, batch=5,
                                    **({"name_prefixes": prefixes("name"), "tag_key_prefixes": prefixes("tag-key"),
                                        "tag_value_prefixes": prefixes("tag-value")} if narrow else {}))
        return [s.name for s in found if filters.matches(flt, s)]  # type: ignore[arg-type]


@pytest.mark.parametrize("few", [True, False], ids=["name-index", "ordered-walk"])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["name", "tag-key", "tag-value"]), values=st.lists(texts, min_size=1, max_size=3))
def test_narrowing_keeps_every_match(store: Store, monkeypatch: pytest.MonkeyPatch, few: bool, key: str,
                                     values: list[str]) -> None:
    monkeypatch.setattr(Tx, "_few_named", lambda *a, **k: few)
    flt: list[dict[str, object]] = [{"Key": key, "Values": values}]
    assert _listed(store, flt, narrow=True) == _listed(store, flt, narrow=False)


def test_the_name_index_is_chosen_only_for_few_names(store: Store) -> None:
    with store.read() as tx:
        assert tx._few_named(ACCOUNT, REGION, ["ab"], few=2)  # "ab" and "abc"
        assert not tx._few_named(ACCOUNT, REGION, ["ab"], few=1)
        assert tx._few_named(ACCOUNT, REGION, ["ab", "ba"], few=3)
        assert not tx._few_named(ACCOUNT, REGION, ["a"], few=6)  # seven names start with "a"
        assert not tx._few_named(ACCOUNT, REGION, [""], few=16)  # every name
