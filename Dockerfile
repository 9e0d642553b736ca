# syntax=docker/dockerfile:1
# Production image: the API on PostgreSQL, run as an unprivileged user.
#
#   docker build -t migrant-services .
#   docker run --rm -p 8000:8000 \
#     -e DATABASE_URL=postgresql+psycopg://migrant_app:…@db:5432/migrant \
#     -e JWT_KEYS=k2026a:<32+ random characters> -e THROTTLE_SECRET=<32+ random characters> \
#     migrant-services
#
# APP_ENV=production refuses to start with the development secrets or without PostgreSQL
# (Settings.check_production). The container migrates the schema, then serves; with several replicas set
# MIGRATE_ON_START=0 and run `docker run … migrant-services migrant migrate` once per release instead
# (docs/deployment.md). One worker per container: scale with replicas behind the load balancer (the API is
# stateless). UVICORN_LOG_LEVEL=warning keeps uvicorn's access log (full URLs, query strings included)
# out of the container log; log requests at the reverse proxy, without query strings.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml constraints.txt ./
COPY app ./app
# Wheels of the project and of every dependency at the versions of constraints.txt, the ones the suite passed with
# (all have binary wheels: no compiler in the image).
RUN python -m pip wheel -c constraints.txt --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    APP_ENV=production \
    MIGRANT_HOME=/srv/migrant \
    MIGRATE_ON_START=1 \
    WEB_CONCURRENCY=1 \
    UVICORN_LOG_LEVEL=warning \
    PORT=8000
RUN groupadd --system --gid 10001 migrant \
 && useradd --system --uid 10001 --gid migrant --no-create-home --home-dir /srv/migrant --shell /usr/sbin/nologin migrant
# A regular (non-editable) install into the image's Python; the wheels are not kept.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links /wheels migrant-services
# Alembic's script directory is not part of the package: it lives in MIGRANT_HOME, read-only.
WORKDIR /srv/migrant
COPY alembic.ini ./
COPY migrations ./migrations
USER migrant:migrant
EXPOSE 8000
# No curl in slim images: ask /healthz with Python. 503 (database unreachable) counts as unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=40s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; u = 'http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'); sys.exit(0 if urllib.request.urlopen(u, timeout=4).status == 200 else 1)"]
# Migrations may run as the schema owner (MIGRATE_DATABASE_URL) while the API runs as a role that cannot
# change the schema or the audit log (DATABASE_URL): see docs/deployment.md.
CMD ["sh", "-c", "if [ \"$MIGRATE_ON_START\" = 1 ]; then DATABASE_URL=\"${MIGRATE_DATABASE_URL:-$DATABASE_URL}\" migrant migrate || exit 1; fi; exec migrant serve --host 0.0.0.0 --port \"$PORT\" --workers \"$WEB_CONCURRENCY\""]
