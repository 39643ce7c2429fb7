#!/bin/bash
# Test payload: records the environment the script was given, then serves its working directory
# (GET /environment.json returns it).
set -eu
"${MAAS_PYTHON}" -c 'import json, os; json.dump(dict(os.environ), open("environment.json", "w"))'
printf '{"url": "http://127.0.0.1:%s"}' "$MAAS_PORT" > endpoint.dat.tmp
mv endpoint.dat.tmp endpoint.dat
exec "${MAAS_PYTHON}" -m http.server "$MAAS_PORT" --bind 127.0.0.1
