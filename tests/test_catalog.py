"""The catalog says what the change guide says, and rejects inconsistent edits."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
import yaml

from bot.catalog import CATALOG_PATH, Catalog, CatalogError, parse_catalog

# The catalog as the change guide leaves it (section "Contacta con nosotros sobre").
EXPECTED = {
    "Módulo administrativo / Transferencia de archivos": [
        "Gestión de archivos",
        "Falla ingresando al módulo",
        "Mis credenciales de ingreso al módulo no funcionan",
        "No tengo acceso al SFTP",
        "Solicitud usuario",
    ],
    "Medios de pago": ["Inconsistencia en un pago", "Pago en línea", "Pago presencial"],
    "Funcionalidades ecollect": [
        "Falla en experiencia de usuario",
        "Sistemas de información - integración con ERP's",
        "Multipayment (pagos mixtos)",
        "Débito automático",
    ],
    "Formación e información": [
        "Consultas sobre los servicios contratados",
        "Capacitaciones",
        "Acompañamiento técnico",
        "Información transaccional",
    ],
    "Requerimientos comerciales": [
        "Ambiente de pruebas",
        "Nuevo medio de pago",
        "Información ecollect",
        "Configuración de servicio(s)",
        "Adquirir un nuevo servicio(s)",
        "Actualización de logo y/o textos",
    ],
}
ITEMS = [
    "Falla en cargue archivos de usuarios",
    "Falla en cargue archivos de cartera",
    "Falla en el reporte de transacciones",
    "Falla en generación de archivos de pagos",
]
RETIRED = "Solicitud eliminación y/o actualización registros de cartera"


def raw_catalog() -> dict:
    return yaml.safe_load(CATALOG_PATH.read_text(encoding="utf-8"))


def test_five_categories_and_22_request_types_as_in_the_guide(catalog: Catalog) -> None:
    found = {c.name: [rt.name for rt in c.request_types] for c in catalog.categories}
    assert found == EXPECTED
    assert len(catalog.request_types) == 22


def test_gestion_de_archivos_offers_exactly_the_four_items(catalog: Catalog) -> None:
    (gestion,) = [rt for rt in catalog.request_types if rt.name == "Gestión de archivos"]
    item = gestion.field("item")
    assert item is not None and item.required and item.label == "ítem"
    assert [o.name for o in item.options] == ITEMS
    assert RETIRED not in [o.name for o in catalog.all_options()]


def test_portal_descriptions_are_verbatim(catalog: Catalog) -> None:
    by_name = {rt.name: rt for rt in catalog.request_types}
    assert by_name["Falla en experiencia de usuario"].description == (
        "Selecciona esta opción si tienes inconvenientes con la visual de ecollect en el proceso de pago"
    )
    assert by_name["Falla en experiencia de usuario"].new
    assert by_name["Acompañamiento técnico"].description.startswith(
        "Funciona como un recurso adicional que permite reforzar el informe técnico"
    )
    assert by_name["Información transaccional"].description == (
        "Solicitud de información general de una transacción realizada"
    )
    # Every type can be explained, from the portal text or our own summary.
    assert all(rt.explanation for rt in catalog.request_types)


def test_acompanamiento_tecnico_asks_the_portal_fields(catalog: Catalog) -> None:
    rt = catalog.request_type("acompanamiento_tecnico")
    assert rt is not None
    assert {f.id: f.required for f in rt.fields} == {
        "description": True,
        "email": True,
        "phone": True,
        "attachment": False,
    }
    assert rt.field("email").label == "Generar esta solicitud en nombre de"


def test_retired_option_redirects_to_acompanamiento_tecnico(catalog: Catalog) -> None:
    (retired,) = catalog.retired
    assert retired.name == RETIRED
    target = catalog.request_type(retired.redirect.request_type_id)
    assert target is not None and target.name == "Acompañamiento técnico"
    assert catalog.category_of(target).name == "Formación e información"
    assert "cargue de cartera" in retired.explanation
    assert "Módulo Administrativo" in retired.explanation
    assert retired.redirect.closing == "El equipo de soporte te indicará cómo realizar el proceso."


def test_matching_is_accent_and_case_insensitive(catalog: Catalog) -> None:
    assert [c.id for c in catalog.match_categories("FORMACION E INFORMACION")] == ["formacion_informacion"]
    assert [c.id for c in catalog.match_countries("soy de mexico")] == ["MX"]
    assert [r.id for r in catalog.match_retired("quiero eliminar registros de cartera")] == [
        "eliminacion_actualizacion_cartera"
    ]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda c: c["categories"][0]["request_types"].append(copy.deepcopy(c["categories"][0]["request_types"][1])), "duplicate"),
        (lambda c: c["retired"][0]["redirect"].update(request_type="no_existe"), "redirect to unknown"),
        (lambda c: c["categories"][0]["request_types"][0]["fields"][0]["options"].append({"id": "x", "name": RETIRED}), "still offered"),
        (lambda c: c["categories"][0]["request_types"][0]["fields"].pop(1), "requester e-mail"),
        (lambda c: c["fields"]["email"].update(kind="nope"), "unknown kind"),
    ],
)
def test_inconsistent_catalog_edits_are_refused(mutate, message: str) -> None:
    raw = raw_catalog()
    mutate(raw)
    with pytest.raises(CatalogError, match=message):
        parse_catalog(raw)


def test_catalog_json_contract() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bot", "catalog", "--json"], capture_output=True, text=True, check=True
    ).stdout
    data = json.loads(out)
    assert [c["name"] for c in data["categories"]] == list(EXPECTED)
    types = [rt for c in data["categories"] for rt in c["request_types"]]
    assert len(types) == 22
    assert all({"name", "description", "intent", "fields"} <= set(rt) for rt in types)
    gestion = next(rt for rt in types if rt["name"] == "Gestión de archivos")
    item = next(f for f in gestion["fields"] if f["id"] == "item")
    assert [o["name"] for o in item["options"]] == ITEMS
    assert item["required"] is True
    (retired,) = data["retired"]
    assert retired["name"] == RETIRED
    assert retired["intent"] == "cambio_registros_cartera"
    assert retired["redirect"] == {
        "request_type": "acompanamiento_tecnico",
        "category": "formacion_informacion",
        "closing": "El equipo de soporte te indicará cómo realizar el proceso.",
    }
