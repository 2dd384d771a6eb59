"""Binance-compatible exchange simulator.

A stand-in for Binance Spot and USD-M Futures that tradebus (or any Binance client) can be
run and tested against without touching the network: the default venue of ``tradebus run``,
served alone by ``tradebus sim``. ``server.SimExchange`` assembles it from
``options.SimOptions``; the README's "The simulator" section maps every module to its role.
"""
