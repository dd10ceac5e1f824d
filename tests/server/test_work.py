"""A classify request's cost, and its split into work items."""

from __future__ import annotations

from confidently.server.work import request_cost, split


def test_cost_is_characters_times_passes():
    assert request_cost(["abc", "de"], top_tokens=0, text_cap=100) == 5
    assert request_cost(["abc", "de"], top_tokens=50, text_cap=100) == 10
    assert request_cost(["abc", "de"], top_tokens=1, text_cap=100) == 10  # one more pass, whatever the count


def test_a_text_over_the_server_cap_costs_the_cap_it_is_cut_to():
    assert request_cost(["x" * 1000, "de"], top_tokens=0, text_cap=100) == 102
    assert request_cost(["x" * 1000, "de"], top_tokens=1, text_cap=100) == 204
    parts = split(["x" * 1000, "y"], 0, max_texts=8, max_cost=1000, text_cap=100)
    assert [(p.size, p.cost) for p in parts] == [(2, 101)]


def test_split_respects_count_and_cost_and_keeps_order():
    texts = ["a" * 3, "b" * 3, "c" * 3, "d" * 3, "e" * 3]
    parts = split(texts, 0, max_texts=2, max_cost=100, text_cap=100)
    assert [p.payload.texts for p in parts] == [texts[:2], texts[2:4], texts[4:]]
    assert [(p.size, p.cost) for p in parts] == [(2, 6), (2, 6), (1, 3)]
    by_cost = split(texts, 1, max_texts=40, max_cost=13, text_cap=100)  # 6 per text with top tokens
    assert [p.payload.texts for p in by_cost] == [texts[:2], texts[2:4], texts[4:]]
    assert all(p.payload.top_tokens == 1 for p in by_cost)
    assert [t for p in by_cost for t in p.payload.texts] == texts


def test_a_text_over_the_cap_is_a_part_of_its_own():
    parts = split(["x" * 50, "y", "z" * 50], 0, max_texts=8, max_cost=10, text_cap=100)
    assert [(p.payload.texts, p.cost) for p in parts] == [(["x" * 50], 50), (["y"], 1), (["z" * 50], 50)]


def test_parts_with_top_tokens_hold_a_quarter_as_many_texts():
    texts = [f"text {i}" for i in range(10)]
    assert [p.size for p in split(texts, 0, max_texts=8, max_cost=10_000, text_cap=100)] == [8, 2]
    assert [p.size for p in split(texts, 5, max_texts=8, max_cost=10_000, text_cap=100)] == [2] * 5
    assert [p.size for p in split(texts, 5, max_texts=2, max_cost=10_000, text_cap=100)] == [1] * 10
