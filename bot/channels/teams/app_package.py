"""The Teams app package an administrator uploads: ``manifest.json`` and the two icons, in a zip.

Hand-written manifests went wrong in small ways Teams only reports on upload
(a missing ``supportsFiles``, a bot id from another environment), so the
package is built from the settings and checked against Microsoft's own JSON
schema, pinned in ``schema/`` (see ``schema/SOURCE.md``), before it is written.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema

MANIFEST_VERSION = "1.17"
HERE = Path(__file__).resolve().parent
SCHEMA_PATH = HERE / "schema" / f"MicrosoftTeams.schema.v{MANIFEST_VERSION}.json"
COLOR_ICON = HERE / "icons" / "color.png"  # 192×192, full color
OUTLINE_ICON = HERE / "icons" / "outline.png"  # 32×32, white on transparent
PACKAGE_NAME = "soporte-ecollect.zip"
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
APP_ID_ENV = "TEAMS_APP_ID"

# The company's site: Teams shows it on the app's page, and requires the privacy and terms links.
WEBSITE_URL = "https://www.ecollect.co"
ACCENT_COLOR = "#0B5FB4"

SHORT_DESCRIPTION = "Reporta incidencias y solicitudes a la Mesa de ayuda de ecollect."
FULL_DESCRIPTION = (
    "Soporte ecollect es el asistente de la Mesa de ayuda de ecollect. Te guía paso a paso para reportar "
    "una incidencia o hacer una solicitud (pagos, conciliación, gestión de archivos, accesos y más), "
    "recibe tus archivos y capturas de pantalla como adjuntos y crea el ticket para el equipo de soporte. "
    "Cuando el equipo responda, te avisará en este mismo chat."
)


class PackageError(ValueError):
    """The package cannot be built; the message tells the administrator what to fix (Spanish)."""


@dataclass(frozen=True)
class AppPackage:
    manifest: dict[str, Any]
    data: bytes  # the zip


def valid_domain(public_url: str) -> list[str]:
    """The public server's host, for Teams to trust links to it; none when no public URL is set."""
    host = urlsplit(public_url).hostname if public_url else None
    return [host] if host else []


def build_manifest(app_id: str, public_url: str = "", version: str = "1.0.0") -> dict[str, Any]:
    """The manifest of the personal-chat bot; ``app_id`` is the Azure Bot's application id."""
    app_id = app_id.strip()
    if not app_id:
        raise PackageError(
            f"Falta {APP_ID_ENV}: define el Id. de aplicación del recurso Azure Bot (Configuración) "
            "antes de generar el paquete de Teams."
        )
    if not GUID.match(app_id):
        raise PackageError(
            f"{APP_ID_ENV} debe ser el Id. de aplicación del recurso Azure Bot, un GUID como "
            f"00000000-0000-0000-0000-000000000000 (valor actual: {app_id!r})."
        )
    if not SEMVER.match(version):
        raise PackageError(f"La versión de la aplicación debe tener la forma 1.0.0 (valor: {version!r}).")
    manifest: dict[str, Any] = {
        "$schema": f"https://developer.microsoft.com/en-us/json-schemas/teams/v{MANIFEST_VERSION}/"
        "MicrosoftTeams.schema.json",
        "manifestVersion": MANIFEST_VERSION,
        "version": version,
        "id": app_id,
        "developer": {
            "name": "ecollect",
            "websiteUrl": WEBSITE_URL,
            "privacyUrl": WEBSITE_URL,
            "termsOfUseUrl": WEBSITE_URL,
        },
        "name": {"short": "Soporte ecollect", "full": "Soporte ecollect: Mesa de ayuda"},
        "description": {"short": SHORT_DESCRIPTION, "full": FULL_DESCRIPTION},
        "icons": {"color": COLOR_ICON.name, "outline": OUTLINE_ICON.name},
        "accentColor": ACCENT_COLOR,
        "bots": [
            {
                "botId": app_id,
                "scopes": ["personal"],
                "supportsFiles": True,  # without it Teams sends no files in personal chats
                "isNotificationOnly": False,
            }
        ],
        "permissions": ["identity", "messageTeamMembers"],
        "validDomains": valid_domain(public_url),
        "defaultInstallScope": "personal",
    }
    return manifest


def load_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


def validate(manifest: dict[str, Any], schema: dict[str, Any]) -> None:
    """Every schema violation, worded for the administrator; none means Teams' own check will pass it."""
    validator_class = jsonschema.validators.validator_for(schema)
    errors = sorted(validator_class(schema).iter_errors(manifest), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"- {'/'.join(str(p) for p in e.absolute_path) or '(raíz)'}: {e.message}" for e in errors]
        raise PackageError(f"El manifiesto no cumple el esquema de Teams v{MANIFEST_VERSION}:\n" + "\n".join(lines))


def build_package(app_id: str, public_url: str = "", version: str = "1.0.0") -> AppPackage:
    manifest = build_manifest(app_id, public_url, version)
    validate(manifest, load_schema())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:  # files at the root, as Teams expects
        archive.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
        archive.writestr(COLOR_ICON.name, COLOR_ICON.read_bytes())
        archive.writestr(OUTLINE_ICON.name, OUTLINE_ICON.read_bytes())
    return AppPackage(manifest, buffer.getvalue())


def write_package(out_dir: Path, app_id: str, public_url: str = "", version: str = "1.0.0") -> Path:
    """Builds, validates and writes ``<out_dir>/soporte-ecollect.zip``; nothing is written when it fails."""
    package = build_package(app_id, public_url, version)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / PACKAGE_NAME
    partial = path.with_suffix(".zip.tmp")
    partial.write_bytes(package.data)
    partial.replace(path)
    return path
