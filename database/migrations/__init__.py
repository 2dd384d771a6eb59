"""The alembic migrations of tradebus's tables (a package so an installed daemon ships them)."""
