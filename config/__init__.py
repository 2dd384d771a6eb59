"""tradebus configuration: the frozen ``Settings`` tree and how it is loaded.

``load_settings`` merges CLI overrides > environment > ``.env`` > secrets directory > TOML >
defaults into one validated, immutable ``Settings``; components receive one section each.
Nothing outside this package reads ``os.environ`` (``config.environment`` covers process facts).
"""

from config.loader import (
    DEFAULT_CONFIG_PATH,
    ConfigError,
    ConfigProblem,
    load_settings,
    parse_set_option,
    render_effective,
    secret_values,
)
from config.settings import (
    AlertSettings,
    BusSettings,
    ExchangeSettings,
    HealthSettings,
    LoggingSettings,
    RuntimeSettings,
    Settings,
)

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "AlertSettings",
    "BusSettings",
    "ConfigError",
    "ConfigProblem",
    "ExchangeSettings",
    "HealthSettings",
    "LoggingSettings",
    "RuntimeSettings",
    "Settings",
    "load_settings",
    "parse_set_option",
    "render_effective",
    "secret_values",
]
