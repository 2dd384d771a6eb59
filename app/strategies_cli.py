"""`tradebus strategies list`: every registered strategy with what it is for and its
parameters, and every installed plugin that could not be registered, with the reason."""

from __future__ import annotations

import json
from typing import Any, TextIO

from app.runtime import ExitCode
from strategies.registry import describe_params, load_registry

__all__ = ["list_strategies"]


def list_strategies(*, as_json: bool, stdout: TextIO) -> int:
    registry = load_registry()
    document: dict[str, Any] = {
        "strategies": [
            {
                "name": entry.name,
                "source": entry.source,
                "summary": entry.cls.summary,
                "market": entry.cls.market,
                "params": [vars(param) for param in describe_params(entry.cls)],
            }
            for entry in sorted(registry.entries.values(), key=lambda e: e.name)
        ],
        "problems": dict(sorted(registry.problems.items())),
    }
    if as_json:
        print(json.dumps(document, indent=2), file=stdout)
        return ExitCode.OK
    for strategy in document["strategies"]:
        print(f"{strategy['name']}  ({strategy['source']})", file=stdout)
        print(f"  {strategy['summary']}", file=stdout)
        print(f"  market: {strategy['market']}", file=stdout)
        params = strategy["params"]
        if params:
            print("  parameters:", file=stdout)
            width = max(len(p["name"]) for p in params)
            for param in params:
                bounds = f" [{param['constraints']}]" if param["constraints"] else ""
                print(
                    f"    {param['name']:<{width}}  {param['type']} = {param['default']}{bounds}"
                    f"  {param['description']}",
                    file=stdout,
                )
        print(file=stdout)
    for name, reason in document["problems"].items():
        print(f"unusable plugin {name}: {reason}", file=stdout)
    return ExitCode.OK
