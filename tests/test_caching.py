"""BoundedCache: a memo with a ceiling on entries and on total weight."""

from __future__ import annotations

import pytest

from costwarden.caching import BoundedCache, remember
from costwarden.clients import fingerprints
from costwarden.clients.fingerprints import call_metadata
from costwarden.errors import InvalidInputError


def test_a_hit_is_the_stored_value_and_a_miss_is_none() -> None:
    cache: BoundedCache[str, int] = BoundedCache(4)
    cache.put("a", 1)
    assert cache.get("a") == 1
    assert cache.get("b") is None
    assert "a" in cache and "b" not in cache and len(cache) == 1


def test_the_cache_is_emptied_when_it_would_go_over_its_entries() -> None:
    cache: BoundedCache[int, int] = BoundedCache(3)
    for i in range(3):
        cache.put(i, i)
    assert len(cache) == 3
    cache.put(3, 3)
    assert len(cache) == 1 and cache.get(3) == 3 and cache.get(0) is None
    assert cache.get(3) == 3  # get stays the live dict's get after a clear


def test_the_weight_bound_empties_the_cache_and_refuses_a_too_heavy_entry() -> None:
    cache: BoundedCache[str, str] = BoundedCache(100, max_weight=10)
    cache.put("a", "x", weight=6)
    cache.put("b", "y", weight=4)
    assert len(cache) == 2 and cache.weight == 10
    cache.put("c", "z", weight=1)
    assert len(cache) == 1 and cache.weight == 1 and cache.get("c") == "z"
    cache.put("huge", "w", weight=11)  # would never fit: not kept, nothing else forgotten
    assert cache.get("huge") is None and cache.get("c") == "z"
    cache.clear()
    assert len(cache) == 0 and cache.weight == 0


def test_remember_builds_once_per_key_and_every_time_for_an_unhashable_one() -> None:
    built: list[object] = []

    def build(items: object) -> int:
        built.append(items)
        return len(built)

    cache: BoundedCache[object, int] = BoundedCache(8)
    assert remember(cache, (1, 2), build) == 1
    assert remember(cache, (1, 2), build) == 1  # a hit: not built again
    assert remember(cache, [1, 2], build) == 2  # a list has nothing to be remembered by
    assert remember(cache, [1, 2], build) == 3
    assert built == [(1, 2), [1, 2], [1, 2]] and len(cache) == 1


def test_pop_removes_and_returns_an_entry() -> None:
    cache: BoundedCache[str, int] = BoundedCache(4)
    cache.put("a", 1)
    assert cache.pop("a") == 1 and cache.pop("a") is None and "a" not in cache


@pytest.mark.parametrize("bound", [0, -1, 1.5, True, "3", None])
def test_bad_bounds_are_typed_errors(bound: object) -> None:
    with pytest.raises(InvalidInputError, match="max_entries must be a positive int"):
        BoundedCache(bound)  # type: ignore[arg-type]
    if bound is not None:
        with pytest.raises(InvalidInputError, match="max_weight must be a positive int"):
            BoundedCache(10, max_weight=bound)  # type: ignore[arg-type]


def test_remembered_system_prompts_stay_within_their_character_bound() -> None:
    """A server that sees ever new system prompts must not keep them all."""
    fingerprints.PREFIX_STATES.clear()
    limit = fingerprints.PREFIX_STATES.max_weight
    assert limit is not None
    big = "x" * (limit // 3)
    for i in range(7):
        prompt = [{"role": "system", "content": f"{i}{big}"}, {"role": "user", "content": "hi"}]
        call_metadata(prompt, "gpt-4o-mini", 16)
        assert fingerprints.PREFIX_STATES.weight <= limit
    assert 1 <= len(fingerprints.PREFIX_STATES) <= 3


def test_replace_stores_a_new_value_for_a_present_key_without_growing_or_weighing() -> None:
    cache: BoundedCache[str, int] = BoundedCache(2, max_weight=10)
    cache.put("a", 1, weight=4)
    cache.put("b", 2, weight=4)
    cache.replace("a", 5)  # what put would store, without its bound and weight steps
    assert (cache.get("a"), cache.get("b"), len(cache), cache.weight) == (5, 2, 2, 8)
    cache.clear()
    cache.replace("a", 6)  # the dict is cleared in place: replace still writes to it
    assert cache.get("a") == 6
