"""Classes of the error/notice codes a Gateway sends, as a bot experiences them.

Why classes: a rule asking "did the bot hit pacing?" or "did connectivity drop?" must not list
codes; it reads ``class``. The codes and meanings are those of ibkr-facts (IBKR's documentation).
"""

from __future__ import annotations

CONNECTIVITY = frozenset({326, 502, 503, 504, 507, 1100, 1101, 1102, 1300, 2103, 2105, 2110, 2157})
MARKET_DATA = frozenset({354, 10089, 10090, 10091, 10167, 10168, 10197})
PACING = frozenset({100, 420})
#: Order notices that are not a rejection: cancel confirmed, cancel of an order not cancellable,
#: order warnings.
ORDER_NOT_REJECTED = frozenset({161, 202, 399, 404, 10148, 10149})
#: Codes that reject an order (the order id is the error's request id).
ORDER_REJECTS = frozenset(range(103, 200)) | frozenset({201, 203, 10147, 10311, 10325}) - ORDER_NOT_REJECTED


def error_class(code: int, text: str = "") -> str:
    """``connectivity``, ``market_data``, ``pacing``, ``order``, ``warning`` or ``request``."""
    if code in PACING or (code == 162 and "pacing" in text.lower()):
        return "pacing"
    if code in CONNECTIVITY:
        return "connectivity"
    if code in MARKET_DATA:
        return "market_data"
    if code in ORDER_REJECTS or code in ORDER_NOT_REJECTED:
        return "order"
    if 2100 <= code <= 2199:
        return "warning"
    return "request"
