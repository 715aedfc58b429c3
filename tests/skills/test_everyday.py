"""The ``calc`` and ``when`` skills (skills.calc, skills.when): everyday sums, conversions, relative dates and
time sums computed by code at a fixed clock, in two zones; a question they are not sure of goes to the model.

The phrasings are written for this project (not the eval's): the ways people ask, each with a fact the
answer must state."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from assistant.config import Settings
from assistant.services import build_services
from skills.calc import CalcError, safe_eval, solve
from skills.when import parse, parse_clock
from tests.fakes import FakeLLM, FixedClock

# 05:30 UTC on Wednesday 18 March 2026: 06:30 on Wednesday in Berlin, 22:30 on Tuesday 17 March in
# Los Angeles (PDT): a relative date must be counted from the user's own day.
NOW = datetime(2026, 3, 18, 5, 30, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
LA = ZoneInfo("America/Los_Angeles")

CALC: list[tuple[str, str]] = [
    ("What is 144 divided by 12?", "= 12."),
    ("144/12", "144 / 12 = 12."),
    ("what's 17 + 25", "= 42."),
    ("calculate 9 * 8", "= 72."),
    ("What is 3 times 15?", "= 45."),
    ("6 x 7", "= 42."),
    ("what is 250 minus 175", "= 75."),
    ("how much is 56 plus 77?", "= 133."),
    ("What is 2.5 + 1.75?", "= 4.25."),
    ("what is (3 + 4) * 2", "= 14."),
    ("2 to the power of 10", "= 1024."),
    ("What is 7 squared?", "= 49."),
    ("3 cubed", "= 27."),
    ("what is 10 mod 3", "= 1."),
    ("1,000 + 1", "= 1001."),
    ("-5 + 3", "= -2."),
    ("what is 22 / 7", "= 3.14."),
    ("What is the square root of 81?", "is 9."),
    ("square root of 2", "is 1.41."),
    ("What is half of 350?", "is 175."),
    ("a quarter of 60", "is 15."),
    ("double 21", "is 42."),
    ("What is 15% of 200?", "is 30."),
    ("what's 20 percent of 85", "is 17."),
    ("25% off $20", "$15.00."),
    ("$80 with 10% off", "$72.00."),
    ("what is 50 plus 20%", "is 60."),
    ("what is 30 as a percentage of 120", "is 25%"),
    ("How many miles is 5 kilometres?", "3.11 miles."),
    ("5 km in miles", "3.11 miles."),
    ("convert 10 miles to km", "16.09 kilometres."),
    ("how many kilometers is a mile", "1.61 kilometres."),
    ("How many centimetres are in a metre?", "100 centimetres."),
    ("how many inches in a foot", "12 inches."),
    ("how many cm is 6 feet", "182.88 centimetres."),
    ("what is 170 cm in feet", "5.58 feet."),
    ("how many feet in a mile", "5280 feet."),
    ("What is 100 degrees Fahrenheit in Celsius?", "37.78 degrees Celsius."),
    ("What is 20 degrees Celsius in Fahrenheit?", "68 degrees Fahrenheit."),
    ("convert 0 c to f", "32 degrees Fahrenheit."),
    ("-40 f in c", "-40 degrees Celsius."),
    ("How many grams are in a kilogram?", "1000 grams."),
    ("How many pounds is 3 kilograms?", "6.61 pounds."),
    ("10 lbs to kg", "4.54 kilograms."),
    ("how many ounces are in a pound", "16 ounces."),
    ("How many kilograms is 250 grams?", "0.25 kilograms."),
    ("How many millilitres are in a litre?", "1000 millilitres."),
    ("What is 30 miles per hour in kilometres per hour?", "48.28 kilometres per hour."),
    ("100 km/h in mph", "62.14 miles per hour."),
    ("How many square metres are in a hectare?", "10000 square metres."),
    ("How many hours are in 3 days?", "72 hours."),
    ("how many minutes in 2 hours", "120 minutes."),
    ("How many seconds are in an hour?", "3600 seconds."),
    ("How many minutes is 1 hour and 15 minutes?", "75 minutes."),
    ("how many hours in a week", "168 hours."),
    ("Round 2.5 to the nearest whole number", "is 3."),
    ("what is 3.14159 rounded to 2 decimal places", "is 3.14."),
    ("round 1234 to the nearest hundred", "is 1200."),
]

# Not sure, or not a sum: the model answers.
NOT_CALC = [
    "what is the capital of France",
    "what time is it",
    "I have 5 apples and eat 2. How many apples are left?",
    "what is 5 k",
    "9 ** 99999",
    "1/0",
    "__import__('os').system('ls')",
    "what is 2 + two",
    "how many miles is 5 kg",
    "remind me in 3 days to call mum",
    "what is 12",
    "how many feet does a spider have",
    "2026-12-25",
    "25/12/2026",
]

# (question, Berlin answer part, Los Angeles answer part)
WHEN: list[tuple[str, str, str]] = [
    (
        "What day of the week will it be in 3 days?",
        "In 3 days it will be Saturday, 21 March",
        "Friday, 20 March",
    ),
    ("what day is it in 2 days", "Friday, 20 March", "Thursday, 19 March"),
    ("what day will it be tomorrow", "Thursday, 19 March", "Wednesday, 18 March"),
    ("What day of the week was it yesterday?", "Tuesday, 17 March", "Monday, 16 March"),
    ("What day of the week was it 2 days ago?", "Monday, 16 March", "Sunday, 15 March"),
    ("what day was it the day before yesterday", "Monday, 16 March", "Sunday, 15 March"),
    ("what day will it be in a week", "Wednesday, 25 March", "Tuesday, 24 March"),
    ("What is the date next Monday?", "Monday, 23 March 2026", "Monday, 23 March 2026"),
    ("what's the date on friday", "Friday, 20 March 2026", "Friday, 20 March 2026"),
    ("what date is next tuesday", "Tuesday, 24 March 2026", "Tuesday, 24 March 2026"),
    ("What is tomorrow's date?", "Thursday, 19 March 2026", "Wednesday, 18 March 2026"),
    ("what was yesterday's date", "Tuesday, 17 March 2026", "Monday, 16 March 2026"),
    ("What will the date be in 10 days?", "Saturday, 28 March 2026", "Friday, 27 March 2026"),
    ("what is the date in 2 weeks", "Wednesday, 1 April 2026", "Tuesday, 31 March 2026"),
    ("what was the date 3 days ago", "Sunday, 15 March 2026", "Saturday, 14 March 2026"),
    ("what's the date today", "Wednesday, 18 March 2026", "Tuesday, 17 March 2026"),
    ("what date was last friday", "Friday, 13 March 2026", "Friday, 13 March 2026"),
    ("How many days until Friday?", "2 days until Friday, 20 March", "3 days until Friday, 20 March"),
    ("how many days is it until saturday", "3 days", "4 days"),
    ("how many days till wednesday", "7 days until Wednesday, 25 March", "1 day until Wednesday, 18 March"),
    ("how many days until christmas", "282 days until Friday, 25 December 2026", "283 days"),
    ("how many days until 1 april", "14 days until Wednesday, 1 April 2026", "15 days"),
    ("how many days are left until March 20th", "2 days", "3 days"),
    ("how many sleeps until new year", "289 days until Friday, 1 January 2027", "290 days"),
    ("Which month comes after March?", "April comes after March.", "April"),
    ("what month comes before january", "December comes before January.", "December"),
    ("which day comes after sunday", "Monday comes after Sunday.", "Monday"),
    ("what's the day before monday", "Sunday comes before Monday.", "Sunday"),
    ("How many days in February 2028?", "February 2028 has 29 days.", "29 days"),
    ("how many days does february have", "February 2026 has 28 days.", "28 days"),
    ("how many days are there in april", "April 2026 has 30 days.", "30 days"),
    ("What day of the week is March 20 this year?", "20 March 2026 will be a Friday.", "Friday"),
    ("what day is christmas day", "", ""),  # a holiday's name as a date: not parsed, the model answers
    ("what day of the week was 1 january 2000", "1 January 2000 was a Saturday.", "Saturday"),
    ("which day is the 4th of july", "4 July 2026 will be a Saturday.", "Saturday"),
    ("what month is it", "It is March 2026.", "March 2026"),
    ("what year is it", "It is 2026.", "2026"),
    ("What year was it last year?", "Last year was 2025.", "2025"),
    ("What time will it be in 2 hours?", "08:30 (8:30 AM)", "00:30 (12:30 AM) on Wednesday, 18 March 2026"),
    ("what time will it be in 45 minutes", "07:15 (7:15 AM)", "23:15 (11:15 PM)"),
    ("what time is it going to be in 1 hour and 30 minutes", "08:00 (8:00 AM)", "00:00 (12:00 AM)"),
    ("what time was it 3 hours ago", "03:30 (3:30 AM)", "19:30 (7:30 PM)"),
    ("If it is 10:00 now, what time will it be in 3 hours?", "13:00 (1:00 PM)", "13:00 (1:00 PM)"),
    ("if it's 11 pm, what time will it be in 2 hours", "01:00 (1:00 AM)", "01:00 (1:00 AM)"),
    ("What time is 45 minutes after 2:30 pm?", "is 15:15 (3:15 PM).", "15:15 (3:15 PM)"),
    ("what time is 20 minutes before noon", "is 11:40 (11:40 AM).", "11:40"),
    ("what's 7:30 pm plus 2 hours", "is 21:30 (9:30 PM).", "21:30"),
    ("3 hours after 10.15", "is 13:15 (1:15 PM).", "13:15"),
    ("How long is it from 14:00 to 17:30?", "3 hours and 30 minutes (210 minutes).", "210 minutes"),
    ("how many hours between 9 am and 5 pm", "is 8 hours.", "8 hours"),
    ("how long from 11 pm to 7 am", "is 8 hours.", "8 hours"),
    ("What is 9 pm in 24-hour time?", "9 pm is 21:00 in 24-hour time.", "21:00"),
    ("what is 15:00 in 12-hour time", "15:00 is 3:00 PM.", "3:00 PM"),
    ("What is noon in 24-hour time?", "noon is 12:00", "12:00"),
    ("midnight in 24 hour time", "midnight is 00:00", "00:00"),
    ("what is 7:45 am in military time", "07:45", "07:45"),
    (
        "The film starts at 8:15 pm and lasts 1 hour and 50 minutes. When does it end?",
        "22:05 (10:05 PM)",
        "22:05",
    ),
    ("the train leaves at 23:30 and takes 2 hours, when does it arrive", "01:30 (1:30 AM)", "01:30"),
    (
        "If I go to bed at 10:30 pm and wake up at 6 am, how many hours did I sleep?",
        "7 hours and 30 minutes",
        "450",
    ),
]

NOT_WHEN = [
    "what time is it",
    "what time is it in Tokyo",
    "when is the meeting",
    "what day is the dentist",
    "how many days until my birthday",
    "what time does the shop open",
    "remind me in 2 hours to stretch",
    "what is the date of easter",
    "what time is 25:00 in 12-hour time",
    "how many days until february 30",
]


@pytest.mark.parametrize(("question", "expected"), CALC)
def test_calc_answers_what_it_parses(question: str, expected: str) -> None:
    answer = solve(question)
    assert answer is not None, question
    assert expected in answer.text, answer.text


@pytest.mark.parametrize("question", NOT_CALC)
def test_calc_leaves_the_rest_to_the_model(question: str) -> None:
    assert solve(question) is None


@pytest.mark.parametrize(("question", "berlin", "los_angeles"), WHEN)
def test_when_counts_from_the_users_own_day(question: str, berlin: str, los_angeles: str) -> None:
    answer = parse(question)
    if not berlin:
        assert answer is None
        return
    assert answer is not None, question
    assert berlin in answer(NOW.astimezone(BERLIN))
    assert los_angeles in answer(NOW.astimezone(LA))


@pytest.mark.parametrize("question", NOT_WHEN)
def test_when_leaves_the_rest_to_the_model(question: str) -> None:
    assert parse(question) is None


def test_the_phrase_table_is_large() -> None:
    assert len(CALC) + len(WHEN) >= 80 and len(NOT_CALC) + len(NOT_WHEN) >= 20


def test_the_evaluator_is_bounded() -> None:
    assert safe_eval("2 ** 10") == 1024 and safe_eval("(1 + 2) * -3") == -9
    for bad in (
        "10 ** 100",
        "9 ** 9 ** 9",
        "1 / 0",
        "abs(-1)",
        "x + 1",
        "'a' * 3",
        "True + 1",
        "1" * 200,
        "[1]",
    ):
        with pytest.raises(CalcError):
            safe_eval(bad)


def test_clock_words() -> None:
    assert (
        parse_clock("2:30 pm") == (14, 30)
        and parse_clock("12 am") == (0, 0)
        and parse_clock("12pm") == (12, 0)
    )
    assert parse_clock("7 o'clock in the evening") == (19, 0) and parse_clock("14h05") == (14, 5)
    assert parse_clock("13 pm") is None and parse_clock("24:00") is None


@pytest.fixture
def chat_client(tmp_path: object, settings: Settings) -> tuple[TestClient, FakeLLM]:
    from assistant.app import create_app

    fake = FakeLLM("the model was asked")
    berlin = settings.model_copy(update={"timezone": "Europe/Berlin"})
    services = build_services(berlin, clock=FixedClock(NOW), llm=fake)
    return TestClient(create_app(services)), fake


def _chat(client: TestClient, text: str) -> str:
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": text}]})
    assert r.status_code == 200, r.text
    return str(r.json()["choices"][0]["message"]["content"])


def test_through_the_http_chat_the_model_is_not_asked(chat_client: tuple[TestClient, FakeLLM]) -> None:
    client, fake = chat_client
    with client:
        assert _chat(client, "What is 144 divided by 12?") == "144 / 12 = 12."
        assert _chat(client, "Hey, how many miles is 5 km, please?") == "5 kilometres is 3.11 miles."
        assert (
            _chat(client, "What day of the week will it be in 3 days?")
            == "In 3 days it will be Saturday, 21 March."
        )
        assert _chat(client, "/calc 2 + 2") == "2 + 2 = 4."
        assert _chat(client, "/when next monday") == "Next Monday it will be Monday, 23 March."
        assert fake.prompts == []
        assert _chat(client, "What is the capital of France?") == "the model was asked"
        assert len(fake.prompts) == 1
