#!/bin/sh
# Fill the ${TUITALK_*} ports into the rendered nginx.conf, then become nginx (PID 1, so
# docker's SIGTERM/SIGKILL reach it directly). Refuses to start with a port missing.
set -eu
conf=/var/lib/tuitalk-nginx/nginx.conf
for var in TUITALK_NGINX_PORT TUITALK_BACKEND_PORT_1 TUITALK_BACKEND_PORT_2 \
           TUITALK_BACKEND_PORT_3; do
    eval "value=\${$var:-}"
    case $value in ''|*[!0-9]*) echo "$var='$value' is not a port" >&2; exit 2 ;; esac
done
sed -e "s/\${TUITALK_NGINX_PORT}/$TUITALK_NGINX_PORT/g" \
    -e "s/\${TUITALK_BACKEND_PORT_1}/$TUITALK_BACKEND_PORT_1/g" \
    -e "s/\${TUITALK_BACKEND_PORT_2}/$TUITALK_BACKEND_PORT_2/g" \
    -e "s/\${TUITALK_BACKEND_PORT_3}/$TUITALK_BACKEND_PORT_3/g" \
    /etc/tuitalk/nginx.conf > "$conf"
if grep -v '^ *#' "$conf" | grep -q '\${TUITALK_'; then
    echo "$conf still has a \${TUITALK_...} placeholder" >&2
    exit 2
fi
exec nginx -p /var/lib/tuitalk-nginx -c "$conf"
