"""`calc`: arithmetic, percentages and unit conversions computed by code, never guessed by the model.

A question is answered only when it is parsed exactly ("what is 144 divided by 12", "15% of 200",
"25% off $20", "square root of 81", "how many miles is 5 km", "what is 100 F in Celsius", "how many
hours are in 3 days"); anything else returns None from :func:`parse` and the model answers as usual.
Arithmetic goes through a small ``ast`` evaluator (numbers, ``+ - * / % **`` and parentheses, bounded
sizes), never ``eval``."""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from assistant.skillkit.api import SkillContext, SkillResult, skill

MAX_TEXT = 160
MAX_ABS = 1e15
MAX_EXPONENT = 64

NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "hundred": 100, "a hundred": 100,
    "a thousand": 1000, "half a": 0.5, "a half": 0.5,
}  # fmt: skip
_NUM = r"(?:-?\d+(?:,\d{3})*(?:\.\d+)?|-?\.\d+)"
_QTY = r"(?P<n>" + _NUM + r"|" + "|".join(sorted(map(re.escape, NUMBER_WORDS), key=len, reverse=True)) + r")"
_ASK = r"(?:(?:so |and |then )?(?:what(?:'s| is| are)|how much (?:is|are)|calculate|compute|work out|tell me|solve)\s+)?"


class CalcError(ValueError):
    """The expression is not a plain, bounded sum."""


def number(text: str) -> float:
    text = text.strip().lower()
    if text in NUMBER_WORDS:
        return float(NUMBER_WORDS[text])
    return float(text.replace(",", ""))


def fmt(x: float) -> str:
    """A number as people write it: whole numbers without a point, others to at most 2 decimals
    (3 significant digits below 1)."""
    if not math.isfinite(x):
        raise CalcError("not a finite number")
    if abs(x - round(x)) < 1e-9 * max(1.0, abs(x)):
        return str(int(round(x)))
    if abs(x) < 1:
        text = f"{x:.3g}"
        return text if "e" not in text else f"{x:.6f}".rstrip("0")
    return f"{x:.2f}".rstrip("0").rstrip(".")


# ---------------------------------------------------------------- arithmetic

_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}


def safe_eval(expression: str) -> float:
    """The value of an arithmetic expression: numbers, + - * / % ** and parentheses only, bounded sizes;
    CalcError for anything else (names, calls, huge powers, division by zero)."""
    if len(expression) > MAX_TEXT:
        raise CalcError("too long")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise CalcError("not an expression") from exc
    return float(_value(tree.body, 0))


def _value(node: ast.AST, depth: int) -> float:
    if depth > 40:
        raise CalcError("too deep")
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    ):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
        inner = _value(node.operand, depth + 1)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _value(node.left, depth + 1), _value(node.right, depth + 1)
        if isinstance(node.op, ast.Pow) and (abs(right) > MAX_EXPONENT or abs(left) > 1e6):
            raise CalcError("power too large")
        if isinstance(node.op, ast.Div | ast.Mod) and right == 0:
            raise CalcError("division by zero")
        try:
            result = float(_BINOPS[type(node.op)](left, right))
        except (OverflowError, ValueError, ZeroDivisionError) as exc:
            raise CalcError("out of range") from exc
        if isinstance(result, complex) or not math.isfinite(result) or abs(result) > MAX_ABS:
            raise CalcError("out of range")
        return result
    raise CalcError("only numbers and + - * / % ** ( ) are allowed")


# Words for operators, longest first; the numbers stay as written.
_OP_WORDS: tuple[tuple[str, str], ...] = (
    (r"\bmultiplied by\b", "*"),
    (r"\bdivided by\b", "/"),
    (r"\bto the power of\b", "**"),
    (r"\bto the power\b", "**"),
    (r"\braised to\b", "**"),
    (r"\bmodulo\b", "%"),
    (r"\bmod\b", "%"),
    (r"\bplus\b", "+"),
    (r"\bminus\b", "-"),
    (r"\btimes\b", "*"),
    (r"\bover\b", "/"),
    (r"(?<=[\d)\s])[x×](?=[\s\d(])", "*"),
    (r"÷", "/"),
    (r"\bsquared\b", "**2"),
    (r"\bcubed\b", "**3"),
)
_EXPR_CHARS = re.compile(r"^[\d\s.+\-*/%()]+$")
_HAS_OP = re.compile(r"\d\s*(?:\*\*|[-+*/%])\s*[-+(]*\s*\d|\*\*\d")


def _expression(text: str) -> str | None:
    expr = text
    for pattern, op in _OP_WORDS:
        expr = re.sub(pattern, f" {op} ", expr)
    expr = re.sub(r"(?<=\d),(?=\d{3}\b)", "", expr)
    expr = re.sub(r"\*\s+\*", "**", expr)
    expr = re.sub(r"\s*\*\*\s*", "**", expr)
    expr = " ".join(expr.split())
    if not expr or not _EXPR_CHARS.match(expr) or not _HAS_OP.search(expr):
        return None
    if re.search(r"\d{4} ?- ?\d{1,2} ?- ?\d{1,2}|\d{1,2} ?/ ?\d{1,2} ?/ ?\d{2,4}", expr):
        return None  # a date (2026-12-25, 25/12/2026), not a sum
    return expr


def _pretty(expr: str) -> str:
    return re.sub(r"\s*(\*\*|[-+*/%])\s*", r" \1 ", expr).replace(" ** ", "^").replace("( ", "(").strip()


@dataclass(frozen=True)
class Answer:
    text: str
    value: float


def arithmetic(q: str) -> Answer | None:
    m = re.fullmatch(_ASK + r"(?:the )?square root of " + _QTY, q)
    if m:
        n = number(m["n"])
        return (
            Answer(f"The square root of {fmt(n)} is {fmt(math.sqrt(n))}.", math.sqrt(n)) if n >= 0 else None
        )
    m = re.fullmatch(
        r"(?:what is |what's )?(?P<x>"
        + _NUM
        + r") rounded(?: up| down)? to (?:the nearest (?P<w>whole number|"
        r"integer|unit|ten|hundred|thousand)|(?P<d>\d) decimal places?|(?P<one>one) decimal place)"
        r"|round (?P<x2>" + _NUM + r")(?: up| down)? to (?:the nearest (?P<w2>whole number|integer|unit|ten|"
        r"hundred|thousand)|(?P<d2>\d) decimal places?|(?P<one2>one) decimal place)",
        q,
    )
    if m and "up" not in q.split() and "down" not in q.split():
        x = number(m["x"] or m["x2"])
        word = m["w"] or m["w2"]
        places = 1 if (m["one"] or m["one2"]) else int(m["d"] or m["d2"] or 0)
        step = {"ten": 10, "hundred": 100, "thousand": 1000}.get(word or "", 0)
        from decimal import ROUND_HALF_UP, Decimal

        if step:
            value = float((Decimal(str(x)) / step).quantize(Decimal(1), ROUND_HALF_UP) * step)
        else:
            value = float(Decimal(str(x)).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP))
        target = f"the nearest {word}" if word else f"{places} decimal place{'s' if places != 1 else ''}"
        return Answer(f"{m['x'] or m['x2']} rounded to {target} is {value:.{places}f}.", value)
    m = re.fullmatch(_ASK + r"(?:half|a half|one half) of " + _QTY, q)
    if m:
        n = number(m["n"])
        return Answer(f"Half of {fmt(n)} is {fmt(n / 2)}.", n / 2)
    m = re.fullmatch(_ASK + r"(?:a |one )?(third|quarter|fifth|tenth) of " + _QTY, q)
    if m:
        n, part = number(m["n"]), {"third": 3, "quarter": 4, "fifth": 5, "tenth": 10}[m[1]]
        return Answer(f"A {m[1]} of {fmt(n)} is {fmt(n / part)}.", n / part)
    m = re.fullmatch(_ASK + r"(?:double|twice) " + _QTY, q)
    if m:
        n = number(m["n"])
        return Answer(f"Double {fmt(n)} is {fmt(2 * n)}.", 2 * n)
    m = re.fullmatch(_ASK + r"(?P<p>" + _NUM + r") ?(?:%|percent|per cent) of \$?(?P<n>" + _NUM + r")", q)
    if m:
        p, n = number(m["p"]), number(m["n"])
        return Answer(f"{fmt(p)}% of {fmt(n)} is {fmt(p * n / 100)}.", p * n / 100)
    m = (
        re.fullmatch(
            _ASK
            + r"(?P<p>"
            + _NUM
            + r") ?(?:%|percent|per cent) (?P<dir>off|discount on|more than|on top of|added to)"
            r"(?: a| an)? (?P<cur>\$|€|£)?(?P<n>"
            + _NUM
            + r")(?: ?(?:dollars|euros|pounds))?(?: item| price)?",
            q,
        )
        or re.fullmatch(
            _ASK
            + r"(?P<cur>\$|€|£)?(?P<n>"
            + _NUM
            + r")(?: ?(?:dollars|euros|pounds))? (?:with|after|minus|less) (?:a )?"
            r"(?P<p>" + _NUM + r") ?(?:%|percent|per cent)(?P<dir> off| discount)?",
            q,
        )
        or re.fullmatch(
            _ASK + r"(?P<cur>\$|€|£)?(?P<n>" + _NUM + r")(?: ?(?:dollars|euros|pounds))? (?P<dir>plus) "
            r"(?P<p>" + _NUM + r") ?(?:%|percent|per cent)",
            q,
        )
    )
    if m:
        p, n, cur = number(m["p"]), number(m["n"]), m["cur"] or ""
        up = (m["dir"] or "").strip() in ("more than", "on top of", "added to", "plus")
        value = n * (1 + p / 100) if up else n * (1 - p / 100)
        money = (lambda x: f"{cur}{x:.2f}") if cur else fmt
        word = "plus" if up else "minus"
        return Answer(f"{money(n)} {word} {fmt(p)}% is {money(value)}.", value)
    m = re.fullmatch(
        _ASK + r"(?P<a>" + _NUM + r") (?:is )?(?:as a )?(?:percentage|percent|%) of (?P<b>" + _NUM + r")", q
    )
    if m:
        a, b = number(m["a"]), number(m["b"])
        return Answer(f"{fmt(a)} is {fmt(100 * a / b)}% of {fmt(b)}.", 100 * a / b) if b else None
    m = re.fullmatch(_ASK + r"(?:the )?(?:result of )?(?P<e>.+?)(?: ?= ?)?", q)
    if m:
        expr = _expression(m["e"].strip())
        if expr is None:
            return None
        try:
            value = safe_eval(expr)
        except CalcError:
            return None
        return Answer(f"{_pretty(expr)} = {fmt(value)}.", value)
    return None


# ---------------------------------------------------------------- units


@dataclass(frozen=True)
class Unit:
    kind: str
    factor: float  # in the kind's base unit (metre, gram, litre, second, m/s, square metre)
    singular: str
    plural: str


def _units() -> dict[str, Unit]:
    table: list[tuple[str, float, str, str, tuple[str, ...]]] = [
        ("length", 0.001, "millimetre", "millimetres", ("mm", "millimeter", "millimeters")),
        ("length", 0.01, "centimetre", "centimetres", ("cm", "centimeter", "centimeters", "cms")),
        ("length", 1.0, "metre", "metres", ("m", "meter", "meters")),
        ("length", 1000.0, "kilometre", "kilometres", ("km", "kms", "kilometer", "kilometers", "k")),
        ("length", 0.0254, "inch", "inches", ("in", "inchs")),
        ("length", 0.3048, "foot", "feet", ("ft", "foots")),
        ("length", 0.9144, "yard", "yards", ("yd", "yds")),
        ("length", 1609.344, "mile", "miles", ("mi",)),
        ("mass", 0.001, "milligram", "milligrams", ("mg",)),
        ("mass", 1.0, "gram", "grams", ("g", "gr", "gramme", "grammes")),
        ("mass", 1000.0, "kilogram", "kilograms", ("kg", "kgs", "kilo", "kilos", "kilogramme")),
        ("mass", 28.349523125, "ounce", "ounces", ("oz",)),
        ("mass", 453.59237, "pound", "pounds", ("lb", "lbs")),
        ("mass", 6350.29318, "stone", "stone", ("stones", "st")),
        ("mass", 1_000_000.0, "tonne", "tonnes", ("metric ton", "metric tons")),
        ("volume", 0.001, "millilitre", "millilitres", ("ml", "milliliter", "milliliters")),
        ("volume", 0.01, "centilitre", "centilitres", ("cl", "centiliter", "centiliters")),
        ("volume", 0.1, "decilitre", "decilitres", ("dl", "deciliter", "deciliters")),
        ("volume", 1.0, "litre", "litres", ("l", "liter", "liters")),
        ("volume", 3.785411784, "US gallon", "US gallons", ("gallon", "gallons", "gal")),
        ("time", 1.0, "second", "seconds", ("sec", "secs", "s")),
        ("time", 60.0, "minute", "minutes", ("min", "mins")),
        ("time", 3600.0, "hour", "hours", ("hr", "hrs", "h")),
        ("time", 86400.0, "day", "days", ()),
        ("time", 604800.0, "week", "weeks", ()),
        (
            "speed",
            1609.344 / 3600,
            "mile per hour",
            "miles per hour",
            ("mph", "miles an hour", "mile an hour"),
        ),
        (
            "speed",
            1000 / 3600,
            "kilometre per hour",
            "kilometres per hour",
            (
                "km/h",
                "kmh",
                "kph",
                "kmph",
                "km per hour",
                "kilometers per hour",
                "kilometer per hour",
                "kilometres an hour",
                "kilometers an hour",
                "km an hour",
            ),
        ),
        (
            "speed",
            1.0,
            "metre per second",
            "metres per second",
            ("m/s", "meters per second", "meter per second"),
        ),
        ("speed", 1852 / 3600, "knot", "knots", ("kn", "kt")),
        ("area", 1.0, "square metre", "square metres", ("m2", "m²", "sq m", "square meter", "square meters")),
        (
            "area",
            1e6,
            "square kilometre",
            "square kilometres",
            ("km2", "km²", "sq km", "square kilometer", "square kilometers"),
        ),
        ("area", 0.09290304, "square foot", "square feet", ("sq ft", "ft2", "ft²")),
        ("area", 10_000.0, "hectare", "hectares", ("ha",)),
        ("area", 4046.8564224, "acre", "acres", ()),
    ]
    units: dict[str, Unit] = {}
    for kind, factor, singular, plural, aliases in table:
        unit = Unit(kind, factor, singular, plural)
        for name in (singular, plural, *aliases):
            units[name.lower()] = unit
    for name, (singular, plural) in {
        "c": ("degree Celsius", "degrees Celsius"),
        "f": ("degree Fahrenheit", "degrees Fahrenheit"),
        "k": ("kelvin", "kelvin"),
    }.items():
        unit = Unit("temperature", 0.0, singular, plural)
        words = {"c": ("celsius", "centigrade", "°c"), "f": ("fahrenheit", "°f"), "k": ("kelvin", "kelvins")}[
            name
        ]
        for word in words:
            units[word] = unit
            units[f"degrees {word}"] = unit
            units[f"degree {word}"] = unit
        if name != "k":
            units[name] = unit
            units[f"°{name}"] = unit
            units[f"degrees {name}"] = unit
            units[f"deg {name}"] = unit
    return units


UNITS = _units()
_UNIT = "(?:" + "|".join(sorted(map(re.escape, UNITS), key=len, reverse=True)) + ")"


def _to_base_temp(unit: Unit, value: float) -> float:
    if "Celsius" in unit.singular:
        return value
    if "Fahrenheit" in unit.singular:
        return (value - 32) * 5 / 9
    return value - 273.15


def _from_base_temp(unit: Unit, celsius: float) -> float:
    if "Celsius" in unit.singular:
        return celsius
    if "Fahrenheit" in unit.singular:
        return celsius * 9 / 5 + 32
    return celsius + 273.15


def convert(value: float, source: Unit, target: Unit) -> float | None:
    if source.kind != target.kind or source == target:
        return None
    if source.kind == "temperature":
        return _from_base_temp(target, _to_base_temp(source, value))
    return value * source.factor / target.factor


def _name(unit: Unit, value: float) -> str:
    return unit.singular if abs(value) == 1 else unit.plural


_QUANTITY = _QTY + r" ?(?P<u>" + _UNIT + r")"
_SUM = (
    r"(?P<q>"
    + _QTY.replace("?P<n>", "?:")
    + r" ?"
    + _UNIT
    + r"(?:,? (?:and )?"
    + _NUM
    + r" ?"
    + _UNIT
    + r")*)"
)


def _quantity(text: str) -> tuple[float, Unit] | None:
    """'1 hour and 15 minutes' -> (75, minute); 'a mile' -> (1, mile); None when the parts differ in kind."""
    parts = re.findall(r"(" + _QTY.replace("?P<n>", "?:") + r") ?(" + _UNIT + r")(?![a-z])", text)
    if not parts:
        return None
    first = UNITS[parts[0][1]]
    total = 0.0
    for n, u in parts:
        unit = UNITS[u]
        if unit.kind != first.kind or unit.kind == "temperature" and len(parts) > 1:
            return None
        total += number(n) * unit.factor / (first.factor or 1.0) if unit.kind != "temperature" else number(n)
    return total, first


def units(q: str) -> Answer | None:
    patterns = (
        # how many miles is 5 km / how many cm are in 2 feet / how many grams in a kilogram
        r"how many (?P<t>"
        + _UNIT
        + r") (?:is|are|make|makes|make up|in|are there in|is there in|are in|equals?|fit in)"
        r"(?: in)? (?:a |an |one )?" + _SUM.replace("(?P<q>", "(?P<q>(?:a |an )?"),
        r"how many (?P<t>" + _UNIT + r") (?:are|is) (?:there )?in (?P<q>(?:a|an|one) " + _UNIT + r")",
        # what is 5 km in miles / convert 5 km to miles / 5 km in miles / 100 f to c
        _ASK.replace("|solve", "|convert")
        + r"(?P<q>(?:"
        + _NUM
        + r") ?(?:"
        + _UNIT
        + r")(?:,? (?:and )?"
        + _NUM
        + r" ?"
        + _UNIT
        + r")*) (?:in|to|into|as|in terms of|expressed in) (?:the )?(?P<t>"
        + _UNIT
        + r")",
        r"(?:convert|change) (?P<q>.+?) (?:in|to|into) (?P<t>" + _UNIT + r")",
        r"how (?:far|long|heavy|much|fast|hot|cold|warm) is (?P<q>.+?) in (?P<t>" + _UNIT + r")",
    )
    for pattern in patterns:
        m = re.fullmatch(pattern, q)
        if not m:
            continue
        target = UNITS[m["t"]]
        source_text = re.sub(r"^(?:a|an|one) (?=" + _UNIT + r"$)", "1 ", m["q"])
        if re.fullmatch(_UNIT, source_text):
            source_text = "1 " + source_text
        parsed = _quantity(source_text)
        if parsed is None:
            continue
        value, source = parsed
        if re.sub(r"\s+", " ", source_text).strip() != source_text.strip():
            continue
        out = convert(value, source, target)
        if out is None:
            continue
        written = m["q"] if " and " in m["q"] or "," in m["q"] else f"{fmt(value)} {_name(source, value)}"
        return Answer(f"{written} is {fmt(out)} {_name(target, out)}.", out)
    return None


# ---------------------------------------------------------------- the skill

_LEAD = re.compile(r"^(?:(?:please|quick(?:ly)?|hey|ok|so|and|now),? )+")


def clean(text: str) -> str:
    q = text.strip().lower().replace("\u2019", "'")
    q = re.sub(r"[?!]+$|\.$", "", q).strip()
    q = re.sub(r"\s+", " ", q)
    q = _LEAD.sub("", q)
    q = re.sub(r",? (?:please|exactly|roughly|approximately)$", "", q)
    return q.strip()


def solve(text: str) -> Answer | None:
    """The answer to an arithmetic, percentage or unit question when it is parsed exactly, else None."""
    q = clean(text)
    if not q or len(q) > MAX_TEXT:
        return None
    return units(q) or arithmetic(q)


def calc_args(question: str) -> dict[str, Any] | None:
    """``from_phrase``: the arguments when ``question`` is a sum or conversion this skill is sure of."""
    return {"question": question} if solve(question) is not None else None


# Any short line may be a sum; calc_args decides (None: the model answers).
PHRASES: tuple[str | re.Pattern[str], ...] = (re.compile(r"(?P<question>[^\n]{1,160})"),)


@skill("calc", phrases=PHRASES, from_phrase=calc_args, remember=False, untrusted_output=False)
def calc(
    ctx: SkillContext,
    question: Annotated[str, "a sum, percentage or conversion: 144/12, 15% of 200, 5 km in miles"] = "",
) -> SkillResult:
    """Work out a sum, a percentage or a unit conversion by code (never the model).

    Numbers and + - * / % ** with parentheses, words for them ("144 divided by 12", "7 squared"),
    "square root of", "half of", "15% of 200", "25% off $20", and conversions of length, mass, volume,
    temperature, speed, area and time units. An expression it cannot parse exactly is not guessed.
    """
    answer = solve(question)
    if answer is None:
        return SkillResult(
            "I can only work out plain sums and unit conversions, e.g. /calc 144/12 or /calc 5 km in miles.",
            title="calc",
            notify=False,
        )
    return SkillResult(answer.text, title="calc", data={"value": answer.value})
