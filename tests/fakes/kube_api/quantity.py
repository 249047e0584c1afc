"""Quantities as a kube-apiserver stores them (k8s.io/apimachinery resource.Quantity).

The server parses every quantity and writes it back in canonical form: the format of the input
(binary ``Ki..Ei``, decimal SI ``m, k, M, G ...``, or a plain number) with the largest suffix
that keeps the value whole, so ``5120Mi`` comes back as ``5Gi``, ``1000m`` as ``1`` and ``0.5``
as ``500m``. A read after a write shows the canonical form, not what the client sent.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

_Q = re.compile(r"^([+-]?[0-9.]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_BIN = [("Ei", 60), ("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10), ("", 0)]
_DEC = [("E", 18), ("P", 15), ("T", 12), ("G", 9), ("M", 6), ("k", 3), ("", 0), ("m", -3), ("n", -9)]
_DEC_EXP = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
# where resource.Quantity fields live in the built-in kinds the product writes
QUANTITY_KEYS = ("requests", "limits", "capacity", "allocatable", "hard")


def canonical(text: str) -> str:
    m = _Q.match(text.strip())
    if not m:
        return text
    number, suffix = Decimal(m.group(1)), m.group(2) or ""
    if suffix.endswith("i"):
        value = number * (Decimal(2) ** dict(_BIN)[suffix])
        if value == value.to_integral_value():
            whole = int(value)
            for name, exp in _BIN:
                if whole % (2**exp) == 0:
                    return f"{whole // 2**exp}{name}"
        suffix = ""  # a fractional binary quantity is written in decimal form
        number = value
    else:
        number = number * (Decimal(10) ** _DEC_EXP[suffix])
    for name, exp in _DEC:
        scaled = number / (Decimal(10) ** exp)
        if scaled == scaled.to_integral_value():
            return f"{int(scaled)}{name}"
    return f"{int((number * Decimal(10) ** 9).to_integral_value())}n"


def canonicalize(obj: Any, inside: bool = False) -> None:
    """Rewrite every quantity under the quantity-holding keys of ``obj`` in place."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if inside and isinstance(v, str | int | float) and not isinstance(v, bool):
                obj[k] = canonical(str(v))
            else:
                canonicalize(v, k in QUANTITY_KEYS)
    elif isinstance(obj, list):
        for item in obj:
            canonicalize(item)
