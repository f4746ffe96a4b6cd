# syntax=docker/dockerfile:1
# tgworkers: multi-stage build, slim Python base, non-root, runtime deps only.
# ./scripts/build-image builds it and smoke-tests the result (docs/scaling.md, "The image").

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Reproducible: every runtime dependency (and the build backend) is pinned with
# hashes in a lock file (uv pip compile --generate-hashes; docs/scaling.md says how
# to refresh it); the package itself is installed without resolving anything.
COPY requirements.lock requirements-build.lock ./
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-compile --require-hashes --only-binary=:all: -r requirements.lock \
 && python -m venv /opt/build \
 && /opt/build/bin/pip install --require-hashes -r requirements-build.lock
COPY pyproject.toml README.md ./
COPY tgworkers ./tgworkers
RUN /opt/build/bin/pip wheel --no-build-isolation --no-deps --wheel-dir /tmp/wheels . \
 && /opt/venv/bin/pip install --no-compile --no-deps /tmp/wheels/*.whl \
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
