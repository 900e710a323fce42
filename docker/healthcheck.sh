#!/bin/bash
# Container HEALTHCHECK for Oxka: exits 0 when GET /readyz on the metrics endpoint answers
# 200, 1 otherwise (503 while logs load, connection refused, timeout). No curl in the image:
# bash's /dev/tcp speaks the one HTTP/1.0 request.
# The endpoint: $OXKA_HEALTH_ADDR (host:port) if set, else 127.0.0.1 and the port of
# $KAFKA_OXKA_METRICS_LISTEN (default 9404). Path: $OXKA_HEALTH_PATH (default /readyz).
set -u
listen="${KAFKA_OXKA_METRICS_LISTEN:-0.0.0.0:9404}"
addr="${OXKA_HEALTH_ADDR:-127.0.0.1:${listen##*:}}"
host="${addr%:*}"
port="${addr##*:}"
path="${OXKA_HEALTH_PATH:-/readyz}"
exec 3<>"/dev/tcp/$host/$port" || { echo "oxka-healthcheck: cannot connect to $addr" >&2; exit 1; }
printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$host" >&3
status=""
IFS= read -r -t 4 status <&3 || true
exec 3>&-
case "$status" in
  "HTTP/1."[01]" 200"*) exit 0 ;;
  *) echo "oxka-healthcheck: GET $path on $addr: ${status:-no answer}" >&2; exit 1 ;;
esac
