"""How old the newest backup may be: the longest gap between two runs of the schedule."""

from __future__ import annotations

import datetime as dt
import functools
import itertools

from thinkube_devpi.config import parse_cron

# a backup takes a while, and a CronJob may start late (startingDeadlineSeconds)
GRACE = dt.timedelta(hours=2)


def _fires(expr: str, start: dt.datetime, days: int) -> list[dt.datetime]:
    minute, hour, dom, month, dow = parse_cron(expr)
    dom_any, dow_any = len(dom) == 31, len(dow) == 7
    out = []
    for d in range(days):
        day = start + dt.timedelta(days=d)
        if day.month not in month:
            continue
        weekday = (day.weekday() + 1) % 7  # cron: 0 is Sunday
        if dom_any or dow_any:
            ok = day.day in dom and weekday in dow
        else:  # both restricted: cron runs when either matches
            ok = day.day in dom or weekday in dow
        if not ok:
            continue
        out += [day.replace(hour=h, minute=m) for h in sorted(hour) for m in sorted(minute)]
    return out


@functools.lru_cache(maxsize=32)
def longest_gap(expr: str) -> dt.timedelta:
    """The longest time between two consecutive runs over a year and a bit."""
    fires = _fires(expr, dt.datetime(2025, 1, 1, tzinfo=dt.UTC), 400)
    if len(fires) < 2:
        return dt.timedelta(days=366)
    return max(b - a for a, b in itertools.pairwise(fires))


def allowed_age(expr: str) -> dt.timedelta:
    """The newest backup is stale when it is older than this."""
    return longest_gap(expr) + GRACE


def human(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "in the future"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days {seconds % 86400 // 3600} h"


def size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"
