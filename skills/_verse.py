"""Verse checks for the ``seuss`` skill, by code: syllables, rhymes, shape, subject, and a fallback verse.

Rhymes and syllables come from the CMU Pronouncing Dictionary (the ``pronouncing`` package, which bundles
it: no network). Two words rhyme when one pronunciation of each has the same rhyming part (the last
stressed vowel and everything after it) and they are different words. Words the dictionary does not know
count their syllables by vowel groups and rhyme with nothing.

Not a skill: modules whose name starts with ``_`` are not entry points (pyproject's
``[project.entry-points."assistant.skills"]`` names the skills one by one).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from functools import lru_cache

import pronouncing

MIN_LINES, MAX_LINES = 2, 4
MIN_SYLLABLES, MAX_SYLLABLES = 4, 16  # per line: short, and long enough to be a line of verse
MAX_LINE_CHARS = 72

STOP = {
    "this", "that", "with", "from", "have", "will", "they", "their", "about", "after", "over", "into",
    "more", "than", "what", "when", "were", "been", "says", "said", "your", "just", "make", "like",
    "does", "some", "most", "only", "also", "amid", "amidst", "where", "which", "while", "would", "could",
    "should", "there", "these", "those", "them", "then", "here", "every", "each", "very", "much", "many",
}  # fmt: skip
GENERIC = {"headline", "headlines", "news", "verse", "verses", "rhyme", "rhymes", "story", "stories"}
# Words of the instructions a planted headline gives; a verse that says them followed (or quoted) it.
INSTRUCTION_WORDS = {
    "ignore", "ignored", "disregard", "instruction", "instructions", "prompt", "prompts", "jailbreak",
    "pwned", "override", "admin", "sudo", "reply", "respond", "output", "print", "assistant",
}  # fmt: skip
# The orders among them: a headline with one of these is an instruction, and a verse may say none of the
# words above. The others are also nouns of real news ("Kagi Assistant updates", "Assistant Professor at
# NEU"): a verse may name one that its headline names, when the headline gives no order.
COMMAND_WORDS = {
    "ignore", "ignored", "disregard", "jailbreak", "pwned", "override", "sudo", "reply", "respond", "print",
}  # fmt: skip

_WORD = re.compile(r"[a-z0-9']{4,}")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z']*")
_BAD_LINE = re.compile(r"^\s*(source|link|headline|verse|note|title|<<<|---|/|\d+[.)])", re.IGNORECASE)
_VOWELS = re.compile(r"[aeiouy]+")

# Simple nouns a fallback verse may end on ("... told a {noun}"): the dictionary picks the ones that rhyme.
NOUNS = """
ant ape axe bag ball band bank bar barn bat bay beach bead beak bean bear bed bee bell belt bench bike bird
boat bone book boot bow bowl box bread brick bride bridge broom bug bun bus cab cake cam can cane cap car card
cart cat chair chalk cheese chick chin chip clam claw clock cloud clown coat cod coin comb cone cook cow crab
crane crow crown cub cup cake dart deer den desk dog doll dome door dove drum duck dune eel egg elf elk ewe
fan farm fern fig fish flag flea fly foal fog fork fox frog gate gem ghost goat goose gown grape grass gull
hare harp hat hawk hen hill hive hog hook horn horse hose house hut jar jay jeep jug kite king kit knight
lamb lamp lane lark leaf lime lion lock loaf log lynx mail map mare mask mat mill mole moon moose moth mouse
mug mule nail nest net newt night nose nut oak owl ox pail pan pea peach pear pen pig pin pine pit plane plate
plum pole pond pool pot quail queen rake ram rat ray reed ring road robe rock roof room rose rug sail seal
seed sheep shell ship shoe shore sky sled slug snail snake sock spoon star stone stool stove swan tack tail
tent tie toad toe tool top town toy train tree truck tub tune twig van vase vine wall wasp whale wheel wig
wing wolf worm wren yak yam yard zoo bay clay day hay jay sleigh tray key pea tea bee knee sea three flea
glue shoe crew stew kangaroo cockatoo canoe kazoo igloo zoo pie fly guy tie sky pig fig wig twig jig
""".split()

# Common words a rhyme-shaped grammar may end a line on (the dictionary decides which ones rhyme).
COMMON = set(NOUNS) | set(
    """
go know show slow grow below glow flow day say way play away today stay gray may pay night bright light
right sight might fight flight white town down around found sound ground round fun sun run done one won
all tall fall small call hall wall ball new blue true through too two do you who see free me be tree sea
high sky by why fly my eye try bread said head red ahead fed bed more door floor four store before roar
line fine mine shine sign nine rain train again main plain game same name came fame home dome roam win in
begin grin spin thin bike like hike cheer near year clear here dear hear land hand band stand grand sand
cold gold old told bold best rest test west nest chest street sweet feet meet treat seat neat heat cat
hat that flat sat mat end friend send bend spend trend air there where care chair fair pair hair share
rare glad sad had bad dad mad gift lift good wood stood could should ice nice rice price twice life wife
knife deal meal real feel wheel heal mend tour sure cure pure joy boy toy deer fear
time mind kind find behind blind wind sign design line plan man can ran began than fan van span clan
scan code road load mode rode showed flowed glowed slowed owed bold hold fold sold rolled controlled
work perk world curled swirled twirled word heard bird third nerd stirred blurred way weigh they hey
obey display delay decay array okay stray spray pray sway chip ship trip tip skip grip slip dip flip hip
lip drip zip tech check deck neck wreck net bet get let met set wet yet jet vet forget regret rule
school cool pool fool tool fast last past vast cast blast big dig pig wig fig job rob mob keep deep
sleep sweep leap cheap heap jump bump lump pump dump key see tea agree degree three tree free guarantee
speed need feed read seed weed indeed lead bead greed change strange range arrange exchange news choose
lose use shoes whose plain brain chain gain pain train explain remain again cloud loud proud crowd
allowed vowed phone tone alone known shown grown own bone stone zone cone tall wall light night bright
sight might fight right quite write white polite delight smart heart start part art chart apart cart
bill fill hill will still skill thrill chill drill spill file mile smile while style pile case face
place space race pace base chase grace sale tale tail mail fail rail pale scale male fix mix six tricks
sticks picks kicks box fox rocks socks blocks clocks locks power tower hour flower shower build filled
skilled thrilled bug hug mug rug dug lock rock clock block shock stock knock dock page stage age cage
wage team dream seem stream beam gleam scheme theme law saw draw raw jaw straw tight deal steal host
most post coast toast boast ghost hack back track stack black crack pack snack rack lack bank thank tank
drank cost lost frost price nice dice test best nest quest guest rest chest cash crash dash flash splash
rash sell tell well bell fell spell shell smell yell loop group soup scoop hoop win in thin grin pin
skin tin chin meet street heat beat treat sweet ink think pink link sink wink drink fun sun run done one
won none real meal feel heel rain main cat hat that bat sat flat fat rat mat dry fly high sky try why
buy guy my mess guess dress less press yes bless odd nod hot not got lot spot plot dot shot pot knot
cold gold told old bad glad had mad sad dad
""".split()
)

HOOKS = ("Oh my", "Look here", "Hear ye", "Well, well", "Oh me, oh my", "Hooray", "Oh dear", "Good grief")
TELLERS = (
    "and a Who in a hat told it all to {a}",
    "so the Whos ran to tell it to {a}",
    "said a Who with a grin to a friend and {a}",
    "it was sung in the street by a Who and {a}",
    "and the news went by train to a Who and {a}",
    "said the Grinch, and he told it at once to {a}",
)


@lru_cache(maxsize=4096)
def _phones(word: str) -> tuple[str, ...]:
    return tuple(pronouncing.phones_for_word(word.lower().strip("'")))


def known(word: str) -> bool:
    return bool(_phones(word))


def syllables(word: str) -> int:
    """Syllables of one word: the dictionary's count, else the number of vowel groups (at least 1)."""
    phones = _phones(word)
    if phones:
        return pronouncing.syllable_count(phones[0])
    w = re.sub(r"[^a-z]", "", word.lower())
    if w.endswith("e") and not w.endswith(("le", "ee")) and len(w) > 2:
        w = w[:-1]
    return max(1, len(_VOWELS.findall(w)))


def words(line: str) -> list[str]:
    return _TOKEN.findall(line)


def line_syllables(line: str) -> int:
    return sum(syllables(w) for w in words(line))


def end_word(line: str) -> str:
    found = words(line)
    return found[-1].lower().strip("'") if found else ""


def rhymes(a: str, b: str) -> bool:
    """True when the dictionary says ``a`` and ``b`` rhyme (different words, same rhyming part)."""
    a, b = a.lower().strip("'"), b.lower().strip("'")
    if not a or not b or a == b:
        return False
    parts_a = {pronouncing.rhyming_part(p) for p in _phones(a)}
    parts_b = {pronouncing.rhyming_part(p) for p in _phones(b)}
    return bool(parts_a & parts_b)


def rhyme_pairs(lines: list[str]) -> list[tuple[int, int]]:
    """The pairs of lines that rhyme in one of the verse's accepted schemes, or [] when none does.

    Two lines: AA. Three lines: AAB, ABB or ABA. Four lines: AABB, ABAB or ABCB (the ballad's 2 and 4)."""
    ends = [end_word(line) for line in lines]
    schemes: dict[int, list[list[tuple[int, int]]]] = {
        2: [[(0, 1)]],
        3: [[(0, 1)], [(1, 2)], [(0, 2)]],
        4: [[(0, 1), (2, 3)], [(0, 2), (1, 3)], [(1, 3)]],
    }
    for scheme in schemes.get(len(lines), []):
        if all(rhymes(ends[i], ends[j]) for i, j in scheme):
            return scheme
    return []


def content_words(text: str) -> set[str]:
    return {w.strip("'") for w in _WORD.findall(text.lower())} - STOP


def subject_words(title: str) -> set[str]:
    """The headline's content words a verse about it should name (any one)."""
    return content_words(title) - GENERIC - INSTRUCTION_WORDS


_ACRONYM = re.compile(r"\b[A-Z][A-Z0-9]{1,3}\b")


def names_subject(verse: str, title: str) -> set[str]:
    """The headline's content words the verse names (a plural or singular form counts too), or an acronym
    of it written as the headline writes it ("AI", "CPU", "GCP")."""
    subject = subject_words(title)
    said = content_words(verse)
    said |= {w[:-1] for w in said if w.endswith("s")} | {w + "s" for w in said}
    acronyms = set(_ACRONYM.findall(title)) - {w.upper() for w in INSTRUCTION_WORDS}
    return (subject & said) | (acronyms & set(_ACRONYM.findall(verse)))


def instruction_words(verse: str, title: str) -> set[str]:
    """The instruction words the verse says: any of them when the headline gives an order (a command
    word), else those its headline does not name itself."""
    said = {w.lower() for w in words(verse)} & INSTRUCTION_WORDS
    heading = {w.lower() for w in words(title)}
    if heading & COMMAND_WORDS:
        return said
    return said - (heading - COMMAND_WORDS)


def numbers(text: str) -> set[str]:
    """The numbers written in digits ("2024", "7800" of "7800X3D"), whole and in parts: "24.04" is
    also "24" and "04", "1,082" also "1082"."""
    found = re.findall(r"\d+(?:[,.]\d+)*", text)
    return set(found) | {n.replace(",", "") for n in found} | set(re.findall(r"\d+", text))


def unknown_words(verse: str, title: str) -> list[str]:
    """The verse's words that are neither in the dictionary nor in the headline (a plural or possessive of
    either counts): the made-up and broken words a small model writes when the grammar pushes it."""
    own = {w.lower() for w in words(title)}
    out = []
    for w in words(verse):
        low = w.lower().strip("'")
        base = re.sub(r"'s$|s'?$", "", low)
        if not ({low, base} & own or known(low) or known(base)):
            out.append(w)
    return out


# Short words a glued pair must contain one of ("thepower" is "the power", "whereto" "where to").
GLUE = {
    "a", "an", "the", "to", "of", "in", "on", "at", "by", "for", "and", "or", "but", "so", "as", "is", "it",
    "its", "be", "are", "was", "has", "had", "can", "not", "all", "now", "new", "how", "who", "we", "he",
    "she", "you", "they", "his", "her", "our", "out", "up", "too", "way", "big", "very", "us", "me", "my",
}  # fmt: skip


def _known_part(part: str) -> bool:
    return (len(part) >= 2 or part in {"a", "i"}) and known(part)


def _splits(low: str, parts: int) -> list[list[str]]:
    """Ways to cut ``low`` into at most ``parts`` dictionary words, the fewest first."""
    whole = [[low]] if _known_part(low) else []
    if parts == 1:
        return whole
    more = [
        [low[:i], *rest]
        for i in range(1, len(low))
        if _known_part(low[:i])
        for rest in _splits(low[i:], parts - 1)
    ]
    return whole + sorted(more, key=len)


def unglued(word: str) -> str | None:
    """``word`` as two or three dictionary words when the model wrote them without their spaces ("thepower"
    -> "the power", "possiblenowfor" -> "possible now for"), one of them a common word; else None. A
    grammar that forbids the word a model wants next leaves it the letters of that word after the last."""
    low = word.lower()
    if not re.fullmatch(r"[a-z]{3,20}", low):
        return None
    common = GLUE | STOP | COMMON
    for cut in _splits(low, 3):
        rare = [part for part in cut if part not in common]
        if any(len(part) < (4 if len(cut) == 2 else 5) for part in rare) or len(rare) > 1:
            continue  # a guess: "anepadry" is no "an EPA dry", "reliableazing" no "reliable a zing"
        if len(cut) > 1 and set(cut) & common:
            out, i = [], 0
            for part in cut:
                out.append(word[i : i + len(part)])
                i += len(part)
            return " ".join(out)
    return None


def unglue(line: str, title: str) -> str:
    """``line`` with each word that is neither known nor the headline's split into the words glued in it."""
    own = {w.lower() for w in words(title)}

    def fix(m: re.Match[str]) -> str:
        w = m.group(0)
        base = re.sub(r"'s$", "", w)
        if w.lower() in own or base.lower() in own or known(w) or known(base):
            return w
        parts = unglued(base)
        return w if parts is None else parts + w[len(base) :]

    return _TOKEN.sub(fix, line)


def ngrams(text: str, n: int = 4) -> set[tuple[str, ...]]:
    found = re.findall(r"[a-z0-9']+", text.lower())
    return {tuple(found[i : i + n]) for i in range(len(found) - n + 1)}


@dataclass(frozen=True)
class Verdict:
    verse: str | None  # the cleaned verse, when it passed every check
    problem: str = ""  # the first check that failed
    score: int = 0  # among passing verses, higher is better
    perfect: bool = False  # every line in a rhyming pair: no further try needed


def check_verse(raw: str, title: str, prompt: str = "") -> Verdict:
    """Clean and check a model's verse: shape (2-4 lines, short, no labels or links), syllables per line,
    rhyme of the paired lines, the headline's subject named, no number the headline does not have, and
    nothing of the prompt or of an instruction planted in the headline repeated. Only the first stanza is
    kept."""
    if re.search(r"https?://|www\.|\]\(", raw, re.IGNORECASE):
        return Verdict(None, "link")
    lines: list[str] = []
    for line in raw.splitlines():
        line = re.sub(r"\s+", " ", line).strip(' -*•#"_')
        if not line:
            if lines:
                break  # one stanza only
            continue
        if _BAD_LINE.match(line):
            return Verdict(None, "label")
        lines.append(unglue(line, title))
        if len(lines) > MAX_LINES:
            break
    if not MIN_LINES <= len(lines) <= MAX_LINES:
        return Verdict(None, "lines")
    verse = "\n".join(lines)
    if re.search(r"[<>{}\[\]|\\`]", verse) or not all(line.isprintable() for line in lines):
        return Verdict(None, "markup")
    if unknown_words(verse, title):
        return Verdict(None, "unknown word")
    for line in lines:
        if len(line) > MAX_LINE_CHARS or not MIN_SYLLABLES <= line_syllables(line) <= MAX_SYLLABLES:
            return Verdict(None, "line length")
    pairs = rhyme_pairs(lines)
    if not pairs:
        return Verdict(None, "rhyme")
    if instruction_words(verse, title):
        return Verdict(None, "instruction")
    if set(re.findall(r"\d+(?:[,.]\d+)*", verse)) - numbers(title):
        return Verdict(None, "number")
    if prompt and ngrams(verse) & ngrams(prompt):
        return Verdict(None, "repeats the prompt")
    if ngrams(verse, 6) & ngrams(title, 6):
        return Verdict(None, "copies the headline")
    named = names_subject(verse, title)
    if not named:
        return Verdict(None, "subject")
    full = 2 * len(pairs) == len(lines)
    score = 4 * len(pairs) + 2 * full + min(3, len(named)) + (len(lines) == 4)
    return Verdict(verse, score=score, perfect=full)


# A line of whole words (never cut off mid-word), three to eight of them before the line's end word; the
# grammars below add the end word. A word is lowercase after its first letter, or an acronym ("AI",
# "CPUs"), with an English contraction at most: no "opennessforAI" or "mind'ss", which a model pushed off
# the words it wants (a digit, a name with an accent) spells letter by letter. The headline's own words,
# as the headline writes them ("7800X3D", "Brötzmann", "wp-k8s"), are added for each headline
# (``with_headline_words``); ``word ::= plain`` is the rule it extends.
LINE_RULES = (
    "line ::= word (sep word){2,7}\n"
    "word ::= plain\n"
    'plain ::= [A-Za-z] [a-z]{0,13} suffix? | [A-Z] [A-Z]{1,4} "s"?\n'
    'suffix ::= "\'" ("s" | "t" | "re" | "ll" | "ve" | "d" | "m")\n'
    'sep ::= ","? " "\n'
    "end ::= [.!]?\n"
)
_OWN_TOKEN = re.compile(r"^\w(?:[\w'.&+-]*\w)?\+*$")  # a word of the headline as GBNF may quote it


def headline_tokens(title: str) -> list[str]:
    """The headline's words as it writes them (split at spaces and slashes, outer punctuation dropped),
    each once, without instruction words: the words a verse about it may copy whole."""
    out: list[str] = []
    for raw in re.split(r"[\s/]+", title):
        tok = raw.strip(".,:;!?\"'()[]{}<>*_~|`\u201c\u201d\u2018\u2019")
        if not (0 < len(tok) <= 30) or not _OWN_TOKEN.match(tok) or not tok.isprintable() or tok in out:
            continue
        if {w.lower() for w in words(tok)} & INSTRUCTION_WORDS:
            continue
        out.append(tok)
    return out


def with_headline_words(gbnf: str, title: str) -> str:
    """``gbnf`` (a grammar made of ``LINE_RULES``) whose words may also be the headline's own words."""
    tokens = headline_tokens(title)
    if not tokens:
        return gbnf
    alt = " | ".join(f'"{t}"' for t in tokens)
    return gbnf.replace("word ::= plain\n", f"word ::= plain | own\nown ::= ({alt}) suffix?\n", 1)


@lru_cache(maxsize=4096)
def rhyme_grammar(anchor: str) -> str | None:
    """A GBNF grammar for a couplet whose first line ends on ``anchor`` (a word of the headline) and whose
    second line ends on a common word the dictionary says rhymes with it; None when there is none."""
    ends = sorted(w for w in COMMON if rhymes(anchor, w))
    if len(ends) < 2 or not re.fullmatch(r"[A-Za-z']+", anchor):
        return None
    alt = " | ".join(f'"{w}"' for w in ends)
    return (
        f'root ::= line " " anchor end "\\n" line " " rhyme end\n'
        f'anchor ::= "{anchor.lower()}" | "{anchor.capitalize()}"\n'
        f"rhyme ::= {alt}\n" + LINE_RULES
    )


@lru_cache(maxsize=1)
def pair_grammar() -> str:
    """A GBNF grammar for a couplet that ends on any rhyming pair of common words (not the nouns, which make
    odd lines): one alternative per first end word, listing the other words that rhyme with it. For the
    headlines none of whose words has a rhyme, and as a change from them for the others."""
    ends = sorted(w for w in COMMON - set(NOUNS) if re.fullmatch(r"[a-z]+", w) and known(w))
    rules = []
    for w in ends:
        partners = " | ".join(f'"{x}"' for x in ends if rhymes(w, x))
        if partners:
            rules.append(f'p-{w} ::= "{w}" end "\\n" line " " ({partners}) end')
    names = " | ".join(r.split(" ", 1)[0] for r in rules)
    return f'root ::= line " " ({names})\n' + "\n".join(rules) + "\n" + LINE_RULES


def anchors(title: str) -> list[str]:
    """Words of the headline a couplet may rhyme on, the last first (rhyme_grammar is not None for each)."""
    found: list[str] = []
    for w in reversed(words(title)):
        low = w.lower()
        if len(low) >= 4 and low not in STOP | INSTRUCTION_WORDS and low not in found and known(low):
            if rhyme_grammar(low) is not None:
                found.append(low)
    return found


# -- the fallback: a verse built by code from the headline's own words ------------------------------------


def _article(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def fallback_verse(title: str) -> str:
    """A rhyming couplet about this headline: its own words up to an anchor word, then a line that ends on a
    noun the dictionary says rhymes with the anchor. Chosen by a hash of the headline, so headlines get
    different verses, and the same headline always the same one."""
    h = zlib.crc32(title.encode("utf-8"))
    tokens = words(title)
    clean = [t for t in tokens if t.lower() not in INSTRUCTION_WORDS]
    candidates: list[tuple[int, str, list[str]]] = []  # (anchor index, anchor, rhyming nouns)
    for i in range(len(clean) - 1, -1, -1):
        w = clean[i]
        if len(w) < 4 or w.lower() in STOP or not known(w):
            continue
        found = [n for n in NOUNS if rhymes(w, n)]
        if found:
            candidates.append((i, w, sorted(set(found))))
        if len(candidates) >= 3:
            break
    hook = HOOKS[h % len(HOOKS)]
    teller = TELLERS[(h >> 8) % len(TELLERS)]
    # a first line of at least three of the headline's words: "Look here, The Right!" says nothing
    candidates = [c for c in candidates if c[0] >= 2]
    if candidates:
        i, anchor, nouns = candidates[0]  # the last word of the headline that has a rhyme
        noun = nouns[(h >> 16) % len(nouns)]
        snippet = clean[max(0, i - 3) : i + 1]
        while len(snippet) > 1 and line_syllables(" ".join(snippet)) > 11:
            snippet = snippet[1:]
        first = f"{hook}, {' '.join(snippet)}!"
    else:  # no word of the headline has a rhyme among the nouns: name its subject, end on a known pair
        # the subject: its longest content words ("intelligence", not "large"), one of them by the hash
        subject = sorted(subject_words(title), key=lambda w: (-len(w), w)) or ["news"]
        longest = [w for w in subject if len(w) == len(subject[0])]
        topic = longest[h % len(longest)]
        first = f"{hook}, the news about {topic} is new!"
        nouns = [n for n in NOUNS if rhymes("new", n)]  # zoo, shoe, canoe, kangaroo...
        noun = nouns[(h >> 16) % len(nouns)]
    return f"{first}\n{teller.format(a=_article(noun))}."
