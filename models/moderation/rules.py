"""Rules for what the toxicity models miss: links, e-mail addresses, phone numbers, promo codes, sales pitches,
shouting, and explicit threats ("I will find where you live").

Each rule is a regular expression (or a count) that fires or not; ``spam`` adds up the evidence of the spam rules
with the weights in ``SPAM_EVIDENCE`` (capped at 1), ``contact_link`` is 1 when any link/e-mail/phone rule fires and
``threat`` is ``THREAT_RULE_SCORE`` when a threat rule fires. The same patterns serve the description guard.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

_TLDS = (
    "com|net|org|biz|info|io|co|de|uk|fr|es|it|nl|eu|us|ru|cn|top|xyz|ly|me|shop|store|online|site|app|link|click|"
    "club|vip|win|bid|loan|example"
)
URL = re.compile(rf"(?i)\b(?:https?://|www\.)[^\s]+|\b[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:{_TLDS})\b(?:/[^\s]*)?")
EMAIL = re.compile(r"(?i)\b[\w.+-]+(?:@|\s?[\[(]at[\])]\s?)[\w-]+(?:\.[\w-]+)+\b")
PHONE = re.compile(
    r"(?:\+|\b00)\d[\d\s().-]{6,}\d"  # international prefix
    r"|(?i:\b(?:call|phone|tel|telephone|mobile|whatsapp|text|sms)\b\D{0,12})\(?\d[\d\s().-]{7,}\d"  # announced
    r"|\b0\d{2,4}[\s/-]?\d{5,8}\b"  # national format: 0151 23456789
)
PROMO_CODE = re.compile(
    r"(?i:\b(?:promo|coupon|discount|voucher|referral)\s*code\b)"
    r"|\b(?i:use|enter|with|apply)\s+(?i:the\s+)?(?i:code)\s*:?\s*[A-Z0-9]{4,}\b"
    r"|(?i:\b\d{1,2}\s?%\s?off\b)"
)
SPAM_PHRASE = re.compile(
    r"(?i)\b(?:buy now|order now|buy cheap|click (?:here|the link)|limited(?: time)? offer|act now|"
    r"free (?:gift|iphone|samples?|trial|followers)|earn (?:\S+ ){1,2}(?:a|per) (?:day|week|hour|month)|"
    r"work from home|make money|cheap (?:followers|pills|viagra|likes)|best (?:deal|price)s? online|"
    r"visit (?:my|our) (?:site|shop|store|page|profile)|dm me|wholesale prices?|crypto|bitcoin|casino|get yours)\b"
)
THREAT = re.compile(
    r"(?i)\b(?:i|we)(?:'ll|\s+will|\s+am going to|'m going to|\s+are going to|\s+gonna)\s+(?:\w+\s+){0,2}"
    r"(?:find|hurt|kill|beat|burn|hunt|destroy|come after|come for|make you pay)\b"
    r"|\b(?:find|know|found out) where you live\b"
)
EXCLAMATIONS = re.compile(r"!{3,}")

SPAM_EVIDENCE = {"promo_code": 0.6, "spam_phrase": 0.4, "link": 0.4, "shouting": 0.2, "exclamations": 0.2}
THREAT_RULE_SCORE = 0.9
SHOUTING_MIN_LETTERS = 15
SHOUTING_UPPER_SHARE = 0.7
RULE_NAMES = ("url", "email", "phone", "promo_code", "spam_phrase", "shouting", "exclamations", "threat_phrase")


def is_shouting(text: str) -> bool:
    """Mostly capital letters over at least ``SHOUTING_MIN_LETTERS`` letters."""
    letters = [char for char in text if char.isalpha()]
    return len(letters) >= SHOUTING_MIN_LETTERS and sum(c.isupper() for c in letters) >= SHOUTING_UPPER_SHARE * len(
        letters
    )


def contact_rules(text: str) -> list[str]:
    """Names of the link/e-mail/phone rules that fire on ``text`` (the description guard uses these too)."""
    return [name for name, pattern in (("url", URL), ("email", EMAIL), ("phone", PHONE)) if pattern.search(text)]


def fired_rules(text: str) -> list[str]:
    """Names (from ``RULE_NAMES``) of every rule that fires on ``text``."""
    fired = contact_rules(text)
    for name, pattern in (("promo_code", PROMO_CODE), ("spam_phrase", SPAM_PHRASE)):
        if pattern.search(text):
            fired.append(name)
    if is_shouting(text):
        fired.append("shouting")
    if EXCLAMATIONS.search(text):
        fired.append("exclamations")
    if THREAT.search(text):
        fired.append("threat_phrase")
    return fired


def rule_scores(fired: Sequence[str]) -> dict[str, float]:
    """Label scores in [0, 1] from the fired rules: ``spam``, ``contact_link`` and the rule part of ``threat``."""
    contact = any(name in fired for name in ("url", "email", "phone"))
    evidence = {name: name in fired for name in SPAM_EVIDENCE} | {"link": contact}
    spam = min(1.0, sum(float(weight) for name, weight in SPAM_EVIDENCE.items() if evidence[name]))
    return {
        "spam": spam,
        "contact_link": 1.0 if contact else 0.0,
        "threat": THREAT_RULE_SCORE if "threat_phrase" in fired else 0.0,
    }


def score_rules(texts: Sequence[str]) -> tuple[list[list[str]], dict[str, np.ndarray]]:
    """Fired rules per text and the rule label scores as arrays (``spam``, ``contact_link``, ``threat``)."""
    fired = [fired_rules(text) for text in texts]
    scores = [rule_scores(names) for names in fired]
    return fired, {label: np.array([row[label] for row in scores]) for label in ("spam", "contact_link", "threat")}


def rules_fingerprint() -> str:
    """sha256 of every pattern and weight: changes whenever a rule changes (part of the moderation version)."""
    parts = [pattern.pattern for pattern in (URL, EMAIL, PHONE, PROMO_CODE, SPAM_PHRASE, THREAT, EXCLAMATIONS)]
    parts += [repr(SPAM_EVIDENCE), repr((THREAT_RULE_SCORE, SHOUTING_MIN_LETTERS, SHOUTING_UPPER_SHARE))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
