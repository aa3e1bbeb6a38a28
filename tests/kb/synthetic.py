"""A synthetic knowledge base (64 articles) and its held-out questions, for `make bench-kb` and tests.

Clearly test data: every article says it is synthetic and describes an
imaginary «portal de ejemplo», nothing about ecollect. Articles pair an
action with a document («Cómo descargar una factura»), so each article has
near neighbours sharing the action or the document: the search must get
both right. Questions are written the way customers type: other verb forms
(«descargo», «la descarga»), plurals, synonyms the article lists among its
keywords, no accents, a typing slip now and then, and Colombian, Mexican
and Dominican openers. Deterministic (fixed seed).
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass

SEED = 14


@dataclass(frozen=True)
class Action:
    infinitive: str
    forms: tuple[str, ...]  # how customers say it: conjugations, nouns
    synonyms: tuple[str, ...]  # listed in the article's keywords


@dataclass(frozen=True)
class Thing:
    singular: str  # with its article: «una factura»
    plurals: tuple[str, ...]  # «las facturas», «mis facturas»
    synonyms: tuple[str, ...]


ACTIONS = (
    Action("descargar", ("descargo", "la descarga de", "descargue", "descargando"), ("bajar",)),
    Action("anular", ("anulo", "la anulación de", "anule", "anulando"), ("cancelar",)),
    Action("consultar", ("consulto", "la consulta de", "consulte"), ("revisar", "ver")),
    Action("actualizar", ("actualizo", "la actualización de", "actualice", "actualizando"), ("modificar", "cambiar")),
    Action("crear", ("creo", "la creación de", "cree", "creando"), ("registrar",)),
    Action("enviar", ("envío", "el envío de", "envie", "enviando"), ("mandar",)),
    Action("imprimir", ("imprimo", "la impresión de", "imprima", "imprimiendo"), ("sacar copia",)),
    Action("recuperar", ("recupero", "la recuperación de", "recupere", "recuperando"), ("restablecer",)),
)
THINGS = (
    Thing("una factura", ("las facturas", "mis facturas"), ("cuenta de cobro",)),
    Thing("un recibo de pago", ("los recibos de pago", "recibos"), ("comprobante de pago",)),
    Thing("una contraseña", ("las contraseñas", "mi contraseña"), ("clave", "password")),
    Thing("un certificado tributario", ("los certificados tributarios", "certificados"), ("certificado de retención",)),
    Thing("un estado de cuenta", ("los estados de cuenta", "mi estado de cuenta"), ("extracto",)),
    Thing("un convenio", ("los convenios", "mis convenios"), ("contrato de recaudo",)),
    Thing("una transferencia", ("las transferencias", "mis transferencias"), ("giro",)),
    Thing("un usuario administrador", ("los usuarios administradores", "usuarios"), ("cuenta de administrador",)),
)
OPENERS = ("", "", "hola, ", "buenas tardes ", "oiga ", "disculpe, ", "klk, ", "buen dia, ", "porfa ")
ASKS = (
    "como {verb} {thing}",
    "{opener}necesito {verb_inf} {thing}",
    "donde puedo {verb_inf} {thing}",
    "como le hago para {verb_inf} {thing}",
    "ayuda con {noun} {thing}",
    "no se como {verb_inf} {thing}",
)


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _slip(word: str, rng: random.Random) -> str:
    """One typing slip: two letters swapped or one dropped."""
    if len(word) < 6:
        return word
    i = rng.randrange(1, len(word) - 2)
    if rng.random() < 0.5:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + word[i + 1 :]


def _bare(thing: str) -> str:
    return thing.split(" ", 1)[1] if thing.split(" ", 1)[0] in ("un", "una", "las", "los", "mis", "mi") else thing


def articles() -> list[dict[str, object]]:
    """``{id, title, excerpt, body, keywords}`` for each (action, thing) pair."""
    found = []
    for a_index, action in enumerate(ACTIONS):
        for t_index, thing in enumerate(THINGS):
            other = ACTIONS[(a_index + 1) % len(ACTIONS)]
            name = _bare(thing.singular)
            title = f"Cómo {action.infinitive} {thing.singular}"
            body = (
                f"Artículo sintético de prueba: describe un portal de ejemplo, no un producto real.\n\n"
                f"Para {action.infinitive} {thing.singular} entra a la sección de {thing.plurals[0].split(' ', 1)[1]} "
                f"del portal de ejemplo, busca {name} en la lista y elige la acción "
                f"«{action.infinitive.capitalize()}». "
                f"El portal confirma en pantalla cuando termina.\n\n"
                f"Si lo que necesitas es {other.infinitive} {thing.singular}, busca el artículo sobre eso."
            )
            found.append(
                {
                    "id": f"sint-{a_index}-{t_index}",
                    "title": title,
                    "excerpt": f"Pasos de ejemplo para {action.infinitive} {thing.singular} (sintético).",
                    "body": body,
                    "keywords": [*action.synonyms, *thing.synonyms, f"{action.infinitive} {name}"],
                }
            )
    return found


def questions(per_article: int = 2) -> list[dict[str, object]]:
    """Held-out questions: ``{q, expect: [article id]}``, ``per_article`` for each article."""
    rng = random.Random(SEED)
    found = []
    for a_index, action in enumerate(ACTIONS):
        for t_index, thing in enumerate(THINGS):
            for _ in range(per_article):
                form = rng.choice(action.forms)
                verb_inf = rng.choice((action.infinitive, *action.synonyms))
                things = (*thing.plurals, *thing.synonyms, thing.singular)
                text = rng.choice(ASKS).format(
                    opener=rng.choice(OPENERS),
                    verb=form if " " not in form else action.forms[0],
                    verb_inf=verb_inf,
                    noun=form if " " in form else action.forms[1],
                    thing=rng.choice(things),
                )
                text = rng.choice(OPENERS) + text if not text.startswith(OPENERS[2:]) else text
                if rng.random() < 0.8:
                    text = _plain(text)
                if rng.random() < 0.3:
                    words = text.split()
                    longest = max(range(len(words)), key=lambda i: len(words[i]))
                    words[longest] = _slip(words[longest], rng)
                    text = " ".join(words)
                found.append(
                    {"q": text + rng.choice(("", "?", "??", " por favor")), "expect": [f"sint-{a_index}-{t_index}"]}
                )
    return found
