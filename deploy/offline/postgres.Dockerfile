# A stand-in for postgres:16 from Debian bookworm's PostgreSQL 15 (the
# version the test suite runs on), whose entrypoint honours the official
# image's POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB.
FROM local/debian:bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/*
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENV PGDATA=/var/lib/postgresql/data
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["/bin/sh", "/usr/local/bin/postgres-entrypoint.sh"]
