#!/bin/bash
# A payload whose service wants more memory than it is given: it allocates 256 MB at start.
exec "${MAAS_PYTHON:-python3}" -c "
import time
hog = bytearray(256 << 20)
for i in range(0, len(hog), 4096):
    hog[i] = 1
time.sleep(60)
"
