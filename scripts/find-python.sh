#!/usr/bin/env sh
# Prints the path of a Python 3.10 interpreter (Rasa 3.6.21 needs >=3.8,<3.11
# and this project is pinned to 3.10), or explains how to get one and fails.
# Looks at $PYTHON, python3.10 on PATH, pyenv's versions, then common paths.
set -u
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' >/dev/null 2>&1; }
for candidate in "${PYTHON:-}" python3.10 \
    "$(pyenv root 2>/dev/null)"/versions/3.10*/bin/python3.10 \
    "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10*/bin/python3.10 \
    /usr/local/bin/python3.10 /usr/bin/python3.10; do
  [ -n "$candidate" ] || continue
  path=$(command -v "$candidate" 2>/dev/null) || continue
  if ok "$path"; then echo "$path"; exit 0; fi
done
cat >&2 <<'MSG'
ERROR: no encontré Python 3.10 (Rasa 3.6.21 requiere Python < 3.11).
Instálalo, por ejemplo con `pyenv install 3.10` o el paquete python3.10 de tu
sistema, o indica su ruta con `make PYTHON=/ruta/a/python3.10 ...`.
MSG
exit 1
