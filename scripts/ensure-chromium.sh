#!/usr/bin/env sh
# Makes sure Debian's chromium is installed for the browser tests (Playwright
# drives it; no browser is ever downloaded from elsewhere). Prints its path.
set -eu
for candidate in "${CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then echo "$candidate"; exit 0; fi
done
echo "Instalando chromium desde los paquetes de Debian para las pruebas de navegador..." >&2
if [ "$(id -u)" = "0" ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else SUDO=""; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ERROR: no hay apt-get; instala chromium a mano o indica su ruta con CHROMIUM=/ruta/chromium." >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2 || true
$SUDO apt-get install -y -qq --no-install-recommends chromium >&2
[ -x /usr/bin/chromium ] || { echo "ERROR: chromium no quedó instalado." >&2; exit 1; }
echo /usr/bin/chromium
