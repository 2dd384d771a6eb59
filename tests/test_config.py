"""Tests for the config package: sources, priority, strictness, rendering, secrets.

Every test runs in its own ``tmp_path`` as working directory (so no real ``.env`` or
``config/tradebus.toml`` is picked up) and passes an explicit ``env`` mapping.
"""

from __future__ import annotations

import itertools
import runpy
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from app.domain.enums import MarketType, Mode

# Submodule imports on purpose: the venv's editable install predates config/__init__.py and
# maps "config" as a namespace package under pytest, so "from config import X" would fail.
from config import environment as proc_env
from config.loader import (
    ConfigError,
    load_settings,
    parse_set_option,
    render_effective,
    secret_values,
)
from config.risk import RiskGuardSettings, RiskLimitSettings
from config.settings import Settings

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
LIVE_KEYS = {
    "TRADEBUS_EXCHANGE__API_KEY": "test-key-0123456789",
    "TRADEBUS_EXCHANGE__API_SECRET": "test-secret-0123456789",
}


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def fields(error: ConfigError) -> list[str]:
    return [problem.field for problem in error.problems]


def load_error(**kwargs: object) -> ConfigError:
    kwargs.setdefault("env", {})
    with pytest.raises(ConfigError) as info:
        load_settings(**kwargs)  # type: ignore[arg-type]
    return info.value


# --- defaults and sources -------------------------------------------------------------------


def test_defaults_load_without_any_file() -> None:
    settings = load_settings(env={})
    assert settings == Settings()
    assert settings.mode is Mode.PAPER
    assert settings.exchange.venue == "sim"
    assert settings.exchange.symbols == ("BTCUSDT", "ETHUSDT")
    assert settings.exchange.api_key is None
    assert settings.logging.file == Path("logs/tradebus.log")


def test_default_config_path_is_used_when_present(tmp_path: Path) -> None:
    write(tmp_path / "config" / "tradebus.toml", 'instance_name = "from-default-path"\n')
    assert load_settings(env={}).instance_name == "from-default-path"


def test_missing_optional_config_file_means_defaults(tmp_path: Path) -> None:
    assert load_settings(tmp_path / "absent.toml", env={}) == Settings()


def test_missing_required_config_file_is_an_error(tmp_path: Path) -> None:
    error = load_error(config_file=tmp_path / "absent.toml", config_file_required=True)
    assert fields(error) == ["--config"]
    assert "not found" in str(error)


def test_tradebus_config_variable_names_the_file(tmp_path: Path) -> None:
    toml = write(tmp_path / "x.toml", 'instance_name = "via-env"\n')
    assert load_settings(env={"TRADEBUS_CONFIG": str(toml)}).instance_name == "via-env"
    error = load_error(env={"TRADEBUS_CONFIG": str(tmp_path / "absent.toml")})
    assert fields(error) == ["TRADEBUS_CONFIG"]


# Each layer sets health.interval_s (stale_after_s is raised so every value is valid).
LAYERS = ["toml", "secrets", "dotenv", "env", "overrides"]


def load_with_layers(tmp_path: Path, values: dict[str, float]) -> Settings:
    env = {"TRADEBUS_HEALTH__STALE_AFTER_S": "100"}
    overrides: dict[str, object] = {}
    toml = secrets = dotenv = None
    if "toml" in values:
        toml = write(tmp_path / "c.toml", f"[health]\ninterval_s = {values['toml']}\n")
    if "secrets" in values:
        secrets = tmp_path / "secrets"
        write(secrets / "TRADEBUS_HEALTH__INTERVAL_S", f"{values['secrets']}\n")
    if "dotenv" in values:
        dotenv = write(tmp_path / "x.env", f"TRADEBUS_HEALTH__INTERVAL_S={values['dotenv']}\n")
    if "env" in values:
        env["TRADEBUS_HEALTH__INTERVAL_S"] = str(values["env"])
    if "overrides" in values:
        overrides["health.interval_s"] = values["overrides"]
    return load_settings(
        toml, env=env, overrides=overrides, dotenv_file=dotenv, secrets_dir=secrets
    )


def test_toml_overrides_defaults(tmp_path: Path) -> None:
    assert load_with_layers(tmp_path, {"toml": 7.0}).health.interval_s == 7.0


@pytest.mark.parametrize(("lower", "upper"), list(itertools.pairwise(LAYERS)), ids=lambda n: n)
def test_each_source_overrides_the_one_below(tmp_path: Path, lower: str, upper: str) -> None:
    settings = load_with_layers(tmp_path, {lower: 11.0, upper: 22.0})
    assert settings.health.interval_s == 22.0


def test_all_sources_together_highest_wins(tmp_path: Path) -> None:
    values = {layer: float(i + 1) for i, layer in enumerate(LAYERS)}
    assert load_with_layers(tmp_path, values).health.interval_s == float(len(LAYERS))


def test_sources_merge_per_field_not_per_section(tmp_path: Path) -> None:
    toml = write(tmp_path / "c.toml", "[health]\nstall_after_s = 99.0\n")
    settings = load_settings(toml, env={"TRADEBUS_HEALTH__INTERVAL_S": "3"})
    assert settings.health.interval_s == 3.0
    assert settings.health.stall_after_s == 99.0


def test_nested_environment_variable() -> None:
    settings = load_settings(
        env={"TRADEBUS_HEALTH__INTERVAL_S": "2.5", "TRADEBUS_MODE": "backtest"}
    )
    assert settings.health.interval_s == 2.5
    assert settings.mode is Mode.BACKTEST


@pytest.mark.parametrize(
    "file_name", ["TRADEBUS_EXCHANGE__API_SECRET", "tradebus_exchange__api_secret"]
)
def test_secrets_dir_supplies_nested_secret(tmp_path: Path, file_name: str) -> None:
    secrets = tmp_path / "secrets"
    write(secrets / file_name, "from-secret-file\n")
    write(secrets / "unrelated_other_app_secret", "ignored")
    settings = load_settings(env={}, secrets_dir=secrets)
    assert settings.exchange.api_secret is not None
    assert settings.exchange.api_secret.get_secret_value() == "from-secret-file"


def test_secrets_dir_from_bootstrap_variable(tmp_path: Path) -> None:
    write(tmp_path / "s" / "TRADEBUS_EXCHANGE__API_KEY", "k-from-dir")
    settings = load_settings(env={"TRADEBUS_SECRETS_DIR": str(tmp_path / "s")})
    assert settings.exchange.api_key == SecretStr("k-from-dir")


def test_settings_constructed_directly_ignore_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRADEBUS_INSTANCE_NAME", "from-process-env")
    assert Settings().instance_name == "tradebus"


def test_symbols_from_env_as_csv_or_json_are_upper_cased() -> None:
    csv = load_settings(env={"TRADEBUS_EXCHANGE__SYMBOLS": "solusdt, bnbusdt"})
    assert csv.exchange.symbols == ("SOLUSDT", "BNBUSDT")
    js = load_settings(env={"TRADEBUS_EXCHANGE__SYMBOLS": '["xrpusdt"]'})
    assert js.exchange.symbols == ("XRPUSDT",)


def test_lower_case_log_level_and_empty_file_disables_file_logging() -> None:
    settings = load_settings(env={"TRADEBUS_LOGGING__LEVEL": "debug", "TRADEBUS_LOGGING__FILE": ""})
    assert settings.logging.level == "DEBUG"
    assert settings.logging.file is None


def test_sections_are_frozen() -> None:
    settings = load_settings(env={})
    with pytest.raises(ValidationError):
        settings.health.interval_s = 1.0  # type: ignore[misc]
    with pytest.raises(ValidationError):
        settings.mode = Mode.LIVE  # type: ignore[misc]
    with pytest.raises(ValidationError):
        settings.exchange = settings.exchange  # type: ignore[misc]


# --- strictness -----------------------------------------------------------------------------


def test_wrong_type_in_toml_names_the_field(tmp_path: Path) -> None:
    toml = write(tmp_path / "c.toml", '[health]\ninterval_s = "often"\n')
    error = load_error(config_file=toml)
    assert fields(error) == ["health.interval_s"]
    assert "often" not in str(error)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("intervall = 1\n", "intervall"),
        ("[health]\nintervall_s = 1\n", "health.intervall_s"),
        ("[healthz]\ninterval_s = 1\n", "healthz"),
    ],
)
def test_unknown_key_in_toml_is_named(tmp_path: Path, text: str, field: str) -> None:
    error = load_error(config_file=write(tmp_path / "c.toml", text))
    assert fields(error) == [field]
    assert "unknown key" in str(error)


def test_malformed_toml_reports_file_and_position(tmp_path: Path) -> None:
    toml = write(tmp_path / "c.toml", 'mode = "paper"\n[health\ninterval_s = 1\n')
    error = load_error(config_file=toml)
    assert fields(error) == [str(toml)]
    assert "line 2" in str(error)


def test_unknown_tradebus_env_var_is_named_once() -> None:
    error = load_error(env={"TRADEBUS_EXCHANGE__API_SECERT": "s3cr3t-value"})
    assert fields(error) == ["TRADEBUS_EXCHANGE__API_SECERT"]
    assert "TRADEBUS_EXCHANGE__API_SECRET" in str(error)  # the suggestion
    assert "s3cr3t-value" not in str(error)


def test_reserved_and_bootstrap_variables_are_ignored() -> None:
    env = {
        "TRADEBUS_TEST_X": "1",
        "TRADEBUS_TEST_POSTGRES_DSN": "postgresql://localhost/test",
        "TRADEBUS_SECRETS_DIR": "/nonexistent-dir",
        "PATH": "/usr/bin",
    }
    assert load_settings(env=env) == Settings()


def test_dotenv_unknown_tradebus_key_is_an_error_other_keys_are_not(tmp_path: Path) -> None:
    dotenv = write(tmp_path / ".env", "OTHER_APP=1\nTRADEBUS_TEST_DB=x\nTRADEBUS_MODEE=live\n")
    error = load_error(dotenv_file=dotenv)
    assert fields(error) == ["TRADEBUS_MODEE"]
    ok = write(tmp_path / "ok.env", "OTHER_APP=1\nTRADEBUS_INSTANCE_NAME=dotenv-box\n")
    assert load_settings(env={}, dotenv_file=ok).instance_name == "dotenv-box"


def test_default_dotenv_in_working_directory_is_read(tmp_path: Path) -> None:
    write(tmp_path / ".env", "TRADEBUS_INSTANCE_NAME=cwd-dotenv\n")
    assert load_settings(env={}).instance_name == "cwd-dotenv"


def test_stale_after_must_exceed_interval() -> None:
    error = load_error(overrides={"health.interval_s": 5, "health.stale_after_s": 5})
    assert fields(error) == ["health.stale_after_s"]
    assert "greater than interval_s" in str(error)


def test_backoff_max_below_initial_refused() -> None:
    error = load_error(env={"TRADEBUS_RUNTIME__RESTART_BACKOFF_MAX_S": "0.1"})
    assert fields(error) == ["runtime.restart_backoff_max_s"]


def test_live_mode_without_keys_names_the_missing_fields() -> None:
    error = load_error(env={"TRADEBUS_MODE": "live", "TRADEBUS_EXCHANGE__VENUE": "binance"})
    assert fields(error) == ["exchange.api_key", "exchange.api_secret"]
    error = load_error(
        env={
            "TRADEBUS_MODE": "live",
            "TRADEBUS_EXCHANGE__VENUE": "binance",
            "TRADEBUS_EXCHANGE__API_KEY": "k",
        }
    )
    assert fields(error) == ["exchange.api_secret"]


def test_live_mode_on_the_simulator_is_refused() -> None:
    error = load_error(env={"TRADEBUS_MODE": "live", **LIVE_KEYS})
    assert fields(error) == ["exchange.venue"]


def test_empty_secret_counts_as_missing() -> None:
    env = {"TRADEBUS_MODE": "live", "TRADEBUS_EXCHANGE__VENUE": "binance", **LIVE_KEYS}
    env["TRADEBUS_EXCHANGE__API_KEY"] = ""
    assert fields(load_error(env=env)) == ["exchange.api_key"]


@pytest.mark.parametrize(
    ("symbols", "field"),
    [
        ('["BTCUSDT", "btcusdt"]', "exchange.symbols.1"),
        ('["BTCUSDT", "BTC-USDT"]', "exchange.symbols.1"),
        ("[]", "exchange.symbols"),
    ],
)
def test_bad_symbols_name_the_item(tmp_path: Path, symbols: str, field: str) -> None:
    toml = write(tmp_path / "c.toml", f"[exchange]\nsymbols = {symbols}\n")
    assert fields(load_error(config_file=toml)) == [field]


def test_invalid_override_key_is_refused() -> None:
    error = load_error(overrides={"_secrets_dir": "/tmp", "health.nope": 1})
    assert fields(error) == ["_secrets_dir", "health.nope"]


def test_error_text_lists_field_reason_lines_and_is_not_chained(tmp_path: Path) -> None:
    toml = write(tmp_path / "c.toml", "[health]\ninterval_s = -1\nstall_after_s = -1\n")
    error = load_error(config_file=toml)
    lines = str(error).splitlines()
    assert lines == [f"{p.field}: {p.reason}" for p in error.problems]
    assert len(lines) == 2
    # The chained pydantic error would carry the input values.
    assert error.__cause__ is None
    assert error.__suppress_context__


def test_secret_never_appears_in_error_text(tmp_path: Path) -> None:
    canary = "CANARY-7f3a9c1e5b"
    toml = write(
        tmp_path / "c.toml",
        f'mode = "live"\n[exchange]\napi_secret = {{ nested = "{canary}" }}\n'
        f'api_key = ["{canary}"]\nsymbols = ["{canary}-TOO-LONG-SYMBOL-XXXXXXXXXXXX"]\n'
        f'[alerts]\nslack_webhook_url = {{ "{canary}" = 1 }}\n',
    )
    error = load_error(config_file=toml, env={"TRADEBUS_ALERTS__SLACK_WEBHOOK_URL__X": canary})
    assert fields(error) == [
        "TRADEBUS_ALERTS__SLACK_WEBHOOK_URL__X",
        "exchange.api_key",
        "exchange.api_secret",
        "exchange.symbols.0",
        "alerts.slack_webhook_url",
    ]
    assert canary not in str(error)

    json_error = load_error(env={"TRADEBUS_BUS": f'{{"{canary}": 1'})
    assert fields(json_error) == ["bus"]
    assert canary not in str(json_error)

    env_error = load_error(env={"TRADEBUS_EXCHANGE": f'{{"api_secret": {{"x": "{canary}"}}}}'})
    assert fields(env_error) == ["exchange.api_secret"]
    assert canary not in str(env_error)


# --- shipped files --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    sorted([*CONFIG_DIR.glob("*.toml"), *CONFIG_DIR.glob("examples/*.toml")]),
    ids=lambda p: p.relative_to(CONFIG_DIR).as_posix(),
)
def test_every_shipped_config_file_loads(path: Path) -> None:
    env = LIVE_KEYS if path.name.startswith("live") else {}
    settings = load_settings(path, config_file_required=True, env=env)
    if path.name.startswith("live"):
        assert settings.mode is Mode.LIVE
        assert settings.exchange.venue == "binance"
    else:
        assert settings.mode is Mode.PAPER


def test_shipped_default_matches_the_schema_defaults() -> None:
    # Identical except that the shipped file runs the two reference strategies (the schema
    # runs none, so a config without [[strategies.run]] never trades by surprise) and sets
    # example risk limits and guards (the schema checks none it was not told to).
    shipped = load_settings(CONFIG_DIR / "tradebus.toml", env={})
    assert [run.strategy for run in shipped.strategies.run] == ["vwap_reversion", "momentum"]
    assert shipped.risk.limits.max_position_notional == Decimal(2000)
    assert shipped.risk.guards.max_drawdown_pct == Decimal(10)
    unchanged = shipped.strategies.model_copy(update={"run": ()})
    risk = shipped.risk.model_copy(
        update={"limits": RiskLimitSettings(), "guards": RiskGuardSettings()}
    )
    assert shipped.model_copy(update={"strategies": unchanged, "risk": risk}) == Settings()


def test_live_futures_example_targets_usdm() -> None:
    settings = load_settings(CONFIG_DIR / "examples" / "live-futures.toml", env=LIVE_KEYS)
    assert settings.exchange.market is MarketType.USDM


def test_live_example_without_keys_fails_clearly() -> None:
    error = load_error(config_file=CONFIG_DIR / "examples" / "live-spot.toml")
    assert fields(error) == ["exchange.api_key", "exchange.api_secret"]


# --- --set, rendering, secret collection ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("health.interval_s=2", ("health.interval_s", 2)),
        ("health.interval_s = 2.5", ("health.interval_s", 2.5)),
        ("health.systemd_notify=false", ("health.systemd_notify", False)),
        ("mode=live", ("mode", "live")),
        ('instance_name="a b"', ("instance_name", "a b")),
        ('exchange.symbols=["BTCUSDT"]', ("exchange.symbols", ["BTCUSDT"])),
        ("exchange.symbols=BTCUSDT,ETHUSDT", ("exchange.symbols", "BTCUSDT,ETHUSDT")),
        ("logging.file=", ("logging.file", "")),
        ("x.y=1\nz = 2", ("x.y", "1\nz = 2")),
    ],
)
def test_parse_set_option(text: str, expected: tuple[str, object]) -> None:
    assert parse_set_option(text) == expected


@pytest.mark.parametrize("text", ["health.interval_s", "=3", "bad key=1", "a..b=1", "_x=1"])
def test_parse_set_option_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="--set"):
        parse_set_option(text)


def test_parsed_set_options_feed_overrides() -> None:
    overrides = dict(
        parse_set_option(t) for t in ["health.interval_s=2", "exchange.symbols=solusdt,btcusdt"]
    )
    settings = load_settings(env={}, overrides=overrides)
    assert settings.health.interval_s == 2.0
    assert settings.exchange.symbols == ("SOLUSDT", "BTCUSDT")


def live_settings() -> Settings:
    env = {
        "TRADEBUS_MODE": "live",
        "TRADEBUS_EXCHANGE__VENUE": "binance",
        "TRADEBUS_ALERTS__SLACK_WEBHOOK_URL": "https://hooks.example/T000/B000/xyzzy",
        **LIVE_KEYS,
    }
    return load_settings(env=env)


def test_render_effective_is_toml_with_masked_secrets() -> None:
    settings = live_settings()
    text = render_effective(settings)
    parsed = tomllib.loads(text)
    assert list(parsed) == [
        "mode",
        "instance_name",
        "runtime",
        "bus",
        "logging",
        "health",
        "exchange",
        "sim",
        "strategies",
        "alerts",
        "risk",
        "executor",
        "database",
    ]
    assert parsed["exchange"]["api_key"] == "**********"
    assert parsed["exchange"]["api_secret"] == "**********"
    assert parsed["alerts"]["slack_webhook_url"] == "**********"
    assert parsed["health"]["interval_s"] == settings.health.interval_s
    for secret in secret_values(settings):
        assert secret not in text


def test_render_effective_round_trips_without_secrets(tmp_path: Path) -> None:
    settings = load_settings(
        env={"TRADEBUS_LOGGING__FILE": "", "TRADEBUS_EXCHANGE__SYMBOLS": "SOLUSDT"}
    )
    text = render_effective(settings)
    assert "# api_key = (unset)" in text
    reloaded = load_settings(write(tmp_path / "effective.toml", text), env={})
    assert reloaded.exchange == settings.exchange
    assert reloaded.health == settings.health


def test_secret_values_finds_every_configured_secret() -> None:
    assert set(secret_values(live_settings())) == {
        LIVE_KEYS["TRADEBUS_EXCHANGE__API_KEY"],
        LIVE_KEYS["TRADEBUS_EXCHANGE__API_SECRET"],
        "https://hooks.example/T000/B000/xyzzy",
    }
    assert secret_values(Settings()) == ()


# --- process facts --------------------------------------------------------------------------


def test_environment_helpers_read_the_given_mapping() -> None:
    import os

    assert proc_env.systemd_notify_socket({"NOTIFY_SOCKET": "/run/notify"}) == "/run/notify"
    assert proc_env.systemd_notify_socket({}) is None
    assert proc_env.systemd_watchdog_usec({"WATCHDOG_USEC": "3000000"}) == 3_000_000
    mine = {"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid())}
    assert proc_env.systemd_watchdog_usec(mine) == 3_000_000
    other = {"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid() + 1)}
    assert proc_env.systemd_watchdog_usec(other) is None
    assert proc_env.systemd_watchdog_usec({"WATCHDOG_USEC": "soon"}) is None
    assert proc_env.tradebus_config_path({"TRADEBUS_CONFIG": "/etc/tb.toml"}) == Path(
        "/etc/tb.toml"
    )
    assert proc_env.tradebus_config_path({"TRADEBUS_CONFIG": ""}) is None
    assert proc_env.tradebus_secrets_dir({"TRADEBUS_SECRETS_DIR": "/run/s"}) == Path("/run/s")
    assert proc_env.is_ci({"CI": "true"})
    assert not proc_env.is_ci({"CI": "false"})
    assert not proc_env.is_ci({})


def test_package_re_exports_the_public_api() -> None:
    namespace = runpy.run_path(str(CONFIG_DIR / "__init__.py"))
    for name in namespace["__all__"]:
        assert name in namespace
    assert namespace["load_settings"] is load_settings
    assert namespace["Settings"] is Settings


def test_database_url_is_checked_and_never_holds_a_password() -> None:
    settings = load_settings(None, overrides={}, env={}, dotenv_file=None)
    assert settings.database.url == "sqlite:///status/tradebus.db"
    env = {
        "TRADEBUS_DATABASE__URL": "postgresql://trader@db.internal/tradebus",
        "TRADEBUS_DATABASE__PASSWORD": "hunter2-db",
    }
    settings = load_settings(None, env=env, dotenv_file=None)
    assert settings.database.url == "postgresql://trader@db.internal/tradebus"
    assert "hunter2-db" in secret_values(settings)
    assert "hunter2-db" not in render_effective(settings)
    with pytest.raises(ConfigError, match=r"database\.url: .*password"):
        load_settings(
            None,
            env={"TRADEBUS_DATABASE__URL": "postgresql://trader:hunter2@db/tradebus"},
            dotenv_file=None,
        )
    with pytest.raises(ConfigError, match=r"database\.url: unsupported database 'mysql'"):
        load_settings(None, env={"TRADEBUS_DATABASE__URL": "mysql://x@h/db"}, dotenv_file=None)
