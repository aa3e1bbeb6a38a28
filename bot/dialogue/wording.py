"""What a message's words amount to, beyond the intent the NLU read.

The classifier always picks some intent, even for «asdf qwer» or for an
opening that names a request type and says nothing else. These checks read
the words themselves, so the dialogue does not take a keyboard slip for a
«sí», a greeting for a request, the name of a type for a description, or a
question about the process for the customer's problem.
"""

from __future__ import annotations

import re
from typing import Iterable, Optional

from bot.catalog import Catalog, RequestType
from bot.text import normalize

# Words that answer yes or no, accent-free, with repeated letters collapsed
# («siii», «noo»). Every affirm and deny example of the training data has one
# (tests/test_wording.py checks it); a message without any is no yes/no, whatever the NLU says.
_YES_WORDS = frozenset(
    re.sub(r"(.)\1+", r"\1", word)
    for word in (
        "si sip simon dale claro correcto enviar envia enviala mandala manda bien listo ok okay okey oki okis ya "
        "acuerdo exacto exactamente asi perfecto va orale afirmativo supuesto eso confirmo confirmar adelante "
        "sale aja vale bueno seguro obvio yes yep venga genial excelente hagale sirvio sirve"
    ).split()
)
_NO_WORDS = frozenset(
    re.sub(r"(.)\1+", r"\1", word)
    for word in "no nel nada nop nope nones negativo ninguno ninguna incorrecto tampoco nunca jamas".split()
)
_YES_SYMBOLS = ("👍", "👌", "✅", "✔", "🆗")
_NO_SYMBOLS = ("👎", "❌")

# Words that carry no detail of a problem: greetings, politeness, function
# words, and the framing of a request («tengo un inconveniente con …»).
_FILLER = frozenset(
    (
        "hola ola holi buenas buenos buen dia dias tardes noches saludos que tal oye oigan disculpa disculpe "
        "por favor porfa porfavor gracias muchas amable "
        "yo tengo tenemos tiene tienen tuve hay habia estoy estamos esta estan este esta estos estas ese esa eso "
        "un una unos unas uno el la los las lo al del de a en con para por sobre sin hacia desde segun "
        "mi mis nuestro nuestra nuestros nuestras su sus tu tus me nos se te le les "
        "y o u e ni que es son ser fue era muy mas algo alguna alguno algun todo toda "
        "necesito necesitamos necesita quiero queremos quisiera quisieramos requiero requerimos ocupo "
        "ayuda ayudar ayudame ayudenme ayudan ayudarme apoyo soporte asesoria orientacion "
        "problema problemas inconveniente inconvenientes falla fallas dificultad dificultades novedad novedades "
        "tema temas asunto caso consulta duda dudas solicitud pregunta preguntas inquietud inquietudes "
        "informacion colaborar colaboren colaboran colaboracion "
        "presenta presentando presentamos teniendo relacionado relacionada respecto referente acerca "
        "pasa pasando sucede ocurre esta pasando favor"
    ).split()
)
# A word of the request type's name that is written shorter or longer («sistema» for «sistemas»).
_STEM = 5
# Fewer detail words than this left after the filler and the type's own words: the opening only names the type.
DETAIL_MIN_WORDS = 3
# How a customer frames a problem before telling it: an opening without one names no type alone.
_FRAMING = frozenset(
    (
        "problema problemas inconveniente inconvenientes falla fallas dificultad dificultades novedad novedades "
        "duda dudas consulta tema asunto caso ayuda ayudar ayudame ayudenme apoyo soporte error errores "
        "inquietud inquietudes pregunta preguntas informacion colaborar colaboren colaboran"
    ).split()
)
_GREETING_OR_HELP = frozenset("hola ola holi buenas buenos buen dia dias tardes noches saludos ayuda".split())

# Questions about the assistant or the process, asked while the description is asked.
_TIME_QUESTION = re.compile(
    r"\b(?:cuanto|en cuanto tiempo)\s+(?:(?:se\s+)?(?:tarda|tardan|demora|demoran)|tiempo|toma)"
    r"(?:\s+(?:la respuesta|en responder|en contestar|en atender|en resolver|ustedes|el equipo|soporte|"
    r"la solicitud|el ticket|esto|eso|en llamar)\b|\s*$)"
    r"|\bcuando\s+(?:me\s+)?(?:responden|contestan|llaman|atienden|van a responder|van a llamar|me escriben)\b"
)
_WHY_QUESTION = re.compile(
    r"\b(?:para que|por que|pa que)\s+(?:me\s+)?(?:lo\s+|la\s+|los\s+)?(?:necesitas|necesitan|necesita|quieres|quieren|"
    r"pides|piden|preguntas|preguntan|ocupas|ocupan)"
    r"(?:\s+(?:eso|esto|todo eso|esa informacion|tanta informacion|ese dato|esos datos|mis datos|datos|"
    r"tantos datos|tantas cosas|la descripcion|saber(?:lo)?|"
    r"mi correo|mi telefono|mi celular|mi numero))?\s*$"
    r"|\b(?:es obligatorio|es necesario|tengo que contarte|hace falta)\s*$"
)
# Longer messages asking such a question tell something too («… desde ayer, ¿cuánto tardan en resolver?»): kept.
SIDE_QUESTION_MAX_WORDS = 8
# What side_question returns: the response that answers it.
SIDE_TIME = "utter_side_question_time"
SIDE_WHY = "utter_side_question_why"


def _collapsed(word: str) -> str:
    return re.sub(r"(.)\1+", r"\1", word)


def words_of(text: str) -> list[str]:
    """The words, without the «.», «-», «+» or «/» that ``normalize`` keeps around them («Sí.» is «si»)."""
    words = (w.strip(".+/-") for w in normalize(text).split())
    return [w for w in words if any(c.isalnum() for c in w)]


def says_yes_or_no(text: str) -> bool:
    """The words hold a yes or a no («sí», «dale», «nada», «👍»); a button always does."""
    return leaning(text) is not None


def leaning(text: str) -> Optional[bool]:
    """True for a yes, False for a no, None for neither: the first yes or no word decides.

    «no, está bien» and «no no no» lean to no although they hold «bien» or
    read as affirm to the NLU; «sí, no hay problema» leans to yes. A button
    («/affirm») is a yes or no the customer tapped.
    """
    if text.startswith("/"):
        return not text.startswith("/deny")
    for word in words_of(text):
        collapsed = _collapsed(word)
        if collapsed in _YES_WORDS:
            return True
        if collapsed in _NO_WORDS:
            return False
    if any(symbol in text for symbol in _NO_SYMBOLS):
        return False
    if any(symbol in text for symbol in _YES_SYMBOLS):
        return True
    return None


def greeting_or_help_only(text: str) -> bool:
    """«hola, necesito ayuda por favor»: a greeting and a call for help, nothing about the need."""
    words = words_of(text)
    return bool(words) and any(w in _GREETING_OR_HELP for w in words) and all(w in _FILLER for w in words)


def _type_words(request_type: RequestType, catalog: Catalog) -> set[str]:
    category = catalog.category_of(request_type)
    phrases: Iterable[str] = (request_type.name, *request_type.aliases, category.name, *category.aliases)
    return {w[:_STEM] for phrase in phrases for w in words_of(phrase.replace("'", " "))}


def detail_words(text: str, request_type: RequestType, catalog: Catalog) -> list[str]:
    """The words left once the filler and the words naming the request type are taken out."""
    naming = _type_words(request_type, catalog)
    return [w for w in words_of(text) if w not in _FILLER and w[:_STEM] not in naming]


def names_only_the_type(text: str, request_type: RequestType, catalog: Catalog) -> bool:
    """«tengo un inconveniente con la conexión a nuestro sistema contable»: what, never what happens.

    The rule: the opening frames a problem («inconveniente», «falla», «ayuda»…)
    and, without the filler and the words of the type's name, aliases and
    category, fewer than ``DETAIL_MIN_WORDS`` words are left.
    Such an opening chooses the request type but is no description: the
    agent would receive a ticket that says nothing, so the form asks.
    """
    told = text.rpartition(":")[2]
    if ":" in text and len(words_of(told)) >= DETAIL_MIN_WORDS and not any(w in _FRAMING for w in words_of(told)):
        return False  # «tengo un problema: se me bloqueó el usuario…»: after the colon comes the problem
    words = words_of(text)
    if not any(w in _FRAMING for w in words):
        return False  # «se me bloqueó el usuario por intentos fallidos» tells what happened
    return len(detail_words(text, request_type, catalog)) < DETAIL_MIN_WORDS


def side_question(text: str) -> Optional[str]:
    """``SIDE_TIME`` or ``SIDE_WHY`` (the response answering it) for a question about the process, else None.

    «¿cuánto tarda la respuesta?», «¿para qué necesitas eso?» ask about the
    assistant; «¿por qué no me aparece el pago?» or «¿cuánto tarda en
    reflejarse un pago?» ask about the problem, and are the description.
    """
    if "?" not in text and "¿" not in text:
        return None
    if len(words_of(text)) > SIDE_QUESTION_MAX_WORDS:
        return None
    words = normalize(text).rstrip(" .")
    if _WHY_QUESTION.search(words):
        return SIDE_WHY
    if _TIME_QUESTION.search(words):
        return SIDE_TIME
    return None
