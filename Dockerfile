# syntax=docker/dockerfile:1
# tgworkers: multi-stage build, slim Python base, non-root, runtime deps only.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY tgworkers ./tgworkers
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-compile . \
 && find /opt/venv -name "__pycache__" -prune -exec rm -rf {} +

FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=8099
RUN groupadd --system --gid 10001 tgworkers \
 && useradd --system --uid 10001 --gid tgworkers --home-dir /app --shell /usr/sbin/nologin tgworkers
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
USER 10001:10001
EXPOSE 8099
# liveness: the worker's loops answer on /healthz (no Redis check: an outage must not restart pods)
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8099')}/healthz\", timeout=2)"]
# exec form: Python is PID 1 and receives SIGTERM for the graceful shutdown
ENTRYPOINT ["python", "-m", "tgworkers", "run"]
