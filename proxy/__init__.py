"""``gatewatch proxy``: a TWS API relay between a trading bot and IB Gateway that measures what the bot sees.

Bytes pass unchanged and in order; the proxy decodes a copy to measure, guards placeOrder on paper
rules, and injects faults on the bot's own path when asked.
"""
