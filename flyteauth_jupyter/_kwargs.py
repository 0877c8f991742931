"""Calling a constructor with only the optional keyword arguments it accepts (for the builders that
turn notebook options or flytekit's PlatformConfig into one of our classes)."""

from __future__ import annotations

import inspect
from typing import Any


def accepted_parameters(cls: Any) -> set[str]:
    """The keyword names ``cls`` accepts; ``"**"`` among them when it takes ``**kwargs``."""
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return {"**"}
    names = {p.name for p in params}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        names.add("**")
    return names


def construct(cls: Any, required: dict[str, Any], optional: dict[str, Any]) -> Any:
    """``cls(**required, **optional)``, leaving out optional arguments the class does not take or that are None."""
    accepted = accepted_parameters(cls)
    kwargs = dict(required)
    for key, value in optional.items():
        if value is not None and (key in accepted or "**" in accepted):
            kwargs[key] = value
    return cls(**kwargs)
