"""An evaluation set made here, deterministic from a seed: conversations and documents with planted
facts, each asked about later in other words (a paraphrase shares few of the fact's words, so
neither BM25 nor the embedding alone finds every one)."""

from __future__ import annotations

import random
from dataclasses import dataclass

NAMES = ["Ingrid", "Tomasz", "Aiko", "Mateo", "Priya", "Lars", "Chidi", "Sofia", "Kenji", "Amara"]
CITIES = ["Oslo", "Lisbon", "Nairobi", "Kyoto", "Quito", "Tallinn", "Perth", "Porto", "Cusco"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
ANIMALS = ["beagle", "parrot", "tortoise", "ferret", "tabby cat", "rabbit"]
PETS = ["Biscuit", "Noodle", "Pepper", "Ziggy", "Mochi", "Rocket"]
JOBS = ["radiographer", "pharmacist", "anaesthetist", "physiotherapist", "midwife"]
FOODS = ["peanuts", "shellfish", "sesame", "kiwi fruit", "gluten"]
BANDS = ["Radiohead", "ABBA", "Daft Punk", "Fleetwood Mac", "Massive Attack"]

# (statement, question): the question avoids the statement's telling words where it can.
FACTS = [
    ("By the way, my sister's name is {name}.", "What is my sibling called?"),
    ("I left the car on level {n} of the garage.", "Which floor of the car park is my vehicle on?"),
    ("My flight to {city} takes off at {hour}:{minute}.", "When does my plane depart?"),
    ("I'm allergic to {food}, so keep that in mind.", "Is there something I must not eat?"),
    ("I adopted a {animal} and called it {pet}.", "What did I name my new pet?"),
    ("My favourite band of all time is {band}.", "Which group do I love listening to most?"),
    ("I work as a {job} at the hospital.", "What is my profession?"),
    ("The dentist booked me in for {day} morning.", "When is my dental appointment?"),
    ("The code for my locker is {n}{m}{k}.", "What combination opens my locker?"),
    ("I grew up in {city} before moving here.", "Where was I raised?"),
]
CHATTER = [
    ("Can you suggest a quick dinner with {food2} and rice?",
     "Sure: fry the {food2} with garlic, add soy sauce, and serve it over the rice."),
    ("Tell me something about the history of {city2}.",
     "{city2} grew around its harbour, and its old town dates back several centuries."),
    ("How do I stop my bike chain from squeaking?",
     "Clean the chain, dry it, then apply a little bicycle lubricant to each link."),
    ("What is a good way to learn {lang}?",
     "Practise a little every day, listen to podcasts, and speak with native speakers."),
    ("Any tips for sleeping better?",
     "Keep a regular schedule, avoid screens late at night, and keep the room cool."),
    ("Explain how compound interest works.",
     "Interest is earned on the principal and on interest already added, so it grows faster."),
    ("Write a short haiku about autumn.",
     "Red leaves drift and fall / the river carries them home / cold light on the stones"),
    ("What should I pack for a weekend hike?",
     "Water, layers, a rain jacket, snacks, a map, a first aid kit and a charged phone."),
]
LANGS = ["Portuguese", "Japanese", "Swahili", "Polish", "Finnish"]
FOODS2 = ["tofu", "chicken", "mushrooms", "prawns", "aubergine"]

DEPARTMENTS = ["finance", "legal", "logistics", "research", "marketing", "support"]
DOC_FACTS = [
    ("Staff in {dept} may work from home up to {n} days each week.",
     "How many remote days a week are allowed for the {dept} team?"),
    ("The {dept} budget for travel is capped at {amount} euros per quarter.",
     "What is the quarterly travel spending limit for {dept}?"),
    ("Requests to the {dept} office must be filed before {hour} o'clock.",
     "What is the daily cut-off time for submitting requests to {dept}?"),
    ("New hires in {dept} are paired with a mentor for {n} months.",
     "How long does mentoring last for people who just joined {dept}?"),
]
DOC_FILLER = [
    "This document describes the procedures that apply to the {dept} department.",
    "Questions about this policy should go to the department's coordinator.",
    "The policy is reviewed every year and changes are announced by email.",
    "Exceptions need written approval from a director.",
    "Records are kept for seven years in the central archive.",
    "Employees should read the general code of conduct as well.",
    "Training sessions are offered in spring and in autumn.",
    "The intranet holds the forms mentioned in this section.",
]


@dataclass(frozen=True)
class Conversation:
    turns: list[tuple[str, str]]  # (user, assistant) per turn
    questions: list[tuple[str, int]]  # (question, index of the turn holding the answer)


@dataclass(frozen=True)
class Corpus:
    documents: list[tuple[str, str]]  # (id, text)
    questions: list[tuple[str, str]]  # (question, id of the document holding the answer)


def _values(rng: random.Random) -> dict[str, object]:
    return {"name": rng.choice(NAMES), "city": rng.choice(CITIES), "day": rng.choice(DAYS),
            "animal": rng.choice(ANIMALS), "pet": rng.choice(PETS), "job": rng.choice(JOBS),
            "food": rng.choice(FOODS), "band": rng.choice(BANDS), "n": rng.randint(2, 9),
            "m": rng.randint(0, 9), "k": rng.randint(0, 9), "hour": rng.randint(6, 21),
            "minute": rng.choice(["05", "15", "30", "45"]), "city2": rng.choice(CITIES),
            "lang": rng.choice(LANGS), "food2": rng.choice(FOODS2)}


def conversations(count: int = 20, turns: int = 60, facts: int = 5,
                  seed: int = 19) -> list[Conversation]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        chosen = rng.sample(FACTS, facts)
        slots = sorted(rng.sample(range(turns - 5), facts))
        rows: list[tuple[str, str]] = []
        questions = []
        for i in range(turns):
            values = _values(rng)
            if slots and i == slots[0]:
                slots.pop(0)
                statement, question = chosen.pop()
                rows.append((statement.format(**values), "Got it, I'll remember that."))
                questions.append((question.format(**values), i))
            else:
                user, assistant = rng.choice(CHATTER)
                rows.append((user.format(**values), assistant.format(**values)))
        out.append(Conversation(rows, questions))
    return out


def corpus(documents: int = 300, facts: int = 60, seed: int = 19) -> Corpus:
    rng = random.Random(seed)
    docs, questions = [], []
    planted = set(rng.sample(range(documents), facts))
    for i in range(documents):
        dept = f"{rng.choice(DEPARTMENTS)} unit {i}"
        values = {"dept": dept, "n": rng.randint(1, 9), "amount": rng.randint(5, 90) * 100,
                  "hour": rng.randint(8, 17)}
        paragraphs = [" ".join(s.format(**values) for s in rng.sample(DOC_FILLER, 4))
                      for _ in range(rng.randint(2, 5))]
        if i in planted:
            statement, question = rng.choice(DOC_FACTS)
            paragraphs.insert(rng.randint(0, len(paragraphs)), statement.format(**values))
            questions.append((question.format(**values), f"doc-{i}"))
        docs.append((f"doc-{i}", f"# {dept.title()} policy\n\n" + "\n\n".join(paragraphs)))
    return Corpus(docs, questions)
