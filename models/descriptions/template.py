"""The deterministic fallback description: the product's own fields in fixed sentences (``source = template``).

Only fields the guard considers safe are used (no instruction-like or contact-bearing values), at most
``MAX_TEMPLATE_ATTRIBUTES`` attributes, in the order delivered.
"""

from __future__ import annotations

from shopflow.models.descriptions.guard import unsafe_fields
from shopflow.models.descriptions.prompts import ProductFacts

MAX_TEMPLATE_ATTRIBUTES = 8


def template_description(facts: ProductFacts) -> str:
    """ "Oak Chef Knife 33 cm by Northwind, from our kitchen range. Color: oak; material: wood. Price: 29.90 EUR." """
    unsafe = unsafe_fields(facts)
    title = "This product" if "title" in unsafe else facts.title.strip()
    sentence = title
    if facts.brand and "brand" not in unsafe and facts.brand.lower() not in title.lower():
        sentence += f" by {facts.brand.strip()}"
    if facts.category and "category" not in unsafe:
        sentence += f", from our {facts.category.split('>')[-1].strip()} range"
    sentences = [sentence + "."]
    details = [
        f"{name.replace('_', ' ')}: {value}" for name, value in facts.attributes.items() if name not in unsafe and value
    ][:MAX_TEMPLATE_ATTRIBUTES]
    if details:
        text = "; ".join(details)
        sentences.append(text[:1].upper() + text[1:] + ".")
    if facts.price_text() and "price" not in unsafe:
        sentences.append(f"Price: {facts.price_text()}.")
    return " ".join(sentences)
