# gatewatch image: one image runs every gatewatch command (exporter, sim, probe, flatten, ...).
# Multi-arch by construction: python:3.12-slim is published for linux/amd64 and linux/arm64 (the
# Raspberry Pi), and every dependency ships pure-Python or manylinux/musllinux wheels for both, so
# there is no architecture-specific step. Build: docker build -t gatewatch:local .

FROM python:3.12.10-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The virtual environment is copied whole into the runtime stage: no compiler, pip cache or
# source tree ends up in the final image. Versions are the exact pins in pyproject.toml.
RUN python -m venv /opt/gatewatch
COPY pyproject.toml README.md ./
COPY gatewatch/ gatewatch/
COPY exporter/ exporter/
COPY probes/ probes/
COPY proxy/ proxy/
COPY simulator/ simulator/
RUN /opt/gatewatch/bin/pip install --no-cache-dir . \
    && /opt/gatewatch/bin/gatewatch --help >/dev/null

FROM python:3.12.10-slim-bookworm
LABEL org.opencontainers.image.title="gatewatch" \
      org.opencontainers.image.description="IB Gateway monitoring: exporter, probes, simulator" \
      org.opencontainers.image.licenses="MIT"
ENV PATH=/opt/gatewatch/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# A fixed, unprivileged uid so bind-mounted data (var/) has a predictable owner on the host.
RUN groupadd --system --gid 10001 gatewatch \
    && useradd --system --uid 10001 --gid gatewatch --home-dir /app --shell /usr/sbin/nologin gatewatch \
    && mkdir -p /app/var \
    && chown gatewatch:gatewatch /app/var
COPY --from=build /opt/gatewatch /opt/gatewatch
COPY config/ /app/config/
WORKDIR /app
USER 10001:10001
# 14002 exporter (/metrics, /healthz); 4002 simulator TWS API; 4080 simulator control API.
EXPOSE 14002 4002 4080
# The exporter's /healthz; services running another command (the simulator) override this.
# python's urllib instead of curl: the slim image has no curl and needs none.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:14002/healthz', timeout=4)"]
ENTRYPOINT ["gatewatch"]
CMD ["exporter", "--config", "/app/config/gatewatch.yaml", "--listen", "0.0.0.0:14002"]
