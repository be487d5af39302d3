# The service under gunicorn, installed as a wheel (not editable, no source tree) on the exact versions of
# requirements.lock, each checked against its hash. Migrations and the docs' assets are package data.
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY migrations ./migrations
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 APP_ENV=production LOG_FORMAT=json \
    INSTANCE_PATH=/var/lib/risk-register
COPY requirements.lock /tmp/requirements.lock
RUN pip install --no-cache-dir --require-hashes -r /tmp/requirements.lock && rm /tmp/requirements.lock
COPY --from=wheel /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels \
    && useradd --system --home-dir /var/lib/risk-register register \
    && mkdir -p /var/lib/risk-register && chown register /var/lib/risk-register
USER register
WORKDIR /var/lib/risk-register
EXPOSE 8000
# Ready, not merely alive: the database answers and its schema is at the newest migration.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"]
CMD ["risk-register", "serve", "--bind", "0.0.0.0:8000", "--workers", "2"]
