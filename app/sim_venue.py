"""The embedded simulator of ``exchange.venue = "sim"``: ``[sim]`` settings → ``SimExchange``.

``tradebus run`` with no config trades against it, and ``tradebus sim`` serves it alone. The
daemon reaches it exactly as it reaches Binance (same client, Binance's paths, the simulator's
public test key), so nothing downstream knows which venue it talks to.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import SecretStr

from app.domain.clock import Clock
from config import Settings
from config.exchange import ExchangeSettings
from exchange.sim.auth import ApiCredential
from exchange.sim.matching import Fees, FillModel
from exchange.sim.options import TEST_API_KEY, TEST_API_SECRET, SimOptions, SymbolFeedOptions
from exchange.sim.server import SimExchange, bind_socket

__all__ = ["build_sim", "sim_client_settings", "sim_options"]


def sim_options(settings: Settings) -> SimOptions:
    sim = settings.sim
    symbols = settings.exchange.symbols
    feeds = {
        symbol: SymbolFeedOptions(
            klines_file=sim.klines_files.get(symbol), start_price=sim.start_prices.get(symbol)
        )
        for symbol in set(sim.klines_files) | set(sim.start_prices)
    }
    return SimOptions(
        host=sim.host,
        port=sim.port,
        seed=sim.seed,
        spot_symbols=sim.spot_symbols or symbols,
        futures_symbols=sim.futures_symbols or symbols,
        feeds=feeds,
        interval=sim.interval,
        speed=None if sim.speed == "max" else float(sim.speed),
        updates_per_bar=sim.updates_per_bar,
        history_bars=sim.history_bars,
        spot_balances=dict(sim.spot_balances),
        futures_wallet={"USDT": sim.futures_wallet_usdt},
        spot_fees=Fees(sim.spot_maker_fee, sim.spot_taker_fee),
        futures_fees=Fees(sim.futures_maker_fee, sim.futures_taker_fee),
        fill_model=FillModel(
            slippage_bps=Decimal(sim.slippage_bps), participation=Decimal(sim.participation)
        ),
        default_leverage=sim.default_leverage,
        api_keys=(
            *SimOptions().api_keys,
            *(
                ApiCredential(api_key, "ed25519", public_key_pem=path.read_bytes())
                for api_key, path in sim.ed25519_keys.items()
            ),
        ),
        state_file=sim.state_file,
        state_save_interval_s=sim.state_save_interval_s,
    )


def build_sim(settings: Settings, *, clock: Clock) -> SimExchange:
    """The simulator with its port already bound (so the clients' URLs are known now).

    Raises ``OSError`` when the port is taken and ``ValueError``/``StateFileError`` when the
    options or the saved state cannot be used.
    """
    options = sim_options(settings)
    sock = bind_socket(options.host, options.port)
    try:
        return SimExchange(options, clock=clock, sock=sock)
    except BaseException:
        sock.close()
        raise


def sim_client_settings(exchange: ExchangeSettings) -> ExchangeSettings:
    """The client settings for the simulator: its public HMAC test key."""
    return exchange.model_copy(
        update={
            "api_key": SecretStr(TEST_API_KEY),
            "api_secret": SecretStr(TEST_API_SECRET),
            "key_type": "hmac",
            "private_key_file": None,
        }
    )
