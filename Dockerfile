# tradebus as a container: `docker build -t tradebus .` then
#   docker run --rm -v tradebus-status:/srv/tradebus/status -v tradebus-logs:/srv/tradebus/logs tradebus
# Secrets: pass TRADEBUS_EXCHANGE__API_KEY/__API_SECRET as env vars, or mount Docker secrets
# and set TRADEBUS_SECRETS_DIR=/run/secrets (files named like the variables).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /srv/tradebus
RUN useradd --system --uid 10001 --home-dir /srv/tradebus tradebus

COPY pyproject.toml README.md ./
COPY app ./app
COPY config ./config
COPY strategies ./strategies
COPY executor ./executor
COPY risk ./risk
COPY database ./database
COPY exchange ./exchange
RUN pip install . \
    && mkdir -p status logs \
    && chown -R tradebus:tradebus status logs

USER tradebus
VOLUME ["/srv/tradebus/status", "/srv/tradebus/logs"]

# `tradebus status` exits 0 only when the heartbeat is fresh and the daemon reports healthy.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["tradebus", "status"]

# SIGTERM starts the ordered drain; give it longer than the sum of the stage deadlines.
STOPSIGNAL SIGTERM
ENTRYPOINT ["tradebus"]
CMD ["run"]
