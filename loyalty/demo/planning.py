"""The demo's plan: who the members are, how they shop, and every sale and refund of the period,
decided from `random.Random(seed)` alone without touching the database (loading.py posts it)."""

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("Asia/Shanghai")
ANONYMOUS_SHARE = 0.05
REFUNDED_SHARE = 0.03
# Sales stop a little short of now, so none can look as if it came from the future.
LATEST_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True)
class DemoStore:
    code: str
    name: str
    channel: str
    # Share of members who call it their home store.
    home_share: float


STORES = (
    DemoStore("S001", "Shanghai Flagship, Nanjing Road", "pos", 0.45),
    DemoStore("S002", "Shanghai Jing'an Kerry Centre", "pos", 0.35),
    DemoStore("S003", "Online Store (WeChat mini-program)", "online", 0.20),
)

# category -> (how often a basket line falls in it, [(sku, unit price in fen)])
CATALOGUE = {
    "apparel": (18, [("APP-TEE-CREW", 9900), ("APP-POLO-PIQUE", 19900), ("APP-SHIRT-OXFORD", 29900),
                     ("APP-JEANS-SLIM", 39900), ("APP-DOWN-JACKET", 89900)]),
    "shoes": (8, [("SHO-SANDAL-SLIDE", 12900), ("SHO-CANVAS-LOW", 25900), ("SHO-RUNNER-AIR", 59900),
                  ("SHO-LOAFER-LEATHER", 79900), ("SHO-BOOT-CHELSEA", 109900)]),
    "bags": (6, [("BAG-TOTE-CANVAS", 15900), ("BAG-WALLET-SLIM", 19900), ("BAG-BACKPACK-DAILY", 32900),
                 ("BAG-CROSSBODY-MINI", 45900), ("BAG-SUITCASE-20IN", 79900)]),
    "beauty": (16, [("BEA-SHEET-MASK-10", 9900), ("BEA-SUNSCREEN-50", 15900), ("BEA-LIPSTICK-MATTE", 18900),
                    ("BEA-SERUM-30ML", 42900), ("BEA-PERFUME-50ML", 69900)]),
    "home": (10, [("HOM-MUG-CERAMIC", 5900), ("HOM-CANDLE-SOY", 12900), ("HOM-TOWEL-SET", 16900),
                  ("HOM-TEAPOT-CLAY", 38800), ("HOM-DUVET-SILK", 129900)]),
    "tea": (12, [("TEA-JASMINE-BAGS", 6800), ("TEA-OOLONG-TIN", 16800), ("TEA-LONGJING-250G", 28800),
                 ("TEA-PUER-CAKE", 36800), ("TEA-GIFT-BOX", 58800)]),
    "snacks": (20, [("SNK-SEAWEED-CRISPS", 1500), ("SNK-DRIED-MANGO", 3500), ("SNK-PINEAPPLE-CAKE", 4800),
                    ("SNK-NUTS-MIX", 5900), ("SNK-MOONCAKE-BOX", 26800)]),
    "electronics": (10, [("ELE-CABLE-USB-C", 4900), ("ELE-POWERBANK-10K", 14900), ("ELE-SPEAKER-MINI", 19900),
                         ("ELE-SMARTBAND", 29900), ("ELE-EARBUDS-TWS", 39900)]),
}
CATEGORIES = list(CATALOGUE)
CATEGORY_WEIGHTS = [CATALOGUE[category][0] for category in CATEGORIES]
# Within a category, listed cheapest first: how often each item is picked.
ITEM_WEIGHTS = [10, 6, 3, 1.5, 0.5]


@dataclass(frozen=True)
class Habit:
    """How a kind of member shops, so RFM and churn scoring later have real differences to find."""

    name: str
    share: float
    # Mean days between visits; None = they buy at most once.
    mean_gap_days: float | None
    # Share of their time since enrolment during which they keep coming back (lapsed members stop).
    active_fraction: tuple[float, float] = (1.0, 1.0)
    # Chance that the first purchase comes with enrolment at the till.
    buys_at_enrolment: float = 0.85


HABITS = (
    Habit("frequent", 0.12, 10),
    Habit("regular", 0.27, 40),
    Habit("occasional", 0.20, 75),
    Habit("lapsed", 0.14, 14, active_fraction=(0.15, 0.45)),
    Habit("one-time", 0.21, None, buys_at_enrolment=1.0),
    Habit("dormant", 0.06, None, buys_at_enrolment=0.0),
)

SURNAMES = [("王", "Wang"), ("李", "Li"), ("张", "Zhang"), ("刘", "Liu"), ("陈", "Chen"), ("杨", "Yang"),
            ("黄", "Huang"), ("赵", "Zhao"), ("吴", "Wu"), ("周", "Zhou"), ("徐", "Xu"), ("孙", "Sun"),
            ("马", "Ma"), ("朱", "Zhu"), ("胡", "Hu"), ("郭", "Guo"), ("何", "He"), ("林", "Lin"),
            ("罗", "Luo"), ("高", "Gao"), ("郑", "Zheng"), ("梁", "Liang"), ("谢", "Xie"), ("宋", "Song")]
GIVEN_NAMES = [("芳", "Fang"), ("娜", "Na"), ("伟", "Wei"), ("敏", "Min"), ("静", "Jing"), ("丽", "Li"),
               ("强", "Qiang"), ("磊", "Lei"), ("军", "Jun"), ("洋", "Yang"), ("艳", "Yan"), ("杰", "Jie"),
               ("涛", "Tao"), ("明", "Ming"), ("超", "Chao"), ("秀英", "Xiuying"), ("霞", "Xia"), ("婷", "Ting"),
               ("雪", "Xue"), ("浩然", "Haoran"), ("宇轩", "Yuxuan"), ("欣怡", "Xinyi"), ("子涵", "Zihan"),
               ("梓萱", "Zixuan"), ("俊杰", "Junjie"), ("思远", "Siyuan"), ("雨桐", "Yutong"), ("佳怡", "Jiayi"),
               ("志强", "Zhiqiang"), ("晓燕", "Xiaoyan"), ("建华", "Jianhua"), ("丹丹", "Dandan")]
ENGLISH_FIRST = ["Emily", "Grace", "Sophie", "Olivia", "Chloe", "Amy", "Lily", "Hannah", "Vivian", "Cindy",
                 "James", "Daniel", "Michael", "Kevin", "Jason", "Eric", "David", "Leo", "Tom", "Oliver"]
ENGLISH_SURNAMES = ["Smith", "Brown", "Taylor", "Wilson", "Martin", "Dubois", "Müller", "Rossi", "Tanaka",
                    "Kim", "Nguyen", "Walker"]
EMAIL_DOMAINS = ["example.com", "example.net", "example.org", "mail.example.com"]
MOBILE_PREFIXES = ["130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "155", "156", "158",
                   "159", "166", "176", "177", "180", "182", "185", "186", "187", "188", "189", "198", "199"]


@dataclass
class MemberPlan:
    name: str
    email: str | None
    phone: str | None
    birthday: date | None
    home: DemoStore
    email_marketing: bool
    sms_marketing: bool
    enrolled_at: datetime
    habit: Habit
    favourites: tuple[str, str]
    # 0..1: how often they reach for the dearer items, and how keen they are to spend points.
    premium: float
    redeemer: float


@dataclass
class SalePlan:
    occurred_at: datetime
    store: DemoStore
    member: int | None  # index into the member plans; None = anonymous
    lines: list[dict]
    subtotal: int
    # (occurred_at, "full" | "partial" | "rest") in time order.
    refunds: list[tuple[datetime, str]] = field(default_factory=list)
    external_id: str = ""


@dataclass
class Plan:
    members: list[MemberPlan]
    sales: list[SalePlan]


# --- the plan: who the members are and what they buy, decided without touching the database ---------

def plan_demo(now: datetime, *, members: int, days: int, seed: int) -> Plan:
    """Members and sales (with their later refunds) for the `days` before `now`, from the seed alone.
    Planned over whole Shanghai calendar days up to the end of today and then cut at `now`, so a rerun
    later the same day plans the same people and sales, plus those of the hours in between."""
    rng = random.Random(seed)
    today = now.astimezone(ZONE).date()
    end = datetime(today.year, today.month, today.day, tzinfo=ZONE).astimezone(UTC) + timedelta(days=1)
    start = end - timedelta(days=days)
    people = sorted((_plan_member(rng, start, end) for _ in range(members)), key=lambda person: person.enrolled_at)
    _make_contacts_unique(rng, people)
    sales = []
    for index, person in enumerate(people):
        for occurred_at, store in _visits(rng, person, end):
            sales.append(_basket(rng, occurred_at, store, index, person))
    for _ in range(round(len(sales) * ANONYMOUS_SHARE / (1 - ANONYMOUS_SHARE))):
        store = _weighted_store(rng)
        occurred_at = _instant(rng, _day_between(rng, start, end), store.channel)
        if start < occurred_at < end:
            sales.append(_basket(rng, occurred_at, store, None, None))
    sales.sort(key=lambda sale: sale.occurred_at)
    for sale in sales:
        sale.refunds = _plan_refunds(rng, sale, end)
    return _cut_at(Plan(members=people, sales=sales), now - LATEST_MARGIN)


def _cut_at(plan: Plan, latest: datetime) -> Plan:
    """Drop what lies after `latest`; those who would enrol later enrol at `latest` and buy nothing."""
    for person in plan.members:
        person.enrolled_at = min(person.enrolled_at, latest)
    sales = [sale for sale in plan.sales if sale.occurred_at <= latest]
    for sale in sales:
        sale.refunds = [(occurred_at, kind) for occurred_at, kind in sale.refunds if occurred_at <= latest]
    _number_sales(sales)
    return Plan(members=plan.members, sales=sales)


def _plan_member(rng: random.Random, start: datetime, end: datetime) -> MemberPlan:
    habit = rng.choices(HABITS, weights=[habit.share for habit in HABITS])[0]
    home = _weighted_store(rng)
    # A launch wave in the first tenth of the period, then a steady trickle.
    offset = rng.uniform(0, 0.1) if rng.random() < 0.3 else rng.uniform(0, 1)
    day = (start + (end - start) * offset).astimezone(ZONE).date()
    enrolled_at = min(max(_instant(rng, day, home.channel), start + timedelta(minutes=1)), end)
    name, email_local = _name(rng)
    contact = rng.random()
    email = f"{email_local}@{rng.choice(EMAIL_DOMAINS)}" if contact < 0.8 else None
    phone = _mobile(rng) if contact > 0.1 else None
    return MemberPlan(
        name=name, email=email, phone=phone, birthday=_birthday(rng, end.year) if rng.random() < 0.85 else None,
        home=home, email_marketing=bool(email) and rng.random() < 0.55,
        sms_marketing=bool(phone) and rng.random() < 0.4, enrolled_at=enrolled_at, habit=habit,
        favourites=(_category(rng), _category(rng)), premium=rng.betavariate(1.5, 8), redeemer=rng.betavariate(2, 3),
    )


def _name(rng: random.Random) -> tuple[str, str]:
    """A display name and the local part of an email address to go with it."""
    hanzi_surname, surname = rng.choice(SURNAMES)
    hanzi_given, given = rng.choice(GIVEN_NAMES)
    style = rng.random()
    if style < 0.55:
        name = hanzi_surname + hanzi_given
    elif style < 0.7:
        name = f"{surname} {given}"
    else:
        given = rng.choice(ENGLISH_FIRST)
        surname = surname if rng.random() < 0.75 else rng.choice(ENGLISH_SURNAMES)
        name = f"{given} {surname}"
    local = rng.choice([f"{given}.{surname}", f"{surname}{given}", f"{given[0]}{surname}"])
    ascii_local = local.lower().replace("ü", "ue")
    return name, ascii_local + (str(rng.randint(1, 99)) if rng.random() < 0.5 else "")


def _mobile(rng: random.Random) -> str:
    """A mainland mobile number written the ways people type it; enrolment normalises it to E.164."""
    digits = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
    spaced, dashed = f"+86 {digits[:3]} {digits[3:7]} {digits[7:]}", f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"
    return rng.choice([digits, spaced, dashed])


def _make_contacts_unique(rng: random.Random, people: list[MemberPlan]) -> None:
    emails, phones = set(), set()
    for person in people:
        while person.email and person.email in emails:
            local, _, domain = person.email.partition("@")
            person.email = f"{local}{rng.randint(1, 999)}@{domain}"
        while person.phone and _digits(person.phone) in phones:
            person.phone = _mobile(rng)
        emails.add(person.email)
        phones.add(_digits(person.phone) if person.phone else None)


def _digits(phone: str) -> str:
    return "".join(char for char in phone if char.isdigit())[-11:]


def _birthday(rng: random.Random, this_year: int) -> date:
    age = 18 + int(rng.betavariate(2, 3.5) * 55)
    return date(this_year - age, 1, 1) + timedelta(days=rng.randrange(365))


def _weighted_store(rng: random.Random) -> DemoStore:
    return rng.choices(STORES, weights=[store.home_share for store in STORES])[0]


def _day_between(rng: random.Random, start: datetime, end: datetime) -> date:
    return (start + (end - start) * rng.random()).astimezone(ZONE).date()


def _instant(rng: random.Random, day: date, channel: str) -> datetime:
    """A moment on a Shanghai calendar day when people shop: shop hours at the till, evenings online."""
    hours = rng.triangular(10, 22, 18) if channel == "pos" else min(rng.triangular(7, 24, 21.5), 23.99)
    return (datetime(day.year, day.month, day.day, tzinfo=ZONE) + timedelta(hours=hours)).astimezone(UTC)


MAX_SEASON = 3.0


def _season(day: date) -> float:
    """Relative busyness of a day: weekends, 618, Singles' Day, December and the Spring Festival run-up."""
    if (day.month, day.day) == (11, 11):
        return 3.0
    if (day.month, day.day) in {(11, 10), (11, 12), (6, 18)}:
        return 2.0
    factor = 1.3 if day.weekday() >= 5 else 1.0
    if (day.month, day.day) >= (12, 15) or (1, 15) <= (day.month, day.day) <= (2, 10):
        factor *= 1.4
    return factor


def _visits(rng: random.Random, person: MemberPlan, end: datetime) -> list[tuple[datetime, DemoStore]]:
    """When and where a member shops: a Poisson process thinned by the season, until they lapse."""
    habit, visits = person.habit, []
    if rng.random() < habit.buys_at_enrolment:
        visits.append((person.enrolled_at + timedelta(minutes=rng.uniform(2, 20)), person.home))
    if habit.mean_gap_days is not None:
        active = (end - person.enrolled_at) * rng.uniform(*habit.active_fraction)
        stop_day = (person.enrolled_at + active).astimezone(ZONE).date()
        day_offset, first_day = 0.0, person.enrolled_at.astimezone(ZONE).date()
        last_day = first_day
        while True:
            day_offset += rng.expovariate(MAX_SEASON / habit.mean_gap_days)
            day = first_day + timedelta(days=int(day_offset))
            if day > stop_day:
                break
            if day == last_day or rng.random() * MAX_SEASON >= _season(day):
                continue
            store = person.home if rng.random() < 0.75 else rng.choice(STORES)
            visits.append((_instant(rng, day, store.channel), store))
            last_day = day
    return [(at, store) for at, store in visits if person.enrolled_at < at < end]


def _basket(rng: random.Random, occurred_at: datetime, store: DemoStore, member: int | None,
            person: MemberPlan | None) -> SalePlan:
    lines = []
    for _ in range(rng.choices([1, 2, 3, 4, 5], weights=[58, 26, 10, 4, 2])[0]):
        if person is not None and rng.random() < 0.6:
            category = rng.choice(person.favourites)
        else:
            category = _category(rng)
        items = CATALOGUE[category][1]
        # Cheaper items sell more, except to those who like the dearer ones.
        if rng.random() < (person.premium if person else 0.15):
            sku, unit_price = rng.choice(items[2:])
        else:
            sku, unit_price = rng.choices(items, weights=ITEM_WEIGHTS)[0]
        quantity = rng.choices([1, 2, 3], weights=[70, 22, 8])[0] if unit_price < 10000 else 1
        lines.append({"sku": sku, "category": category, "quantity": quantity, "unit_price": unit_price,
                      "amount": unit_price * quantity})
    return SalePlan(occurred_at=occurred_at, store=store, member=member, lines=lines,
                    subtotal=sum(line["amount"] for line in lines))


def _category(rng: random.Random) -> str:
    return rng.choices(CATEGORIES, weights=CATEGORY_WEIGHTS)[0]


def _plan_refunds(rng: random.Random, sale: SalePlan, end: datetime) -> list[tuple[datetime, str]]:
    """Most sales stand; a few come back in whole or in part, days later (before `end`)."""
    if rng.random() >= (REFUNDED_SHARE if sale.member is not None else REFUNDED_SHARE / 3):
        return []
    first = sale.occurred_at + timedelta(days=rng.uniform(0.5, 14))
    if first >= end:
        return []
    if rng.random() < 0.55:
        return [(first, "full")]
    later = first + timedelta(days=rng.uniform(1, 10))
    return [(first, "partial"), (later, "rest")] if rng.random() < 0.15 and later < end else [(first, "partial")]


def _number_sales(sales: list[SalePlan]) -> None:
    """Receipt numbers as a till prints them: store, local date, and a running number per store."""
    counters = Counter()
    for sale in sales:
        counters[sale.store.code] += 1
        local_day = sale.occurred_at.astimezone(ZONE).strftime("%Y%m%d")
        sale.external_id = f"{sale.store.code}-{local_day}-{counters[sale.store.code]:06d}"
