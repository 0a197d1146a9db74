"""Synthetic PII in sentences (Faker, seeded) and benign text dense with numbers, for measuring
the pii check. Every generated value is valid for its kind: cards are Luhn-valid numbers of each
scheme, phones are numbers libphonenumber calls valid, IBANs carry their check digits."""

from __future__ import annotations

import random
import string
from collections.abc import Callable

import phonenumbers
from faker import Faker

TEMPLATES = (
    "My {label} is {v}, please update my account.",
    "Can you check {v} for me? It's the {label} I used last week.",
    "{v}",
    "Here is the info you asked for -- {label}: {v}. Thanks!",
    "I tried to log in but the system rejected {v} again, what should I do?",
    'Ticket #{n}: customer wrote "use {v} for the refund" at {t}.',
)
LABELS = {"ssn": "social security number", "credit_card": "card number", "email": "email",
          "phone": "phone", "iban": "IBAN", "ip_address": "server IP", "api_key": "API key",
          "private_key": "key"}
# (scheme, Faker's card type or our own generator's prefix and length)
CARD_SCHEMES = (("visa16", "visa16"), ("visa13", "visa13"), ("visa19", "visa19"),
                ("mastercard", "mastercard"), ("amex", "amex"), ("discover", "discover"),
                ("diners", "diners"), ("jcb15", "jcb15"), ("jcb16", "jcb16"), ("maestro", "maestro"),
                ("mir", ("2200", 16)), ("unionpay", ("62", 16)), ("maestro19", ("6759", 19)))
_PHONE_LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "en_IN", "pt_BR", "ja_JP")
_REGIONS = {"en_US": "US", "en_GB": "GB", "de_DE": "DE", "fr_FR": "FR", "es_ES": "ES", "it_IT": "IT",
            "nl_NL": "NL", "en_IN": "IN", "pt_BR": "BR", "ja_JP": "JP"}


def luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    total = 0
    for index, char in enumerate(reversed(body)):
        d = int(char)
        if index % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def card(fake: Faker, rng: random.Random, kind) -> str:
    if isinstance(kind, str):
        number = fake.credit_card_number(kind)
    else:
        prefix, length = kind
        number = luhn_complete(prefix, length, rng)
    sep = rng.choice(["", " ", "-"])
    if not sep:
        return number
    if len(number) == 15 and number[:2] in ("34", "37"):
        return sep.join([number[:4], number[4:10], number[10:]])
    return sep.join(number[i:i + 4] for i in range(0, len(number), 4))


def phone(fakes: dict[str, Faker], rng: random.Random) -> str:
    """A valid number: US numbers as Faker writes them, others written internationally."""
    while True:
        locale = rng.choice(_PHONE_LOCALES)
        raw = fakes[locale].phone_number()
        try:
            number = phonenumbers.parse(raw.split("x")[0], _REGIONS[locale])
        except phonenumbers.NumberParseException:
            continue
        if not phonenumbers.is_valid_number(number):
            continue
        if locale == "en_US":
            return raw
        style = rng.choice([phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.E164])
        return phonenumbers.format_number(number, style)


def api_key(rng: random.Random) -> str:
    alnum = string.ascii_letters + string.digits

    def r(n: int, alphabet: str = alnum) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    kind = rng.choice(["openai", "aws", "github", "slack", "stripe", "google", "anthropic", "gitlab",
                       "huggingface", "jwt", "sendgrid", "npm"])
    return {"openai": "sk-proj-" + r(48), "aws": "AKIA" + r(16, string.ascii_uppercase + string.digits),
            "github": "ghp_" + r(36), "slack": "xoxb-" + r(11, string.digits) + "-" + r(24),
            "stripe": "sk_live_" + r(24), "google": "AIza" + r(35), "anthropic": "sk-ant-api03-" + r(60),
            "gitlab": "glpat-" + r(20), "huggingface": "hf_" + r(34, string.ascii_letters),
            "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJ" + r(30) + "." + r(43), "sendgrid": "SG." + r(22) + "." + r(43),
            "npm": "npm_" + r(36)}[kind]


def private_key(rng: random.Random) -> str:
    body = "\n".join("".join(rng.choice(string.ascii_letters + string.digits + "+/") for _ in range(64))
                     for _ in range(rng.randint(4, 25)))
    kind = rng.choice(["RSA ", "EC ", "OPENSSH ", ""])
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"


def positives(per_entity: int, seed: int = 7) -> list[tuple[str, str, int, int, str]]:
    """(entity, text, start, end, detail): each value placed in one of the templates."""
    Faker.seed(seed)
    rng = random.Random(seed)
    fake = Faker("en_US")
    fakes = {loc: Faker(loc) for loc in _PHONE_LOCALES}
    iban_fakes = [Faker(loc) for loc in ("de_DE", "fr_FR", "en_GB", "nl_NL", "es_ES", "it_IT")]
    schemes = list(CARD_SCHEMES)
    generators: dict[str, Callable[[], tuple[str, str]]] = {
        "ssn": lambda: (rng.choice([fake.ssn(), fake.ssn().replace("-", " ")]), ""),
        "credit_card": lambda: (lambda s: (card(fake, rng, s[1]), s[0]))(rng.choice(schemes)),
        "email": lambda: (rng.choice([fake.email(), fake.company_email(), fake.free_email()]), ""),
        "phone": lambda: (phone(fakes, rng), ""),
        "iban": lambda: (rng.choice(iban_fakes).iban(), ""),
        "ip_address": lambda: (rng.choice([fake.ipv4(), fake.ipv4_public(), fake.ipv6()]), ""),
        "api_key": lambda: (api_key(rng), ""),
        "private_key": lambda: (private_key(rng), ""),
    }
    out = []
    for entity, generate in generators.items():
        for _ in range(per_entity):
            value, detail = generate()
            text = rng.choice(TEMPLATES).format(label=LABELS[entity], v=value,
                                                n=rng.randint(1000, 99999), t=fake.time())
            start = text.index(value)
            out.append((entity, text, start, start + len(value), detail))
    return out


def hard_negatives(n: int, seed: int = 11) -> list[str]:
    """Benign text dense with numbers that look like PII to a pattern."""
    Faker.seed(seed)
    fake = Faker("en_US")
    rng = random.Random(seed)

    def not_luhn16() -> str:
        while True:
            digits = str(rng.choice([4, 5])) + "".join(rng.choice(string.digits) for _ in range(15))
            if luhn_complete(digits[:-1], 16, rng) != digits:
                return digits

    makers = [
        lambda: f"Order {rng.randint(10**8, 10**9 - 1)} ships on {fake.date()} at {fake.time()}.",
        lambda: f"The invoice total is ${rng.randint(1, 99999)}.{rng.randint(0, 99):02d} due {fake.date()}.",
        lambda: (f"Upgrade from version {rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)} to "
                 f"{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)} fixed it."),
        lambda: f"Tracking number {not_luhn16()} was delivered.",
        lambda: f"Population of the region grew to {rng.randint(10**6, 10**9):,} in {rng.randint(1900, 2025)}.",
        lambda: (f"Meet me at room {rng.randint(100, 999)}, building {rng.randint(1, 40)}, on "
                 f"{fake.day_of_week()} at {rng.randint(1, 12)}:{rng.randint(0, 59):02d}."),
        lambda: f"Compute {rng.randint(100, 999)} * {rng.randint(100, 999)} - {rng.randint(1000, 9999)} for me.",
        lambda: (f"ISBN 978-{rng.randint(0, 9)}-{rng.randint(100, 999)}-{rng.randint(10000, 99999)}-"
                 f"{rng.randint(0, 9)} is the second edition."),
        lambda: f"Commit {fake.sha1()[:12]} reverted the change from {fake.date()}.",
        lambda: f"Use the coordinates {fake.latitude()}, {fake.longitude()} for the map.",
        lambda: f"Set the timeout to {rng.randint(100, 90000)} ms and retry {rng.randint(1, 9)} times.",
        lambda: f"The zip code {fake.zipcode_plus4()} covers {fake.city()}.",
        lambda: fake.paragraph(nb_sentences=3),
    ]
    return [rng.choice(makers)() for _ in range(n)]
