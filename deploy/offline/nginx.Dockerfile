# A stand-in for nginx:1.28-alpine from Debian unstable's nginx (1.30; the
# scale-out proxy's upstream needs `resolve`, nginx ≥ 1.27.3). A snapshot
# mirror's unstable Release file may be past its Valid-Until date.
FROM local/debian:sid
RUN apt-get -o Acquire::Check-Valid-Until=false update \
    && apt-get install -y --no-install-recommends nginx \
    && rm -rf /var/lib/apt/lists/*
EXPOSE 8080
CMD ["nginx", "-g", "daemon off;"]
