#!/bin/bash
# Test payload: proves it ran by creating the file named by the request's env MARKER_FILE, then
# serves its working directory.
set -eu
touch "$MARKER_FILE"
printf '{"url": "http://127.0.0.1:%s"}' "$MAAS_PORT" > endpoint.dat.tmp
mv endpoint.dat.tmp endpoint.dat
exec "${MAAS_PYTHON}" -m http.server "$MAAS_PORT" --bind 127.0.0.1
