"""Packed corpus grading (tests/grading.py): entries of different answer cells share a notebook, each scored by its
own answer's test cells, so a mistake still has to lose exactly its cells and no other entry's."""

import pytest

from tests.grading import scores_in_pack
from tests.submissions import WrongImplementation, packed

TESTED_BY = {"f": ("test_f",), "g": ("test_g",), "questions": ("test_q1", "test_q2")}


def entry(name: str, cell: str, loses: tuple[str, ...] = ()) -> WrongImplementation:
    return WrongImplementation(name, cell, "", loses)


def test_a_pack_holds_at_most_one_entry_per_answer_cell():
    entries = [entry("f1", "f"), entry("f2", "f"), entry("g1", "g"), entry("q1", "questions"), entry("f3", "f")]
    packs = packed(entries, TESTED_BY)
    assert [[e.name for e in pack] for pack in packs] == [["f1", "g1", "q1"], ["f2"], ["f3"]]


def test_an_entry_that_names_another_answers_cells_cannot_be_packed():
    with pytest.raises(ValueError, match="the test cells of 'f'"):
        packed([entry("f1", "f", ("test_g",))], TESTED_BY)


def test_each_entry_is_scored_by_its_own_cells_and_the_cells_no_entry_of_the_pack_owns():
    f1, g1 = entry("f1", "f", ("test_f",)), entry("g1", "g", ("test_g",))
    pack_scores = {"test_f": (0.0, 2.0), "test_g": (0.0, 3.0), "test_q1": (1.0, 1.0), "test_q2": (0.0, 1.0)}
    # test_q2 is lost although no entry of the pack touches the questions: both entries are charged with it
    assert scores_in_pack(f1, pack_scores, [f1, g1], TESTED_BY) == {
        "test_f": (0.0, 2.0),
        "test_g": (3.0, 3.0),
        "test_q1": (1.0, 1.0),
        "test_q2": (0.0, 1.0),
    }
    assert scores_in_pack(g1, pack_scores, [f1, g1], TESTED_BY)["test_f"] == (2.0, 2.0)


USES = {"g": ("f",)}  # g's reference answer (or its tests) call f


def test_entries_of_an_answer_and_of_one_that_uses_it_never_share_a_pack():
    entries = [entry("f1", "f"), entry("g1", "g"), entry("q1", "questions"), entry("g2", "g")]
    packs = packed(entries, TESTED_BY, USES)
    assert [[e.name for e in pack] for pack in packs] == [["f1", "q1"], ["g1"], ["g2"]]


def test_an_entry_may_lose_the_cells_of_the_answers_that_use_it():
    assert packed([entry("f1", "f", ("test_f", "test_g"))], TESTED_BY, USES)
    with pytest.raises(ValueError, match="the test cells of 'g'"):
        packed([entry("g1", "g", ("test_f",))], TESTED_BY, USES)


def test_the_cells_of_answers_that_use_another_entry_are_not_charged_to_this_one():
    f1, q1 = entry("f1", "f", ("test_f", "test_g")), entry("q1", "questions", ("test_q1",))
    pack_scores = {"test_f": (0.0, 2.0), "test_g": (0.0, 3.0), "test_q1": (0.0, 1.0), "test_q2": (1.0, 1.0)}
    # the reference g calls the wrong f of f1: f1 loses test_g, q1 does not
    assert scores_in_pack(q1, pack_scores, [f1, q1], TESTED_BY, USES) == {
        "test_f": (2.0, 2.0),
        "test_g": (3.0, 3.0),
        "test_q1": (0.0, 1.0),
        "test_q2": (1.0, 1.0),
    }
    assert scores_in_pack(f1, pack_scores, [f1, q1], TESTED_BY, USES)["test_g"] == (0.0, 3.0)


def test_entries_of_two_answers_that_one_answer_uses_never_share_a_pack():
    uses = {"questions": ("f", "g")}  # a failing question could be either entry's fault
    packs = packed([entry("f1", "f"), entry("g1", "g")], TESTED_BY, uses)
    assert [[e.name for e in pack] for pack in packs] == [["f1"], ["g1"]]
