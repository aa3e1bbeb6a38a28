"""The knowledge base (bot/kb): the embedded Markdown articles, Spanish folding, aliases, the threshold."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from bot.catalog import Catalog
from bot.kb import EMBEDDED, KnowledgeBase, build_knowledge_base
from bot.kb.analysis import Analyzer
from bot.kb.articles import ArticleError, load_folder, parse_article
from bot.kb.embedded import EmbeddedBase
from bot.kb.synonyms import Synonyms
from bot.settings import Settings
from bot.settings.env import SettingError
from bot.settings.kb import DEFAULT_KB_DIR, KbSettings
from bot.settings.tickets import TicketsSettings

CARTERA = "eliminar-actualizar-registros-cartera"
EXPERIENCIA = "falla-en-experiencia-de-usuario"


def article(title: str, types: str = "[]", keywords: str = "[]", body: str = "Texto del artículo.") -> str:
    return f"---\ntitle: {title}\nrequest_types: {types}\nkeywords: {keywords}\n---\n{body}\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def shipped(catalog: Catalog) -> KnowledgeBase:
    return build_knowledge_base(KbSettings(backend="embedded"), TicketsSettings(), catalog)


@pytest.fixture
def synonyms(catalog: Catalog) -> Synonyms:
    return Synonyms(catalog, Analyzer())


def ids(matches: list) -> list[str]:
    return [m.article.id for m in matches]


# ------------------------------------------------------------------ the shipped folder
def test_the_shipped_articles_load_and_name_only_catalog_request_types(catalog: Catalog) -> None:
    loaded = load_folder(DEFAULT_KB_DIR, [t.id for t in catalog.request_types])
    assert loaded.problems == ()
    by_id = {a.id: a for a in loaded.articles}
    assert {CARTERA, EXPERIENCIA, "acompanamiento-tecnico"} <= set(by_id)
    assert "readme" not in by_id  # the folder's how-to is not an article
    for shipped in loaded.articles:
        assert shipped.title and shipped.excerpt and shipped.request_types and shipped.url is None
        assert len(shipped.excerpt) <= 161
    assert "cargue de cartera" in by_id[CARTERA].body and "Acompañamiento técnico" in by_id[CARTERA].body


def test_the_cartera_article_is_found_in_any_form_of_the_question(shipped: KnowledgeBase) -> None:
    for question in (
        "¿Cómo actualizo registros de cartera?",
        "actualizar el registro",
        "como actualizo registros de cartera",  # no accents, no question marks
        "ACTUALIZACIÓN DE UN REGISTRO DE CARTERA",
        "quiero borrar unos registros de la cartera",
        "como elimino un regsitro de carterra",  # typing slips
    ):
        found = shipped.search(question)
        assert found and found[0].article.id == CARTERA, (question, ids(found))
        assert found[0].source == EMBEDDED and 0 < found[0].score <= 1


def test_accents_plurals_and_verb_forms_fold_to_the_same_terms() -> None:
    analyzer = Analyzer()
    assert analyzer.terms("actualizó actualizar actualización actualizaciones") == ["actualiz"] * 4
    assert analyzer.terms("registros Registro") == ["registr"] * 2
    assert analyzer.terms("¿Cómo la creación?") == analyzer.terms("crear")
    assert analyzer.terms("hola, buenas tardes, por favor") == []


def test_questions_off_the_base_get_no_article(shipped: KnowledgeBase) -> None:
    for question in (
        "quiero pedir una pizza",
        "hola",
        "cuanto cuesta el dolar hoy",
        "como cambio el wifi de mi casa",
        "",
    ):
        assert shipped.search(question) == [], question
    assert shipped.search("como actualizo registros de cartera", k=0) == []


def test_the_threshold_filters_and_k_limits(shipped: KnowledgeBase) -> None:
    everything = shipped.search("registro de cartera", k=10, threshold=0.0)
    assert len(everything) >= 3 and [m.score for m in everything] == sorted((m.score for m in everything), reverse=True)
    assert len(shipped.search("registro de cartera", k=1, threshold=0.0)) == 1
    strict = shipped.search("registro de cartera", k=10, threshold=everything[-1].score + 0.001)
    assert len(strict) < len(everything) and all(m.score > everything[-1].score for m in strict)


def test_the_falla_en_experiencia_article_answers_what_it_is_for(shipped: KnowledgeBase) -> None:
    assert ids(shipped.search("que es falla en experiencia de usuario"))[0] == EXPERIENCIA
    assert EXPERIENCIA in ids(shipped.search("la visual de ecollect se ve mal al pagar"))


# --------------------------------------------------------------------- aliases
def test_an_alias_of_a_request_type_finds_the_articles_tagged_with_it(tmp_path: Path, synonyms: Synonyms) -> None:
    (tmp_path / "sftp.md").write_text(
        article("No puedo conectarme al servidor de transferencia", "[sin_acceso_sftp]", body="Revisa la conexión."),
        encoding="utf-8",
    )
    (tmp_path / "otro.md").write_text(article("Cómo revisar la conexión del servidor de correo"), encoding="utf-8")
    base = KnowledgeBase(EmbeddedBase(tmp_path, synonyms), threshold=0.0)
    # «filezilla» is only an alias of «No tengo acceso al SFTP» in the catalog: the article never says it.
    assert ids(base.search("no me abre el filezilla")) == ["sftp"]
    # Both articles say «conexión» and «servidor»: the one tagged with the alias's type comes first.
    assert ids(base.search("falla la conexion al servidor por ftp"))[0] == "sftp"


def test_an_alias_expands_to_its_request_types_name(synonyms: Synonyms) -> None:
    analyzer = synonyms.analyzer
    expansion = synonyms.expand(analyzer.terms("no me funciona la pasarela"))
    assert "pago_en_linea" in expansion.request_types
    assert set(analyzer.terms("Pago en línea")) <= set(expansion.terms) | set(analyzer.terms("pasarela"))
    retired = synonyms.expand(analyzer.terms("quiero eliminar registros de cartera"))
    assert {"gestion_archivos", "acompanamiento_tecnico"} <= retired.request_types


def test_the_known_request_type_favours_its_articles(tmp_path: Path, synonyms: Synonyms) -> None:
    (tmp_path / "a.md").write_text(article("Error al descargar el reporte", "[gestion_archivos]"), encoding="utf-8")
    (tmp_path / "b.md").write_text(
        article("Error al descargar el reporte", "[informacion_transaccional]"), encoding="utf-8"
    )
    base = KnowledgeBase(EmbeddedBase(tmp_path, synonyms), threshold=0.0)
    assert ids(base.search("error al descargar el reporte", request_type="informacion_transaccional"))[0] == "b"
    assert ids(base.search("error al descargar el reporte", request_type="gestion_archivos"))[0] == "a"


# ----------------------------------------------------------- the folder changes
def test_an_article_added_to_the_folder_is_found_without_restarting(tmp_path: Path, catalog: Catalog) -> None:
    settings = KbSettings(backend="embedded", directory=tmp_path, rescan_seconds=0.0)
    base = build_knowledge_base(settings, TicketsSettings(), catalog)
    question = "¿cómo descargo los certificados de retención?"
    assert base.search(question) == []
    (tmp_path / "certificados.md").write_text(
        article("Cómo descargar un certificado de retención", keywords="[certificados]"), encoding="utf-8"
    )
    assert ids(base.search(question)) == ["certificados"]
    assert base.get("certificados") is not None
    (tmp_path / "certificados.md").write_text(article("Cómo pagar en línea con tarjeta"), encoding="utf-8")
    assert base.search(question) == []  # edited: the old text is gone
    (tmp_path / "certificados.md").unlink()
    assert base.search("pagar en linea con tarjeta") == [] and base.get("certificados") is None


def test_the_folder_is_checked_at_most_every_rescan_seconds(tmp_path: Path, synonyms: Synonyms) -> None:
    clock = Clock()
    base = EmbeddedBase(tmp_path, synonyms, rescan_seconds=5.0, clock=clock)
    (tmp_path / "nuevo.md").write_text(article("Cómo descargar un certificado"), encoding="utf-8")
    clock.now += 4.0
    assert base.search("descargar certificado") == []
    clock.now += 1.5
    assert ids(base.search("descargar certificado")) == ["nuevo"]


def test_searches_from_many_threads_while_the_folder_changes(tmp_path: Path, synonyms: Synonyms) -> None:
    base = KnowledgeBase(EmbeddedBase(tmp_path, synonyms, rescan_seconds=0.0), threshold=0.0)
    errors: list[BaseException] = []

    def searcher() -> None:
        try:
            for _ in range(40):
                for match in base.search("descargar certificado"):
                    assert match.article.title.startswith("Cómo descargar")
        except BaseException as exc:  # noqa: BLE001  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(6)]
    for thread in threads:
        thread.start()
    for number in range(20):
        (tmp_path / f"a{number}.md").write_text(article(f"Cómo descargar un certificado {number}"), encoding="utf-8")
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(base.search("descargar certificado", k=50)) == 20


# ------------------------------------------------------------ malformed files
def test_a_malformed_file_is_skipped_and_named_in_the_log(
    tmp_path: Path, synonyms: Synonyms, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "bueno.md").write_text(article("Cómo descargar un certificado"), encoding="utf-8")
    (tmp_path / "sin-encabezado.md").write_text("# Solo texto\nsin encabezado", encoding="utf-8")
    (tmp_path / "yaml-roto.md").write_text("---\ntitle: [sin cerrar\n---\ncuerpo\n", encoding="utf-8")
    (tmp_path / "sin-titulo.md").write_text("---\nkeywords: [a]\n---\ncuerpo\n", encoding="utf-8")
    (tmp_path / "tipo-inventado.md").write_text(article("Algo", "[no_existe]"), encoding="utf-8")
    (tmp_path / "latin1.md").write_bytes(article("Cómo pagar").encode("latin-1"))
    (tmp_path / "Mal Nombre.md").write_text(article("Nombre con espacios"), encoding="utf-8")
    (tmp_path / "vacio.md").write_text("---\ntitle: Sin cuerpo\n---\n", encoding="utf-8")
    (tmp_path / "README.md").write_text("# Cómo escribir artículos", encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="bot.kb.articles"):
        base = EmbeddedBase(tmp_path, synonyms)
    assert [a.id for a in base.articles()] == ["bueno"]
    assert len(base.problems) == 7
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for name in (
        "sin-encabezado.md",
        "yaml-roto.md",
        "sin-titulo.md",
        "tipo-inventado.md",
        "latin1.md",
        "Mal Nombre.md",
        "vacio.md",
    ):
        assert name in logged
    assert "no_existe" in logged and "README" not in logged


def test_a_missing_folder_means_no_articles_not_a_crash(tmp_path: Path, synonyms: Synonyms) -> None:
    base = KnowledgeBase(EmbeddedBase(tmp_path / "no-existe", synonyms))
    assert base.search("registro de cartera") == []


def test_front_matter_fields_are_checked() -> None:
    with pytest.raises(ArticleError, match="keywords"):
        parse_article("a.md", "---\ntitle: T\nkeywords: {a: 1}\n---\ncuerpo")
    parsed = parse_article(
        "a.md", "---\ntitle: '  Un   título '\nkeywords: uno\n---\nPrimer **párrafo** con [enlace](http://x).\n"
    )
    assert parsed.title == "Un título" and parsed.keywords == ("uno",)
    assert parsed.excerpt == "Primer párrafo con enlace."


# ------------------------------------------------------------------ settings
def test_the_settings_choose_the_backend() -> None:
    assert KbSettings.from_env({}).backend == "auto"
    assert KbSettings.from_env({}).uses_jsm(True) and not KbSettings.from_env({}).uses_jsm(False)
    assert not KbSettings.from_env({"KB_BACKEND": "embedded"}).uses_jsm(True)
    assert KbSettings.from_env({"KB_BACKEND": "JSM"}).uses_jsm(False)
    with pytest.raises(SettingError, match="KB_BACKEND"):
        KbSettings.from_env({"KB_BACKEND": "elastic"})
    with pytest.raises(SettingError, match="KB_THRESHOLD"):
        KbSettings.from_env({"KB_THRESHOLD": "2"})
    settings = Settings.from_env({"KB_DIR": "/tmp/articulos", "KB_THRESHOLD": "0.4", "KB_JSM_TIMEOUT": "1.5"})
    assert settings.kb.directory == Path("/tmp/articulos") and settings.kb.threshold == 0.4
    assert settings.kb.jsm_timeout == 1.5
