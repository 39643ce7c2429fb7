#!/bin/bash
# A payload whose service dies at once.
echo "model file is corrupt" >&2
exit 3
