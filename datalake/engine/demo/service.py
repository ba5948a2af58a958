"""Customer Service demo data: support tickets in Chinese and English with categories and priorities."""

import numpy as np
import pandas as pd

from .maintenance import DEFAULT_SEED
from .supply import PRODUCTS

TICKET_CATEGORIES = ("delivery", "defect", "billing", "installation", "other")
PRIORITIES = ("low", "medium", "high", "urgent")
CHANNELS = ("phone", "email", "web", "wechat")

_EN_PRODUCTS = [
    "ball bearing 6205",
    "taper roller bearing 30208",
    "linear guide HGR20",
    "ball screw SFU1605",
    "750W servo motor",
    "57HS stepper motor",
    "2.2kW inverter",
    "S7-200 PLC",
    "hydraulic cylinder 63/100",
    "gear pump CBN-E",
    "O-ring kit",
    "industrial grease 1kg",
]

_TEMPLATES = {
    "delivery": {
        "zh": [
            "订单{order}还没有收到，已经过了{days}天。",
            "物流信息{days}天没有更新了，{product}什么时候能到？",
            "快递送错地址了，{product}被送到了隔壁工厂。",
            "订单{order}只到了一部分，还差{qty}件{product}。",
            "请问订单{order}能不能提前发货？",
            "外包装破损，{product}在运输中受潮了。",
        ],
        "en": [
            "Order {order} has not arrived after {days} days.",
            "Tracking for the {product} has not updated in {days} days, when will it arrive?",
            "The courier delivered order {order} to the wrong address.",
            "Only part of order {order} arrived, {qty} x {product} are missing.",
            "Can you ship order {order} earlier?",
        ],
    },
    "defect": {
        "zh": [
            "{product}使用{days}天后出现异响。",
            "收到的{product}有裂纹，要求换货。",
            "{product}运行时温度过高，自动停机。",
            "{product}尺寸不符合图纸，无法装配。",
            "新买的{product}漏油，请尽快处理。",
            "{product}振动很大，怀疑是质量问题。",
        ],
        "en": [
            "The {product} makes a grinding noise after {days} days of use.",
            "The {product} we received is cracked, we need a replacement.",
            "The {product} overheats and shuts down.",
            "The {product} does not match the drawing and cannot be assembled.",
            "The new {product} is leaking oil.",
        ],
    },
    "billing": {
        "zh": [
            "发票金额{amount}元与合同不符。",
            "重复扣款{amount}元，请退款。",
            "请开具增值税专用发票，订单号{order}。",
            "订单{order}的折扣没有生效，多收了{amount}元。",
            "对账单上的付款记录不对，请核实。",
        ],
        "en": [
            "The invoice amount of {amount} CNY does not match the contract.",
            "We were charged twice ({amount} CNY), please refund.",
            "Please send a VAT invoice for order {order}.",
            "The discount on order {order} was not applied, we paid {amount} CNY too much.",
        ],
    },
    "installation": {
        "zh": [
            "{product}安装说明书看不懂，需要技术人员上门。",
            "安装{product}后无法开机，接线是否正确？",
            "{product}的参数怎么设置？调试了{days}天还不行。",
            "请提供{product}的安装尺寸图。",
            "{product}和我们的设备不兼容，怎么改装？",
        ],
        "en": [
            "The installation manual of the {product} is unclear, we need a technician on site.",
            "After installing the {product} it does not power on, is the wiring right?",
            "How do we configure the {product}? We have been commissioning it for {days} days.",
            "Please send the mounting drawing of the {product}.",
        ],
    },
    "other": {
        "zh": [
            "请问你们周末上班吗？",
            "想了解{product}的价格和交货期。",
            "希望成为你们的经销商，请联系我。",
            "能否提供{product}的产品目录？",
            "你们的售后电话是多少？",
        ],
        "en": [
            "Are you open on weekends?",
            "What is the price and lead time of the {product}?",
            "We would like to become a distributor, please contact us.",
            "Could you send a catalogue of the {product}?",
        ],
    },
}
_OPENINGS = {"zh": ["", "", "您好，", "你好，", "麻烦问一下，"], "en": ["", "", "Hello, ", "Hi team, ", "Dear support, "]}
_CLOSINGS = {"zh": ["", "", "谢谢！", "请尽快回复。"], "en": ["", "", " Thanks.", " Please reply soon."]}
_URGENT = {"zh": ["急！产线已经停了。", "非常紧急！"], "en": [" URGENT: our line is down.", " This is urgent!"]}

# Category → (probabilities of low, medium, high, urgent; median hours to resolve)
_CATEGORY_RULES = {
    "delivery": ((0.2, 0.5, 0.25, 0.05), 20.0),
    "defect": ((0.05, 0.35, 0.45, 0.15), 60.0),
    "billing": ((0.3, 0.5, 0.18, 0.02), 30.0),
    "installation": ((0.15, 0.5, 0.3, 0.05), 40.0),
    "other": ((0.7, 0.25, 0.05, 0.0), 6.0),
}
_PRIORITY_SPEED = np.array([1.5, 1.0, 0.7, 0.4])  # urgent tickets are resolved faster


def service_tickets(
    seed: int = DEFAULT_SEED, *, rows: int = 3000, start: str = "2024-01-01", days: int = 180, chinese_share: float = 0.65
) -> pd.DataFrame:
    """Support tickets, one row each, in Chinese (`chinese_share`) or English, ordered by creation time.

    Texts come from per-category templates with slots (product, order number, days, amount), a
    greeting and a closing; urgent tickets say so in the text. About 3 % of tickets are filed under
    a wrong category (as in real data) and about 5 % are still open.

    Columns:
    - ticket_id (str): `T-000001`, …; created_at (datetime64, seconds): mostly in office hours.
    - channel (str): phone | email | web | wechat.
    - customer_id (str): `C0001`…, a few customers write often.
    - product (str): product name in the ticket's language (product catalogue of supply_demand).
    - language (str): zh | en.
    - text (str): the customer's message.
    - category (str): delivery | defect | billing | installation | other — the label to predict.
    - priority (str): low | medium | high | urgent.
    - resolution_hours (float, hours): time to resolve; missing while the ticket is open.
    """
    rng = np.random.default_rng([seed, 5])
    category = rng.choice(len(TICKET_CATEGORIES), rows, p=[0.3, 0.25, 0.15, 0.18, 0.12])
    zh = rng.random(rows) < chinese_share
    product = rng.integers(0, len(PRODUCTS), rows)
    priority = np.empty(rows, dtype=np.int64)
    texts = []
    for i in range(rows):
        name = TICKET_CATEGORIES[category[i]]
        lang = "zh" if zh[i] else "en"
        priority[i] = rng.choice(4, p=_CATEGORY_RULES[name][0])
        body = rng.choice(_TEMPLATES[name][lang]).format(
            order=f"SO{rng.integers(2400000, 2499999)}",
            days=int(rng.integers(2, 30)),
            qty=int(rng.integers(1, 50)),
            amount=f"{rng.integers(200, 50000):,}",
            product=PRODUCTS[product[i]][1] if zh[i] else _EN_PRODUCTS[product[i]],
        )
        urgent = priority[i] == 3 or (priority[i] == 2 and rng.random() < 0.2)
        tail = rng.choice(_URGENT[lang]) if urgent else rng.choice(_CLOSINGS[lang])
        opening = rng.choice(_OPENINGS[lang])
        if opening and lang == "en":
            body = body[0].lower() + body[1:]
        texts.append(f"{opening}{body}{tail}")

    filed = category.copy()
    misfiled = rng.random(rows) < 0.03
    filed[misfiled] = rng.integers(0, len(TICKET_CATEGORIES), misfiled.sum())

    day = rng.integers(0, days, rows)
    hour = rng.choice(24, rows, p=_office_hours())
    created = pd.Timestamp(start) + pd.to_timedelta(day * 86400 + hour * 3600 + rng.integers(0, 3600, rows), unit="s")
    channel = np.where(zh, rng.choice(4, rows, p=[0.35, 0.1, 0.15, 0.4]), rng.choice(4, rows, p=[0.2, 0.5, 0.3, 0.0]))
    medians = np.array([_CATEGORY_RULES[c][1] for c in TICKET_CATEGORIES])[category]
    hours = medians * _PRIORITY_SPEED[priority] * np.where(channel == 0, 0.8, 1.0) * rng.lognormal(0, 0.6, rows)
    hours = np.round(np.maximum(hours, 0.1), 1)
    # The newest tickets are the ones still open.
    hours[(created > created.max() - pd.Timedelta(days=14)) & (rng.random(rows) < 0.7)] = np.nan
    loyalty = 1 / np.arange(1, 401) ** 0.7  # a few customers write often
    customers = rng.choice(400, rows, p=loyalty / loyalty.sum()) + 1

    frame = pd.DataFrame(
        {
            "created_at": created.as_unit("s"),
            "channel": np.array(CHANNELS)[channel],
            "customer_id": [f"C{c:04d}" for c in customers],
            "product": [PRODUCTS[p][1] if z else _EN_PRODUCTS[p] for p, z in zip(product, zh, strict=True)],
            "language": np.where(zh, "zh", "en"),
            "text": pd.array(texts, dtype="str"),
            "category": np.array(TICKET_CATEGORIES)[filed],
            "priority": np.array(PRIORITIES)[priority],
            "resolution_hours": hours,
        }
    )
    frame = frame.sort_values("created_at", kind="stable", ignore_index=True)
    frame.insert(0, "ticket_id", [f"T-{i + 1:06d}" for i in range(rows)])
    return frame


def _office_hours() -> np.ndarray:
    weights = np.array([1, 1, 1, 1, 1, 1, 2, 4, 10, 12, 12, 11, 7, 10, 12, 12, 11, 9, 6, 5, 4, 3, 2, 1], dtype=float)
    return weights / weights.sum()
