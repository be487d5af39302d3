# The service under gunicorn. Source stays in /app because migrations/ lives beside the package.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 APP_ENV=production INSTANCE_PATH=/var/lib/risk-register
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY service ./service
COPY migrations ./migrations
RUN pip install --no-cache-dir -e . && useradd --system --home /var/lib/risk-register register \
    && mkdir -p /var/lib/risk-register && chown register /var/lib/risk-register
USER register
EXPOSE 8000
CMD ["risk-register", "serve", "--bind", "0.0.0.0:8000", "--workers", "2"]
