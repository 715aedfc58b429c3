"""Recall reads the user's own first-person words back in the second person, but a quotation of someone else
(a conversation stored as notes, "Caroline: I went to ...") is left as that person said it."""

from __future__ import annotations

import pytest

from memory.recall import addressed_to_the_user


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("My car is a blue Skoda", "Your car is a blue Skoda"),
        ("I park it at the back. The key is with me.", "You park it at the back. The key is with you."),
        ("Note: my wifi password is tulip42", "Note: Your wifi password is tulip42"),
        ("Reminder: I'm off on Friday", "Reminder: You're off on Friday"),
    ],
)
def test_the_users_own_words_come_back_addressed_to_the_user(text: str, shown: str) -> None:
    assert addressed_to_the_user(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "Caroline: I went to a LGBTQ support group yesterday and it was so powerful.",
        "Melanie: Hey Caroline! I'm swamped with the kids & work.",
        "Dr. Ana Silva: my results are in.",
        "Jean-Luc O'Neil: I'll be late.",
    ],
)
def test_a_quoted_speaker_keeps_their_own_first_person(text: str) -> None:
    assert addressed_to_the_user(text) == text
