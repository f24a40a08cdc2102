"""A deterministic synthetic online shop, delivered into a landing folder one file per entity per day.

The generative model, in short:

* **Catalogue.** 12 categories x 4 styles (a colour/material family) = 48 taste clusters. A product has a
  category, a style, a brand (each brand sells mostly in one category, some in a second), a size, a price
  and a Zipf-like (Pareto) base popularity. Titles such as "Nordlys Oak Desk Lamp 40 cm" name the brand, the
  style word and the category noun, so text reveals the cluster. About 70% of the catalogue exists on the
  first day; the rest launches on later days with a popularity boost that fades over a few days. A few
  products change price or title on later days; the products file of a day is a delta (launches + changes),
  the first day's file is the full initial catalogue.
* **Users.** Each user has a sparse taste: Dirichlet weights over 2-3 clusters (zero elsewhere) plus a
  uniform exploration share, a favourite brand, a country and a lognormal activity level.
* **Sessions.** Poisson(users x sessions_per_user_day) sessions a day with diurnal start times; each session
  views a geometric number of products (mean 6): a cluster is drawn from the session's focus or the user's
  taste (or the user's favourite brand is browsed), then a launched product within it by popularity. Funnel:
  view -> add_to_cart (likelier when the product matches the user's taste) -> remove_from_cart or purchase.
  A session's purchases form one order placed at checkout.
* **After sales.** ~1% of order lines are cancelled the same day, ~3% returned 1-14 days later (a negative
  line, ``line_no`` + 1000), ~8% reviewed 0-5 days later (rating depends on taste match; ~2% abusive, ~2%
  spam texts, both valid rows).
* **Dirt.** ``dirt_rate`` of each file's rows are added as extra dirty rows, split over the entity's dirt
  kinds (``DIRT_KINDS``). A dirty row is either an exact duplicate of a clean row or a copy of one with
  exactly one defect and, for orders/clicks/reviews, a fresh id of its own; product dirt rows repeat an
  existing product id. Clean rows are therefore unique by key and the clean ground truth is well defined.

All randomness derives from ``np.random.SeedSequence(seed)``: one stream for the catalogue, one for the users
and one per day and purpose, so the same config writes byte-identical files. Generation is vectorised and
streams day by day: memory holds one day's rows plus the catalogue and O(users) state.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from shopflow.contract import CLICK_EVENT_TYPES, ENTITIES, ORDER_STATUSES, landing_path

Columns = dict[str, np.ndarray]  # column name -> equally long numpy arrays (one row per index)


@dataclass(frozen=True)
class DemoConfig:
    products: int = 500  # catalogue size at the end of the period (some launch later)
    users: int = 3000
    days: int = 30
    seed: int = 42
    start: date = date(2026, 1, 1)
    dirt_rate: float = 0.02  # fraction of rows per entity made dirty, split over that entity's dirt kinds
    sessions_per_user_day: float = 0.2  # expected sessions per user per day (scale knob)
    file_format: str = "csv"  # "csv" or "parquet"

    def validate(self) -> None:
        """Raise ValueError naming the first unusable setting."""
        if self.products < 1 or self.users < 1 or self.days < 1:
            raise ValueError("products, users and days must each be at least 1")
        if not 0 <= self.dirt_rate < 1:
            raise ValueError(f"dirt_rate must be in [0, 1), got {self.dirt_rate}")
        if self.sessions_per_user_day < 0:
            raise ValueError(f"sessions_per_user_day must be >= 0, got {self.sessions_per_user_day}")
        if self.file_format not in _SUFFIXES:
            raise ValueError(f"file_format must be one of {sorted(_SUFFIXES)}, got {self.file_format!r}")


@dataclass
class DemoSummary:
    rows: dict[str, int]  # entity -> rows written (all days, dirty rows included)
    dirt: dict[str, dict[str, int]]  # entity -> dirt kind -> rows injected
    files: list[Path] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "rows": dict(self.rows),
            "dirt": {entity: dict(kinds) for entity, kinds in self.dirt.items()},
            "dirty_rows": sum(sum(kinds.values()) for kinds in self.dirt.values()),
            "files": [str(path) for path in self.files],
        }


# ---------------------------------------------------------------- vocabulary


@dataclass(frozen=True)
class Style:
    word: str  # as it appears in titles
    color: str
    material: str


@dataclass(frozen=True)
class Category:
    name: str
    nouns: tuple[str, ...]
    styles: tuple[Style, Style, Style, Style]
    size_key: str  # attribute name, unit included (e.g. "height_cm")
    size_unit: str
    size_range: tuple[float, float]
    size_decimals: int
    median_price_eur: float
    price_spread: float  # sigma of the lognormal price


CATEGORIES: tuple[Category, ...] = (
    Category(
        "kitchen",
        ("Chef Knife", "Frying Pan", "Cutting Board", "Salad Bowl", "Coffee Grinder", "Spice Rack"),
        (
            Style("Oak", "oak", "wood"),
            Style("Steel", "silver", "stainless steel"),
            Style("Ceramic", "white", "ceramic"),
            Style("Copper", "copper", "copper"),
        ),
        "length_cm",
        "cm",
        (12, 50),
        0,
        30.0,
        0.6,
    ),
    Category(
        "outdoor",
        ("Camping Tent", "Hiking Backpack", "Sleeping Bag", "Trekking Poles", "Camp Stove", "Headlamp"),
        (
            Style("Forest Green", "green", "nylon"),
            Style("Glacier Blue", "blue", "polyester"),
            Style("Canvas", "beige", "canvas"),
            Style("Titanium", "grey", "titanium"),
        ),
        "weight_kg",
        "kg",
        (0.2, 6.0),
        1,
        70.0,
        0.7,
    ),
    Category(
        "toys",
        ("Building Blocks", "Plush Bear", "Jigsaw Puzzle", "Toy Car", "Doll House", "Kite"),
        (
            Style("Rainbow", "multicolour", "plastic"),
            Style("Wooden", "natural", "wood"),
            Style("Pastel", "pink", "cotton"),
            Style("Neon", "yellow", "plastic"),
        ),
        "height_cm",
        "cm",
        (8, 60),
        0,
        25.0,
        0.6,
    ),
    Category(
        "garden",
        ("Planter", "Watering Can", "Garden Hose", "Pruning Shears", "Bird Feeder", "Garden Bench"),
        (
            Style("Terracotta", "terracotta", "clay"),
            Style("Zinc", "grey", "zinc"),
            Style("Rattan", "brown", "rattan"),
            Style("Sage", "green", "recycled plastic"),
        ),
        "height_cm",
        "cm",
        (15, 120),
        0,
        35.0,
        0.7,
    ),
    Category(
        "beauty",
        ("Face Cream", "Shampoo", "Lip Balm", "Body Lotion", "Hair Oil", "Face Serum"),
        (
            Style("Rose", "pink", "glass bottle"),
            Style("Aloe", "green", "tube"),
            Style("Lavender", "purple", "glass jar"),
            Style("Charcoal", "black", "tube"),
        ),
        "volume_ml",
        "ml",
        (15, 500),
        0,
        18.0,
        0.5,
    ),
    Category(
        "office",
        ("Notebook", "Desk Organizer", "Fountain Pen", "Stapler", "Desk Chair", "Monitor Stand"),
        (
            Style("Walnut", "brown", "walnut wood"),
            Style("Matte Black", "black", "aluminium"),
            Style("Recycled", "grey", "recycled paper"),
            Style("Leather", "tan", "leather"),
        ),
        "width_cm",
        "cm",
        (10, 80),
        0,
        22.0,
        0.8,
    ),
    Category(
        "pets",
        ("Dog Bed", "Cat Tree", "Dog Leash", "Pet Bowl", "Cat Toy", "Scratching Post"),
        (
            Style("Tweed", "grey", "wool"),
            Style("Denim", "blue", "denim"),
            Style("Bamboo", "natural", "bamboo"),
            Style("Reflective", "orange", "nylon"),
        ),
        "length_cm",
        "cm",
        (20, 120),
        0,
        28.0,
        0.6,
    ),
    Category(
        "sports",
        ("Yoga Mat", "Dumbbell", "Running Shoes", "Tennis Racket", "Football", "Jump Rope"),
        (
            Style("Carbon", "black", "carbon fibre"),
            Style("Coral", "coral", "rubber"),
            Style("Arctic", "white", "foam"),
            Style("Volt", "lime", "synthetic mesh"),
        ),
        "weight_kg",
        "kg",
        (0.1, 20.0),
        1,
        40.0,
        0.7,
    ),
    Category(
        "books",
        (
            "Cookbook",
            "Thriller Novel",
            "Travel Guide",
            "Poetry Collection",
            "Picture Book",
            "Science Handbook",
        ),
        (
            Style("Hardcover", "navy", "hardcover"),
            Style("Paperback", "white", "paperback"),
            Style("Illustrated", "multicolour", "art paper"),
            Style("Pocket", "red", "paperback"),
        ),
        "pages",
        "pages",
        (80, 900),
        0,
        16.0,
        0.4,
    ),
    Category(
        "lighting",
        ("Desk Lamp", "Floor Lamp", "Pendant Light", "String Lights", "Wall Sconce", "LED Bulb"),
        (
            Style("Brass", "gold", "brass"),
            Style("Opal", "white", "opal glass"),
            Style("Oak", "oak", "wood"),
            Style("Industrial", "black", "steel"),
        ),
        "height_cm",
        "cm",
        (10, 180),
        0,
        55.0,
        0.6,
    ),
    Category(
        "bath",
        ("Bath Towel", "Shower Curtain", "Soap Dispenser", "Bath Mat", "Toothbrush Holder", "Bathrobe"),
        (
            Style("Linen", "beige", "linen"),
            Style("Marble", "white", "marble"),
            Style("Eucalyptus", "green", "organic cotton"),
            Style("Slate", "grey", "stone"),
        ),
        "width_cm",
        "cm",
        (30, 150),
        0,
        25.0,
        0.5,
    ),
    Category(
        "electronics",
        ("Bluetooth Speaker", "Headphones", "Power Bank", "Smart Plug", "USB Charger", "Webcam"),
        (
            Style("Graphite", "black", "aluminium"),
            Style("Arctic White", "white", "plastic"),
            Style("Midnight Blue", "blue", "aluminium"),
            Style("Rose Gold", "pink", "aluminium"),
        ),
        "weight_g",
        "g",
        (40, 1500),
        0,
        60.0,
        0.7,
    ),
)
STYLES_PER_CATEGORY = 4
N_CLUSTERS = len(CATEGORIES) * STYLES_PER_CATEGORY  # cluster = category * STYLES_PER_CATEGORY + style

BRANDS: tuple[str, ...] = (
    "Nordlys",
    "Kobberhus",
    "Alpenwerk",
    "Tidewater",
    "Brightfield",
    "Mossgrove",
    "Ferrox",
    "Lunaris",
    "Oakhaven",
    "Pebblestone",
    "Quillby",
    "Sundara",
    "Velora",
    "Wildmark",
    "Zephyr",
    "Hearthly",
    "Trailcraft",
    "Pawfield",
    "Bloomery",
    "Inkwell",
    "Solvik",
    "Kestrel",
    "Marlowe",
    "Tandem",
    "Glimmer",
    "Aurelia",
    "Birchwood",
    "Corvid",
    "Dunmore",
    "Fjella",
)
#: Each brand's main category and the one other category it also sells in (7 is coprime to 12, so every
#: category is some brands' second category, and never a brand's main one twice).
BRAND_MAIN_CATEGORY = np.arange(len(BRANDS)) % len(CATEGORIES)
BRAND_SECOND_CATEGORY = (np.arange(len(BRANDS)) * 7 + 5) % len(CATEGORIES)
MAIN_CATEGORY_BRAND_SHARE = 0.8  # products of a category made by a brand whose main category it is

COUNTRIES = ("DE", "FR", "NL", "BE", "AT", "ES", "IT", "PL", "SE", "IE")
COUNTRY_SHARE = np.array([25, 18, 12, 7, 6, 10, 10, 6, 4, 2]) / 100
CURRENCY = "EUR"

#: Relative traffic per hour of day (00-23h).
HOURLY_TRAFFIC = np.array(
    [
        1.0,
        0.6,
        0.4,
        0.3,
        0.3,
        0.5,
        1.0,
        2.0,
        3.0,
        3.5,
        3.8,
        4.0,
        4.2,
        4.0,
        3.8,
        3.8,
        4.0,
        4.5,
        5.5,
        6.5,
        7.0,
        6.0,
        4.0,
        2.0,
    ]
)
SECONDS_PER_DAY = 86_400
LAST_SECOND = SECONDS_PER_DAY - 1

# ---- catalogue dynamics
INITIAL_CATALOGUE_SHARE = 0.7  # products already on sale on the first day
POPULARITY_TAIL = 1.5  # Pareto shape of base popularity (smaller = a few products dominate more)
LAUNCH_BOOST = 4.0  # extra popularity factor of a product on its launch day...
LAUNCH_BOOST_DAYS = 3.0  # ...fading with this e-folding time in days
DAILY_UPDATE_RATE = 0.005  # share of on-sale products changed per day
REPRICE_SHARE = 0.6  # of those changes: price changes (the rest are title changes)
TITLE_SUFFIXES = np.array(["New Edition", "Bestseller", "Limited Edition", "2026 Model"], dtype=object)
DESCRIPTION_SHARE = 0.3  # products that come with a description sentence
CHARM_PRICE_SHARE = 0.7  # prices ending in .99

# ---- browsing behaviour
TASTE_CONCENTRATION = (4.0, 2.0, 1.0)  # Dirichlet alphas of a user's main, second and third cluster
TWO_CLUSTER_USER_SHARE = 0.4  # users whose taste has only two clusters
SAME_CATEGORY_SECOND_CLUSTER_SHARE = 0.5  # second cluster = same category, other style
EXPLORATION_SHARE = 0.1  # taste draws that pick any cluster uniformly
FAVOURITE_BRAND_FROM_MAIN_CATEGORY_SHARE = 0.7
ACTIVITY_SPREAD = 0.8  # sigma of the lognormal per-user activity level
MEAN_VIEWS_PER_SESSION = 6.0
SESSION_FOCUS_SHARE = 0.6  # views in the session's focus cluster (the rest draw afresh from the taste)
BRAND_BROWSE_SHARE = 0.1  # views picked among the user's favourite brand's products
MEAN_SECONDS_BETWEEN_VIEWS = 40.0
CART_RATE_TASTE_MATCH = 0.165  # P(add_to_cart | view) when the product is in one of the user's clusters
CART_RATE_OTHER = 0.08
CART_RATE_FAVOURITE_BRAND_BONUS = 0.04
REMOVE_RATE = 0.15  # carts later removed
PURCHASE_RATE = 0.4  # remaining carts bought
QUANTITY_SHARE = {1: 0.85, 2: 0.10, 3: 0.05}

# ---- after sales
CANCEL_RATE = 0.01  # order lines cancelled on the order day
RETURN_RATE = 0.03  # order lines returned on a later day
MAX_RETURN_DELAY_DAYS = 14
RETURN_LINE_OFFSET = 1000  # line_no of a cancellation/return = original line_no + 1000
REVIEW_RATE = 0.08  # order lines (not cancelled) reviewed 0..MAX_REVIEW_DELAY_DAYS days later
MAX_REVIEW_DELAY_DAYS = 5
ABUSIVE_REVIEW_SHARE = 0.02
SPAM_REVIEW_SHARE = 0.02
#: P(rating = 1..5), for a product in one of the reviewer's taste clusters (row 1) or not (row 0).
RATING_SHARE = np.array([[0.12, 0.15, 0.28, 0.28, 0.17], [0.03, 0.05, 0.12, 0.35, 0.45]])

# ---- id widths (digits after the prefix); event/session/order/review ids are unique across days
EVENT_ID_DIGITS = 12
SESSION_ID_DIGITS = 10
ORDER_ID_DIGITS = 10
REVIEW_ID_DIGITS = 10

_SUFFIXES = {"csv": ".csv", "parquet": ".parquet"}
_ENTITY_ORDER = ("products", "clicks", "orders", "reviews")  # write order within a day


# ---------------------------------------------------------------- randomness

_CATALOGUE_STREAM, _USERS_STREAM, _DAILY_STREAM = 0, 1, 2
_DAILY_PURPOSES = (
    "catalogue_updates",
    "sessions",
    "after_sales",
    "returns",
    "reviews",
    "dirt:products",
    "dirt:clicks",
    "dirt:orders",
    "dirt:reviews",
)


def _rng(seed: int, *key: int) -> np.random.Generator:
    """The generator of one stream; equal to ``SeedSequence(seed).spawn(...)`` children along ``key``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _day_rng(seed: int, day_index: int, purpose: str) -> np.random.Generator:
    return _rng(seed, _DAILY_STREAM, day_index, _DAILY_PURPOSES.index(purpose))


# ---------------------------------------------------------------- string columns (pyarrow, vectorised)


def _ids(prefix: str, numbers: np.ndarray, digits: int) -> pa.Array:
    """``prefix`` + zero-padded ``numbers``, e.g. ``_ids("P", [42], 5)`` -> "P00042"."""
    padded = pc.utf8_lpad(_ints(numbers), width=digits, padding="0")
    return pc.binary_join_element_wise(prefix, padded, "")


def _ints(values: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int64)).cast(pa.string())


def _euros(cents: np.ndarray) -> pa.Array:
    """Non-negative euro cents -> "12.50"."""
    cents = np.asarray(cents, dtype=np.int64)
    return pc.binary_join_element_wise(_ints(cents // 100), pc.utf8_lpad(_ints(cents % 100), width=2, padding="0"), ".")


def _timestamps(day: date, seconds: np.ndarray) -> pa.Array:
    """Seconds since ``day``'s midnight -> "YYYY-MM-DD HH:MM:SS"."""
    midnight = (day - date(1970, 1, 1)).days * SECONDS_PER_DAY
    epoch = midnight + np.asarray(seconds, dtype=np.int64)
    return pa.array(epoch, pa.timestamp("s")).cast(pa.string())


def _constant(text: str, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(text, pa.string()), n)


def _texts(values: Sequence[str | None] | np.ndarray) -> pa.Array:
    return pa.array(values, pa.string())


def _table(entity: str, columns: dict[str, pa.Array]) -> pa.Table:
    """An entity's table with every contract column, in contract order, all strings."""
    names = ENTITIES[entity].columns
    assert set(columns) == set(names), f"{entity}: {sorted(set(columns) ^ set(names))}"
    return pa.table([columns[name] for name in names], names=list(names))


# ---------------------------------------------------------------- catalogue


@dataclass
class Catalogue:
    """The products of the whole period; product index i has id ``ids[i]`` (P + i + 1)."""

    ids: pa.Array
    category: np.ndarray  # index into CATEGORIES
    cluster: np.ndarray  # category * STYLES_PER_CATEGORY + style
    brand: np.ndarray  # index into BRANDS
    launch_day: np.ndarray  # day index of the first delivery that lists the product
    popularity: np.ndarray  # Zipf-like (Pareto) base weight, >= 1
    price_cents: np.ndarray  # current price in euro cents (changes with updates)
    base_titles: np.ndarray  # object array of str, the launch title
    titles: np.ndarray  # object array of str, the current title
    attributes: np.ndarray  # object array of JSON object strings
    descriptions: np.ndarray  # object array of str or None
    phrases: pa.Array  # lower-case "style noun" words, used in review texts

    def weights_on(self, day_index: int) -> np.ndarray:
        """Sampling weight of each product on a day: 0 before launch, boosted just after it."""
        age = day_index - self.launch_day
        boost = 1.0 + LAUNCH_BOOST * np.exp(-np.maximum(age, 0) / LAUNCH_BOOST_DAYS)
        return np.where(age >= 0, self.popularity * boost, 0.0)


def build_catalogue(config: DemoConfig, rng: np.random.Generator) -> Catalogue:
    """Draw ``config.products`` products; ids are ordered by launch day."""
    n = config.products
    category_share = rng.dirichlet(np.full(len(CATEGORIES), 8.0))
    category = rng.choice(len(CATEGORIES), n, p=category_share)
    style = rng.integers(0, STYLES_PER_CATEGORY, n)
    noun = (rng.random(n) * np.array([len(CATEGORIES[c].nouns) for c in category])).astype(np.int64)
    brand = _draw_brands(category, rng)
    size = _draw_sizes(category, rng)
    price_cents = _draw_prices(category, rng)
    launch_day = _draw_launch_days(n, config.days, rng)
    popularity = rng.pareto(POPULARITY_TAIL, n) + 1.0
    has_description = rng.random(n) < DESCRIPTION_SHARE

    titles, attributes, descriptions, phrases = [], [], [], []
    for i in range(n):  # per product (not per event): builds the catalogue's texts once
        cat = CATEGORIES[category[i]]
        look = cat.styles[style[i]]
        noun_text = cat.nouns[noun[i]]
        size_value = round(float(size[i]), cat.size_decimals) if cat.size_decimals else int(size[i])
        size_text = f"{size_value} {cat.size_unit}"
        titles.append(f"{BRANDS[brand[i]]} {look.word} {noun_text} {size_text}")
        attributes.append(json.dumps({"color": look.color, "material": look.material, cat.size_key: size_value}))
        descriptions.append(
            f"A {look.color} {noun_text.lower()} made of {look.material} by {BRANDS[brand[i]]}, {size_text}."
            if has_description[i]
            else None
        )
        phrases.append(f"{look.word} {noun_text}".lower())

    digits = max(5, len(str(n)))
    return Catalogue(
        ids=_ids("P", np.arange(1, n + 1), digits),
        category=category,
        cluster=category * STYLES_PER_CATEGORY + style,
        brand=brand,
        launch_day=launch_day,
        popularity=popularity,
        price_cents=price_cents,
        base_titles=np.array(titles, dtype=object),
        titles=np.array(titles, dtype=object),
        attributes=np.array(attributes, dtype=object),
        descriptions=np.array(descriptions, dtype=object),
        phrases=_texts(phrases),
    )


def _draw_brands(category: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A brand per product: mostly one whose main category it is, else one with it as second category."""
    brand = np.empty(len(category), dtype=np.int64)
    from_main = rng.random(len(category)) < MAIN_CATEGORY_BRAND_SHARE
    pick = rng.random(len(category))
    for c in range(len(CATEGORIES)):
        main = np.flatnonzero(BRAND_MAIN_CATEGORY == c)
        second = np.flatnonzero(BRAND_SECOND_CATEGORY == c)
        for candidates, rows in ((main, (category == c) & from_main), (second, (category == c) & ~from_main)):
            brand[rows] = candidates[(pick[rows] * len(candidates)).astype(np.int64)]
    return brand


def _draw_sizes(category: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Size in the category's unit, log-uniform over its range."""
    low = np.log([CATEGORIES[c].size_range[0] for c in category])
    high = np.log([CATEGORIES[c].size_range[1] for c in category])
    return np.exp(low + rng.random(len(category)) * (high - low))


def _draw_prices(category: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lognormal price per category, in euro cents."""
    median = np.array([CATEGORIES[c].median_price_eur for c in category])
    spread = np.array([CATEGORIES[c].price_spread for c in category])
    return _shelf_price_cents(median * np.exp(spread * rng.standard_normal(len(category))), rng)


def _shelf_price_cents(euros: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Euro amounts -> shop prices in cents: most end in .99, the rest are rounded to the cent (>= 0.99)."""
    charm = np.maximum(np.round(euros), 1) * 100 - 1
    exact = np.maximum(np.round(euros * 100), 99)
    return np.where(rng.random(len(euros)) < CHARM_PRICE_SHARE, charm, exact).astype(np.int64)


def _draw_launch_days(n: int, days: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted launch day indices: ~70% on day 0, the rest uniform over the later days; product 0 on day 0."""
    later = rng.random(n) >= INITIAL_CATALOGUE_SHARE if days > 1 else np.zeros(n, dtype=bool)
    launch = np.where(later, rng.integers(1, max(days, 2), n), 0)
    launch[0] = 0  # the shop never opens empty
    return np.sort(launch)


def apply_catalogue_updates(catalogue: Catalogue, day_index: int, rng: np.random.Generator) -> np.ndarray:
    """Change the price or title of a few products launched before ``day_index``; return their indices."""
    on_sale = np.flatnonzero(catalogue.launch_day < day_index)
    changed = np.sort(rng.choice(on_sale, rng.binomial(len(on_sale), DAILY_UPDATE_RATE), replace=False))
    reprice = rng.random(len(changed)) < REPRICE_SHARE
    repriced, retitled = changed[reprice], changed[~reprice]
    factor = rng.uniform(0.8, 1.15, len(repriced))
    catalogue.price_cents[repriced] = _shelf_price_cents(catalogue.price_cents[repriced] / 100 * factor, rng)
    suffix = TITLE_SUFFIXES[rng.integers(0, len(TITLE_SUFFIXES), len(retitled))]
    catalogue.titles[retitled] = catalogue.base_titles[retitled] + " - " + suffix
    return changed


def products_table(catalogue: Catalogue, products: np.ndarray, day: date) -> pa.Table:
    """The products file of a day: one row per listed product, valid from the day's midnight."""
    n = len(products)
    return _table(
        "products",
        {
            "product_id": catalogue.ids.take(products),
            "title": _texts(catalogue.titles[products]),
            "category": _texts([category.name for category in CATEGORIES]).take(catalogue.category[products]),
            "brand": _texts(BRANDS).take(catalogue.brand[products]),
            "price": _euros(catalogue.price_cents[products]),
            "currency": _constant(CURRENCY, n),
            "attributes": _texts(catalogue.attributes[products]),
            "description": _texts(catalogue.descriptions[products]),
            "updated_at": _timestamps(day, np.zeros(n)),
        },
    )


# ---------------------------------------------------------------- users


@dataclass
class Users:
    """Latent user state; user index u has id ``ids[u]`` (U + u + 1)."""

    ids: pa.Array
    taste_clusters: np.ndarray  # (users, 3) cluster ids; an unused third slot repeats the main cluster
    taste_cumulative: np.ndarray  # (users, 3) cumulative Dirichlet weights of those clusters
    favourite_brand: np.ndarray
    country: np.ndarray  # index into COUNTRIES
    activity_cumulative: np.ndarray  # cumulative activity weights, for drawing who starts a session

    def draw_active(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` session owners, proportional to activity."""
        target = rng.random(n) * self.activity_cumulative[-1]
        owners = np.searchsorted(self.activity_cumulative, target, side="right")
        return np.minimum(owners, len(self.activity_cumulative) - 1)

    def draw_clusters(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One cluster per entry of ``users``, from that user's taste (with uniform exploration)."""
        slot = (rng.random(len(users))[:, None] >= self.taste_cumulative[users]).sum(axis=1)
        clusters = self.taste_clusters[users, np.minimum(slot, 2)]
        explore = rng.random(len(users)) < EXPLORATION_SHARE
        clusters[explore] = rng.integers(0, N_CLUSTERS, int(explore.sum()))
        return clusters

    def likes(self, users: np.ndarray, clusters: np.ndarray) -> np.ndarray:
        """Whether each cluster is one of its user's taste clusters."""
        return (self.taste_clusters[users] == clusters[:, None]).any(axis=1)


def build_users(config: DemoConfig, rng: np.random.Generator) -> Users:
    """Draw tastes (a main cluster, a second often in the same category, sometimes a third), brands, countries."""
    n = config.users
    main = rng.integers(0, N_CLUSTERS, n)
    other_style = (main % STYLES_PER_CATEGORY + rng.integers(1, STYLES_PER_CATEGORY, n)) % STYLES_PER_CATEGORY
    same_category = main - main % STYLES_PER_CATEGORY + other_style
    second = np.where(rng.random(n) < SAME_CATEGORY_SECOND_CLUSTER_SHARE, same_category, rng.integers(0, N_CLUSTERS, n))
    two_clusters = rng.random(n) < TWO_CLUSTER_USER_SHARE
    third = np.where(two_clusters, main, rng.integers(0, N_CLUSTERS, n))
    weights = rng.dirichlet(TASTE_CONCENTRATION, n)
    weights[two_clusters, 2] = 0.0
    weights /= weights.sum(axis=1, keepdims=True)
    return Users(
        ids=_ids("U", np.arange(1, n + 1), max(7, len(str(n)))),
        taste_clusters=np.stack([main, second, third], axis=1).astype(np.int16),
        taste_cumulative=np.cumsum(weights, axis=1).astype(np.float32),
        favourite_brand=_draw_favourite_brands(main // STYLES_PER_CATEGORY, rng),
        country=rng.choice(len(COUNTRIES), n, p=COUNTRY_SHARE).astype(np.int8),
        activity_cumulative=np.cumsum(rng.lognormal(0.0, ACTIVITY_SPREAD, n)),
    )


def _draw_favourite_brands(main_category: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mostly a brand whose main category is the user's main category, else any brand."""
    favourite = rng.integers(0, len(BRANDS), len(main_category))
    from_category = rng.random(len(main_category)) < FAVOURITE_BRAND_FROM_MAIN_CATEGORY_SHARE
    pick = rng.random(len(main_category))
    for c in range(len(CATEGORIES)):
        candidates = np.flatnonzero(BRAND_MAIN_CATEGORY == c)
        rows = from_category & (main_category == c)
        favourite[rows] = candidates[(pick[rows] * len(candidates)).astype(np.int64)]
    return favourite.astype(np.int16)


# ---------------------------------------------------------------- browsing


class GroupSampler:
    """Draws an item within a group (cluster, brand) with probability proportional to its weight.

    Only items with positive weight can be drawn; call ``has_items`` before ``sample``.
    """

    def __init__(self, groups: np.ndarray, weights: np.ndarray, n_groups: int):
        candidates = np.flatnonzero(weights > 0)
        self._items = candidates[np.argsort(groups[candidates], kind="stable")]
        self._cumulative = np.cumsum(weights[self._items])
        counts = np.bincount(groups[self._items], minlength=n_groups)
        self._end = np.cumsum(counts)
        self._start = self._end - counts
        mass_until = np.concatenate(([0.0], self._cumulative))
        self._mass_before = mass_until[self._start]
        self._mass = mass_until[self._end] - self._mass_before

    def has_items(self, groups: np.ndarray) -> np.ndarray:
        return self._end[groups] > self._start[groups]

    def sample(self, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        target = self._mass_before[groups] + rng.random(len(groups)) * self._mass[groups]
        position = np.searchsorted(self._cumulative, target, side="right")
        return self._items[np.clip(position, self._start[groups], self._end[groups] - 1)]


def _diurnal_seconds(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` seconds of the day following HOURLY_TRAFFIC."""
    hour = rng.choice(24, n, p=HOURLY_TRAFFIC / HOURLY_TRAFFIC.sum())
    return hour * 3600 + rng.integers(0, 3600, n)


def _run_starts(values: np.ndarray) -> np.ndarray:
    """True where a run of equal consecutive values begins."""
    starts = np.ones(len(values), dtype=bool)
    starts[1:] = values[1:] != values[:-1]
    return starts


def _rank_within_runs(values: np.ndarray) -> np.ndarray:
    """1-based position of each entry within its run of equal consecutive values."""
    index = np.arange(len(values))
    return index - np.maximum.accumulate(np.where(_run_starts(values), index, 0)) + 1


def _seconds_since_session_start(views_per_session: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per view (sessions back to back): seconds since its session's first view; exponential gaps."""
    gaps = rng.exponential(MEAN_SECONDS_BETWEEN_VIEWS, int(views_per_session.sum()))
    first_view = np.cumsum(views_per_session) - views_per_session
    gaps[first_view] = 0.0
    elapsed = np.cumsum(gaps)
    return elapsed - np.repeat(elapsed[first_view], views_per_session)


def _viewed_products(
    users: Users,
    catalogue: Catalogue,
    viewer: np.ndarray,
    session_focus: np.ndarray,
    day_index: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """A launched product per view: from the session focus, the user's taste or the favourite brand."""
    weights = catalogue.weights_on(day_index)
    by_cluster = GroupSampler(catalogue.cluster, weights, N_CLUSTERS)
    by_brand = GroupSampler(catalogue.brand, weights, len(BRANDS))

    clusters = np.where(rng.random(len(viewer)) < SESSION_FOCUS_SHARE, session_focus, users.draw_clusters(viewer, rng))
    stocked = np.flatnonzero(by_cluster.has_items(np.arange(N_CLUSTERS)))
    empty = ~by_cluster.has_items(clusters)
    clusters[empty] = stocked[rng.integers(0, len(stocked), int(empty.sum()))]
    products = by_cluster.sample(clusters, rng)

    brands = users.favourite_brand[viewer]
    brand_browse = (rng.random(len(viewer)) < BRAND_BROWSE_SHARE) & by_brand.has_items(brands)
    products[brand_browse] = by_brand.sample(brands[brand_browse], rng)
    return products


def simulate_sessions(
    config: DemoConfig, users: Users, catalogue: Catalogue, day_index: int, rng: np.random.Generator
) -> tuple[Columns, Columns]:
    """One day of browsing -> (clicks, purchased lines).

    clicks: session (day-local), user, product, event (index into CLICK_EVENT_TYPES), second.
    purchased lines (ordered by checkout, then cart order): session, user, product, second, liked.
    Seconds count from the day's midnight.
    """
    n_sessions = int(rng.poisson(config.users * config.sessions_per_user_day))
    owner = users.draw_active(n_sessions, rng)
    start = _diurnal_seconds(n_sessions, rng).astype(np.float64)
    views_per_session = rng.geometric(1 / MEAN_VIEWS_PER_SESSION, n_sessions)

    session = np.repeat(np.arange(n_sessions), views_per_session)
    viewer = owner[session]
    focus = users.draw_clusters(owner, rng)[session]
    product = _viewed_products(users, catalogue, viewer, focus, day_index, rng)
    view_time = start[session] + _seconds_since_session_start(views_per_session, rng)

    liked = users.likes(viewer, catalogue.cluster[product])
    favourite = users.favourite_brand[viewer] == catalogue.brand[product]
    cart_rate = np.where(liked, CART_RATE_TASTE_MATCH, CART_RATE_OTHER) + CART_RATE_FAVOURITE_BRAND_BONUS * favourite
    carted = np.flatnonzero(rng.random(len(product)) < cart_rate)
    removed = rng.random(len(carted)) < REMOVE_RATE
    bought = ~removed & (rng.random(len(carted)) < PURCHASE_RATE)
    cart_time = view_time[carted] + 5 + rng.exponential(20.0, len(carted))
    remove_time = cart_time[removed] + 10 + rng.exponential(120.0, int(removed.sum()))

    last_activity = start.copy()
    np.maximum.at(last_activity, session, view_time)
    np.maximum.at(last_activity, session[carted], cart_time)
    np.maximum.at(last_activity, session[carted[removed]], remove_time)
    checkout = last_activity + 30 + rng.exponential(60.0, n_sessions)

    events = (  # (the views an event belongs to, event type, its times)
        (np.arange(len(product)), "view", view_time),
        (carted, "add_to_cart", cart_time),
        (carted[removed], "remove_from_cart", remove_time),
        (carted[bought], "purchase", checkout[session[carted[bought]]]),
    )
    of_view = np.concatenate([views for views, _, _ in events])
    clicks = {
        "session": session[of_view],
        "user": viewer[of_view],
        "product": product[of_view],
        "event": np.concatenate([np.full(len(views), CLICK_EVENT_TYPES.index(e)) for views, e, _ in events]),
        "second": _whole_seconds(np.concatenate([times for _, _, times in events])),
    }
    bought_views = carted[bought]
    checkout_seconds = _whole_seconds(checkout[session[bought_views]])
    line_order = np.lexsort((bought_views, session[bought_views], checkout_seconds))
    bought_views = bought_views[line_order]
    purchases = {
        "session": session[bought_views],
        "user": viewer[bought_views],
        "product": product[bought_views],
        "second": checkout_seconds[line_order],
        "liked": liked[bought_views],
    }
    return clicks, purchases


def _whole_seconds(seconds: np.ndarray) -> np.ndarray:
    """Floor to whole seconds, capped at the day's last second."""
    return np.minimum(seconds, LAST_SECOND).astype(np.int64)


def clicks_table(
    clicks: Columns, catalogue: Catalogue, users: Users, day: date, first_event: int, first_session: int
) -> pa.Table:
    """Click rows in time order; event and session ids count on from ``first_event`` and ``first_session``."""
    order = np.lexsort((clicks["event"], clicks["session"], clicks["second"]))
    n = len(order)
    return _table(
        "clicks",
        {
            "user_id": users.ids.take(clicks["user"][order]),
            "product_id": catalogue.ids.take(clicks["product"][order]),
            "event_type": _texts(CLICK_EVENT_TYPES).take(clicks["event"][order]),
            "occurred_at": _timestamps(day, clicks["second"][order]),
            "event_id": _ids("E", first_event + np.arange(n), EVENT_ID_DIGITS),
            "session_id": _ids("S", first_session + clicks["session"][order], SESSION_ID_DIGITS),
        },
    )


# ---------------------------------------------------------------- orders and after sales


def _concat(parts: Sequence[Columns]) -> Columns:
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


class Backlog:
    """Rows that fall due on a later day (returns, reviews), held until that day's delivery."""

    def __init__(self, last_day_index: int):
        self._last_day_index = last_day_index
        self._due: dict[int, list[Columns]] = defaultdict(list)

    def add(self, due_day: np.ndarray, rows: Columns) -> None:
        """Keep ``rows`` for their due day; rows due after the period are never delivered."""
        for day_index in np.unique(due_day[due_day <= self._last_day_index]):
            on_day = due_day == day_index
            self._due[int(day_index)].append({name: values[on_day] for name, values in rows.items()})

    def pop(self, day_index: int) -> Columns | None:
        parts = self._due.pop(day_index, [])
        return _concat(parts) if parts else None


def order_lines(purchases: Columns, catalogue: Catalogue, first_order: int, rng: np.random.Generator) -> Columns:
    """Purchased lines -> placed order lines: one order per session, numbered in checkout order."""
    new_order = _run_starts(purchases["session"])
    quantities = np.array(list(QUANTITY_SHARE))
    return {
        "order": first_order + np.cumsum(new_order) - 1,
        "line_no": _rank_within_runs(purchases["session"]),
        "user": purchases["user"],
        "product": purchases["product"],
        "quantity": rng.choice(quantities, len(new_order), p=list(QUANTITY_SHARE.values())),
        "price_cents": catalogue.price_cents[purchases["product"]],
        "second": purchases["second"],
        "status": np.full(len(new_order), ORDER_STATUSES.index("placed")),
        "liked": purchases["liked"],
    }


def settle_after_sales(
    placed: Columns, day_index: int, returns: Backlog, reviews: Backlog, rng: np.random.Generator
) -> Columns:
    """Decide each placed line's fate: return today's cancellations, queue later returns and reviews."""
    n = len(placed["order"])
    fate = rng.random(n)
    cancelled = fate < CANCEL_RATE
    returned = (fate >= CANCEL_RATE) & (fate < CANCEL_RATE + RETURN_RATE)

    cancellations = _negative_lines(placed, cancelled, "cancelled")
    cancel_delay = 60 + rng.exponential(1800.0, int(cancelled.sum()))
    cancellations["second"] = _whole_seconds(cancellations["second"] + cancel_delay)

    returns.add(
        day_index + rng.integers(1, MAX_RETURN_DELAY_DAYS + 1, int(returned.sum())),
        _negative_lines(placed, returned, "returned"),
    )

    reviewed = ~cancelled & (rng.random(n) < REVIEW_RATE)
    delay = rng.integers(0, MAX_REVIEW_DELAY_DAYS + 1, int(reviewed.sum()))
    reviews.add(
        day_index + delay,
        {
            "user": placed["user"][reviewed],
            "product": placed["product"][reviewed],
            "liked": placed["liked"][reviewed],
            "earliest_second": np.where(delay == 0, placed["second"][reviewed], 0),
        },
    )
    return cancellations


def _negative_lines(placed: Columns, selected: np.ndarray, status: str) -> Columns:
    """Copies of the selected lines that undo them: line_no + 1000, negative quantity, the given status."""
    lines = {name: values[selected] for name, values in placed.items()}
    lines["line_no"] = lines["line_no"] + RETURN_LINE_OFFSET
    lines["quantity"] = -lines["quantity"]
    lines["status"] = np.full(int(selected.sum()), ORDER_STATUSES.index(status))
    return lines


def orders_table(lines: Columns, catalogue: Catalogue, users: Users, day: date) -> pa.Table:
    """Order rows sorted by time, order and line."""
    order = np.lexsort((lines["line_no"], lines["order"], lines["second"]))
    user = lines["user"][order]
    return _table(
        "orders",
        {
            "order_id": _ids("O", lines["order"][order], ORDER_ID_DIGITS),
            "user_id": users.ids.take(user),
            "product_id": catalogue.ids.take(lines["product"][order]),
            "quantity": _ints(lines["quantity"][order]),
            "unit_price": _euros(lines["price_cents"][order]),
            "ordered_at": _timestamps(day, lines["second"][order]),
            "line_no": _ints(lines["line_no"][order]),
            "currency": _constant(CURRENCY, len(order)),
            "status": _texts(ORDER_STATUSES).take(lines["status"][order]),
            "country": _texts(COUNTRIES).take(users.country[user]),
        },
    )


# ---------------------------------------------------------------- reviews

NEGATIVE, NEUTRAL, POSITIVE, ABUSIVE, SPAM = range(5)  # review kinds, the group index of each template bank


class TemplateBank:
    """Sentences grouped by review kind, each with at most one "{item}" slot; fills a whole column at once."""

    def __init__(self, groups: Sequence[Sequence[str]]):
        sizes = np.array([len(group) for group in groups])
        self._size = sizes
        self._offset = np.cumsum(sizes) - sizes
        pieces = [(text.split("{item}") + [""])[:2] for group in groups for text in group]
        self._before = _texts([before for before, _ in pieces])
        self._after = _texts([after for _, after in pieces])
        self._has_item = np.array(["{item}" in text for group in groups for text in group])

    def fill(self, kinds: np.ndarray, items: pa.Array, rng: np.random.Generator) -> pa.Array:
        """A random sentence of each row's kind, with the row's item phrase in its slot."""
        choice = self._offset[kinds] + (rng.random(len(kinds)) * self._size[kinds]).astype(np.int64)
        item = pc.if_else(pa.array(self._has_item[choice]), items, "")
        return pc.binary_join_element_wise(self._before.take(choice), item, self._after.take(choice), "")


REVIEW_TITLES = TemplateBank(
    [
        ["Disappointed", "Poor quality", "Not as described", "Broke quickly", "Bad {item}"],
        ["It's okay", "Average {item}", "Fine for the price", "Mixed feelings"],
        ["Love it", "Great {item}", "Excellent quality", "Very happy", "Perfect gift"],
        ["Garbage", "You idiots", "Total crap", "Scammers"],
        ["Best deal online", "FREE GIFT", "Limited offer", "Great {item}"],
    ]
)
REVIEW_OPENINGS = TemplateBank(
    [
        [
            "The {item} broke after a week.",
            "Disappointed with this {item}.",
            "My {item} arrived scratched.",
            "The {item} looks nothing like the photos.",
            "Would not recommend this {item}.",
        ],
        [
            "The {item} is okay for the price.",
            "Decent {item}, nothing special.",
            "My {item} works, but it is smaller than expected.",
            "The {item} looks nice but feels a bit cheap.",
        ],
        [
            "I love this {item}.",
            "The {item} is even better than the photos.",
            "Really pleased with my new {item}.",
            "This {item} does exactly what I wanted.",
            "Bought the {item} as a gift and it was a hit.",
            "Solid {item}, well made and good value.",
        ],
        [
            "This is garbage and you are idiots.",
            "What a load of crap, this {item} is junk.",
            "Worst {item} ever, you clowns.",
            "Absolute trash, you bunch of morons.",
            "Damn useless {item}, what a scam.",
        ],
        [
            "Use code SAVE50 at www.cheap-deals.biz for half price!",
            "Great {item}! Get yours 70% off with promo code FREESHIP70 at www.discount-hub.net",
            "Buy cheap {item}s at http://bestprice-outlet.example.com now!!!",
            "Love it.",
            "Nice {item}.",
        ],
    ]
)
REVIEW_DETAILS = TemplateBank(
    [
        [
            " The material feels flimsy.",
            " Customer service never answered my e-mail.",
            " It stopped working after two uses.",
            " Returned it the next day.",
            " The size is completely wrong.",
        ],
        [
            " Delivery took longer than promised.",
            " The colour is slightly different from the picture.",
            " Does the job.",
            " Instructions could be clearer.",
            "",
        ],
        [
            " The quality feels premium.",
            " Delivery was quick and the packaging was neat.",
            " It matches the rest of my things perfectly.",
            " Easy to clean and looks great.",
            " Worth every cent.",
            "",
        ],
        [
            " Your staff are morons.",
            " Whoever sells this is an idiot and a scammer.",
            " Shut up about quality, you liars.",
            "",
        ],
        [
            " Contact me at deals4you@mailbox.example for wholesale prices.",
            " Call +49 151 2345 6789 for free samples.",
            " Visit bit.ly/quick-cash-now and earn 500 EUR a day from home.",
            " Use code SAVE50 at www.cheap-deals.biz",
        ],
    ]
)
REVIEW_CLOSINGS = TemplateBank(
    [
        [" Avoid.", " Waste of money.", ""],
        [" Three stars.", " Might buy again if on sale.", ""],
        [" Would buy again.", " Highly recommended.", " Five stars from me.", ""],
        [" Pathetic.", ""],
        [" Limited offer!!!", ""],
    ]
)


def _review_kinds_and_ratings(liked: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per review: its kind (abusive, spam, or the sentiment of its rating) and its 1-5 rating."""
    cumulative = np.cumsum(RATING_SHARE, axis=1)[liked.astype(np.int64)]
    rating = 1 + (rng.random(len(liked))[:, None] >= cumulative[:, :-1]).sum(axis=1)
    kind = np.select([rating <= 2, rating == 3], [NEGATIVE, NEUTRAL], POSITIVE)
    special = rng.random(len(liked))
    abusive = special < ABUSIVE_REVIEW_SHARE
    spam = (special >= ABUSIVE_REVIEW_SHARE) & (special < ABUSIVE_REVIEW_SHARE + SPAM_REVIEW_SHARE)
    kind[abusive], rating[abusive] = ABUSIVE, 1
    kind[spam], rating[spam] = SPAM, 5
    return kind, rating


def reviews_table(
    due: Columns, catalogue: Catalogue, users: Users, day: date, first_review: int, rng: np.random.Generator
) -> pa.Table:
    """Reviews written today, in time order; review ids count on from ``first_review``."""
    seconds = due["earliest_second"] + rng.random(len(due["user"])) * (SECONDS_PER_DAY - due["earliest_second"])
    order = np.argsort(_whole_seconds(seconds), kind="stable")
    product = due["product"][order]
    kind, rating = _review_kinds_and_ratings(due["liked"][order], rng)
    items = catalogue.phrases.take(product)
    body = pc.binary_join_element_wise(
        REVIEW_OPENINGS.fill(kind, items, rng),
        REVIEW_DETAILS.fill(kind, items, rng),
        REVIEW_CLOSINGS.fill(kind, items, rng),
        "",
    )
    return _table(
        "reviews",
        {
            "review_id": _ids("R", first_review + np.arange(len(order)), REVIEW_ID_DIGITS),
            "product_id": catalogue.ids.take(product),
            "body": body,
            "created_at": _timestamps(day, _whole_seconds(seconds[order])),
            "user_id": users.ids.take(due["user"][order]),
            "rating": _ints(rating),
            "title": REVIEW_TITLES.fill(kind, items, rng),
        },
    )


def _empty_reviews() -> Columns:
    return {name: np.zeros(0, dtype=np.int64) for name in ("user", "product", "liked", "earliest_second")}


# ---------------------------------------------------------------- dirt

BadValues = Callable[[pa.Array, np.random.Generator, date], pa.Array]  # (column values, rng, day) -> bad values


@dataclass(frozen=True)
class Dirt:
    """How one dirt kind corrupts a copy of a clean row."""

    column: str | None = None  # the column made bad; None = an exact duplicate
    bad_values: BadValues | None = None
    from_previous_day: bool = False  # duplicate a row of the previous day's file instead of today's


def _null(values: pa.Array, rng: np.random.Generator, day: date) -> pa.Array:
    return pa.nulls(len(values), pa.string())


def _one_of(*options: str) -> BadValues:
    def bad_values(values: pa.Array, rng: np.random.Generator, day: date) -> pa.Array:
        return _texts(options).take(rng.integers(0, len(options), len(values)))

    return bad_values


def _negated(values: pa.Array, rng: np.random.Generator, day: date) -> pa.Array:
    return pc.binary_join_element_wise("-", values, "")


def _comma_decimal_with_currency(values: pa.Array, rng: np.random.Generator, day: date) -> pa.Array:
    """ "12.50" -> "12,50 EUR" """
    return pc.binary_join_element_wise(pc.replace_substring(values, ".", ","), " EUR", "")


def _unknown_product(values: pa.Array, rng: np.random.Generator, day: date) -> pa.Array:
    return _ids("PX", rng.integers(0, 100_000, len(values)), 5)


def _a_year_later(values: pa.Array, rng: np.random.Generator, day: date) -> pa.Array:
    """Same time of day, 365 days after the delivery day."""
    later = (day + timedelta(days=365)).isoformat()
    return pc.binary_join_element_wise(later, pc.utf8_slice_codeunits(values, 11, 19), " ")


_UNPARSABLE_TIMESTAMP = _one_of("31/02/2026 25:61", "not a date")
_ABSURD_PRICE = _one_of("9999999.00")

DIRT_KINDS: dict[str, dict[str, Dirt]] = {
    "orders": {
        "duplicate_row": Dirt(),
        "duplicate_across_days": Dirt(from_previous_day=True),
        "null_user_id": Dirt("user_id", _null),
        "null_product_id": Dirt("product_id", _null),
        "zero_quantity": Dirt("quantity", _one_of("0")),
        "absurd_quantity": Dirt("quantity", _one_of("100000", "250000", "1000000")),
        "negative_price": Dirt("unit_price", _negated),
        "absurd_price": Dirt("unit_price", _ABSURD_PRICE),
        "unknown_product": Dirt("product_id", _unknown_product),
        "future_timestamp": Dirt("ordered_at", _a_year_later),
        "unparsable_timestamp": Dirt("ordered_at", _UNPARSABLE_TIMESTAMP),
        "bad_quantity_type": Dirt("quantity", _one_of("two", "one", "three")),
        "bad_price_type": Dirt("unit_price", _comma_decimal_with_currency),
    },
    "clicks": {
        "duplicate_event": Dirt(),
        "null_user_id": Dirt("user_id", _null),
        "null_product_id": Dirt("product_id", _null),
        "unknown_product": Dirt("product_id", _unknown_product),
        "bad_event_type": Dirt("event_type", _one_of("hover", "scroll")),
        "future_timestamp": Dirt("occurred_at", _a_year_later),
        "unparsable_timestamp": Dirt("occurred_at", _UNPARSABLE_TIMESTAMP),
    },
    "products": {
        "null_title": Dirt("title", _null),
        "bad_attributes": Dirt("attributes", _one_of("[1, 2]", "{broken")),
        "negative_price": Dirt("price", _negated),
        "absurd_price": Dirt("price", _ABSURD_PRICE),
        "bad_price_type": Dirt("price", _comma_decimal_with_currency),
        "duplicate_row": Dirt(),
    },
    "reviews": {
        "rating_out_of_range": Dirt("rating", _one_of("0", "7")),
        "bad_rating_type": Dirt("rating", _one_of("five", "four", "one")),
        "empty_body": Dirt("body", _one_of("")),
        "unknown_product": Dirt("product_id", _unknown_product),
        "duplicate_review_id": Dirt(),
        "future_timestamp": Dirt("created_at", _a_year_later),
        "unparsable_timestamp": Dirt("created_at", _UNPARSABLE_TIMESTAMP),
    },
}

#: The id a defective (non-duplicate) copy gets anew, so that clean rows stay unique by key; products keep
#: theirs (a dirty product row is an extra version of an existing product).
FRESH_ID_COLUMN = {"orders": "order_id", "clicks": "event_id", "reviews": "review_id"}


def _with_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def inject_dirt(
    entity: str,
    clean: pa.Table,
    previous_clean: pa.Table | None,
    rate: float,
    day: date,
    fresh_ids: Callable[[int], pa.Array] | None,
    rng: np.random.Generator,
) -> tuple[pa.Table, dict[str, int]]:
    """Add ~``rate`` x rows dirty copies, split evenly over the entity's kinds, at random positions.

    Returns the delivered table (clean rows keep their order) and the number of rows injected per kind.
    """
    kinds = DIRT_KINDS[entity]
    copies: list[pa.Table] = []
    counts: dict[str, int] = {}
    for kind, dirt in kinds.items():
        source = previous_clean if dirt.from_previous_day else clean
        has_source = source is not None and source.num_rows > 0
        counts[kind] = int(rng.binomial(clean.num_rows, rate / len(kinds))) if has_source else 0
        if counts[kind] == 0:
            continue
        rows = source.take(rng.integers(0, source.num_rows, counts[kind]))
        if dirt.column is not None:
            rows = _with_column(rows, dirt.column, dirt.bad_values(rows[dirt.column].combine_chunks(), rng, day))
            if fresh_ids is not None:
                rows = _with_column(rows, FRESH_ID_COLUMN[entity], fresh_ids(counts[kind]))
        copies.append(rows)
    if not copies:
        return clean, counts
    delivered = pa.concat_tables([clean, *copies])
    n_dirty = delivered.num_rows - clean.num_rows
    position = np.concatenate([np.arange(clean.num_rows), rng.random(n_dirty) * clean.num_rows])
    return delivered.take(np.argsort(position, kind="stable")), counts


# ---------------------------------------------------------------- the shop, day by day


@dataclass
class _Counters:
    """Next number of each id sequence that runs across days."""

    event: int = 1
    session: int = 1
    order: int = 1
    review: int = 1

    def take(self, sequence: str, n: int) -> int:
        """Reserve ``n`` numbers of a sequence; return the first."""
        first = getattr(self, sequence)
        setattr(self, sequence, first + n)
        return first

    def fresh_ids(self, entity: str) -> Callable[[int], pa.Array] | None:
        """Issuer of new ids for an entity's defective copies (None for products)."""
        prefix, sequence, digits = {
            "orders": ("O", "order", ORDER_ID_DIGITS),
            "clicks": ("E", "event", EVENT_ID_DIGITS),
            "reviews": ("R", "review", REVIEW_ID_DIGITS),
        }.get(entity, (None, None, 0))
        if prefix is None:
            return None
        return lambda n: _ids(prefix, self.take(sequence, n) + np.arange(n), digits)


class _Shop:
    """The shop's state across days: catalogue, users, id counters and the after-sales backlogs."""

    def __init__(self, config: DemoConfig):
        self.config = config
        self.catalogue = build_catalogue(config, _rng(config.seed, _CATALOGUE_STREAM))
        self.users = build_users(config, _rng(config.seed, _USERS_STREAM))
        self.counters = _Counters()
        self.returns = Backlog(last_day_index=config.days - 1)
        self.reviews = Backlog(last_day_index=config.days - 1)

    def clean_delivery(self, day_index: int) -> dict[str, pa.Table]:
        """Simulate one day; return each entity's clean rows for that day."""
        config, catalogue, users, counters = self.config, self.catalogue, self.users, self.counters
        day = config.start + timedelta(days=day_index)

        changed = apply_catalogue_updates(catalogue, day_index, _day_rng(config.seed, day_index, "catalogue_updates"))
        listed = np.union1d(np.flatnonzero(catalogue.launch_day == day_index), changed)

        clicks, purchases = simulate_sessions(
            config, users, catalogue, day_index, _day_rng(config.seed, day_index, "sessions")
        )
        n_sessions = len(np.unique(clicks["session"]))
        first_event, first_session = (
            counters.take("event", len(clicks["event"])),
            counters.take("session", n_sessions),
        )

        after_sales = _day_rng(config.seed, day_index, "after_sales")
        first_order = counters.take("order", len(np.unique(purchases["session"])))
        placed = order_lines(purchases, catalogue, first_order, after_sales)
        lines = [placed, settle_after_sales(placed, day_index, self.returns, self.reviews, after_sales)]
        due_returns = self.returns.pop(day_index)
        if due_returns is not None:
            returns_rng = _day_rng(config.seed, day_index, "returns")
            due_returns["second"] = _diurnal_seconds(len(due_returns["order"]), returns_rng)
            lines.append(due_returns)

        due_reviews = self.reviews.pop(day_index) or _empty_reviews()
        first_review = counters.take("review", len(due_reviews["user"]))
        return {
            "products": products_table(catalogue, listed, day),
            "clicks": clicks_table(clicks, catalogue, users, day, first_event, first_session),
            "orders": orders_table(_concat(lines), catalogue, users, day),
            "reviews": reviews_table(
                due_reviews, catalogue, users, day, first_review, _day_rng(config.seed, day_index, "reviews")
            ),
        }


def _write(table: pa.Table, path: Path, file_format: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if file_format == "parquet":
        pq.write_table(table, path)
    else:
        pacsv.write_csv(table, path)


def generate_demo_shop(config: DemoConfig, landing_dir: Path) -> DemoSummary:
    """Write ``config.days`` daily deliveries of the shop under ``landing_dir``; same config, same bytes."""
    config.validate()
    shop = _Shop(config)
    summary = DemoSummary(
        rows=dict.fromkeys(_ENTITY_ORDER, 0),
        dirt={entity: dict.fromkeys(DIRT_KINDS[entity], 0) for entity in _ENTITY_ORDER},
    )
    previous: dict[str, pa.Table] = {}
    for day_index in range(config.days):
        day = config.start + timedelta(days=day_index)
        clean = shop.clean_delivery(day_index)
        for entity in _ENTITY_ORDER:
            delivered, injected = inject_dirt(
                entity,
                clean[entity],
                previous.get(entity),
                config.dirt_rate,
                day,
                shop.counters.fresh_ids(entity),
                _day_rng(config.seed, day_index, f"dirt:{entity}"),
            )
            path = landing_path(Path(landing_dir), entity, day, _SUFFIXES[config.file_format])
            _write(delivered, path, config.file_format)
            summary.files.append(path)
            summary.rows[entity] += delivered.num_rows
            for kind, n in injected.items():
                summary.dirt[entity][kind] += n
        previous = clean
    return summary
