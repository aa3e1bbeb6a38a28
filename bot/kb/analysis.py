"""Customer Spanish to search terms: accents, case, stop words, plurals and verb forms folded.

Customers write «actualizo registros», articles say «actualizar un registro»:
both must meet on the same terms. Words are normalised (bot/text.py), the
words that carry no topic are dropped, and the rest are reduced by the
Spanish Snowball stemmer (pure Python, no model to load in the action
server): «actualizo», «actualizar», «actualización» → «actualiz».
"""

from __future__ import annotations

import re
import threading

import snowballstemmer

from bot.text import normalize

_WORD = re.compile(r"[a-z0-9]+")
_STEM_CACHE_LIMIT = 50_000

# Accent-free, lower case. Function words, and the greetings, courtesies and
# fillers customers wrap a question in (Colombian, Mexican, Dominican usage):
# none of them says what the question is about.
STOP_WORDS = frozenset(
    """
    a al algo algun alguna algunas alguno algunos ante antes aqui asi aun como con contra cual cuales cuando cuanto
    de del desde donde dos el ella ellas ellos en entre era es esa esas ese eso esos esta estaba estan estar estas
    este esto estos estoy fue fueron ha han hay he la las le les lo los mas me mi mis muy nada ni no nos nosotros
    nuestra nuestro o os otra otro otros para pero poco por porque pues que quien se sea ser si sin sobre son su sus
    tal tambien te ti tu tus un una uno unos unas y ya yo usted ustedes vos
    hola holi buenas buenos buen dia dias tardes noche noches saludos saludo gracias favor porfa porfavor
    please pls oiga oye disculpe disculpa perdon estimado estimados estimada senor senora senores amigo amiga
    quiero quisiera queria necesito necesitamos necesitaria ocupo ocupamos puedo podemos podria podrian puede pueden
    pudiera debo debemos deberia tengo tenemos tiene tienen hago hacemos hacer hace haria sabe saber se sabes
    pedir pido pida pidan pedirles solicitar solicito solicite
    ayudan ayudame ayudeme ayudenme colaboran colabora colaboracion
    klk wey guey che bro mano vale ok okay bueno bien entonces alguien mucho muchas muchos nomas ahorita rapido
    """.split()
)


# Nouns whose verb Snowball cannot reach by rule (the help desk's own: «inscripción de cobro»).
IRREGULAR_NOUNS = {
    "impresion": "imprimir",
    "impresiones": "imprimir",
    "inscripcion": "inscribir",
    "inscripciones": "inscribir",
    "suscripcion": "suscribir",
    "descripcion": "describir",
    "devolucion": "devolver",
    "devoluciones": "devolver",
    "conexion": "conectar",
    "recepcion": "recibir",
}


def _verb_of(word: str) -> str:
    """«creación», «actualizaciones» → «crear», «actualizar»: Snowball keeps -ación nouns apart from their verbs."""
    if word in IRREGULAR_NOUNS:
        return IRREGULAR_NOUNS[word]
    for ending in ("aciones", "acion"):
        if word.endswith(ending) and len(word) > len(ending) + 2:
            return word[: -len(ending)] + "ar"
    return word


class Analyzer:
    """Text to search terms; one per process, shared by every index (thread-safe)."""

    def __init__(self) -> None:
        self._stemmer = snowballstemmer.stemmer("spanish")
        self._lock = threading.Lock()  # Snowball stemmers keep per-call state: one word at a time
        self._stems: dict[str, str] = {}

    def words(self, text: str) -> list[str]:
        """The topic words of ``text``: normalised, without stop words or one-letter tokens."""
        return [w for w in _WORD.findall(normalize(text)) if len(w) > 1 and w not in STOP_WORDS]

    def stem(self, word: str) -> str:
        stem = self._stems.get(word)
        if stem is None:
            with self._lock:
                stem = self._stemmer.stemWord(_verb_of(word))
                if len(self._stems) < _STEM_CACHE_LIMIT:
                    self._stems[word] = stem
        return stem

    def pairs(self, text: str) -> list[tuple[str, str]]:
        """(word, stem) for each topic word of ``text``: the index corrects typing slips on both."""
        return [(word, self.stem(word)) for word in self.words(text)]

    def terms(self, text: str) -> list[str]:
        """The stems of the topic words of ``text``, in order, repeats kept (they count as frequency)."""
        return [self.stem(word) for word in self.words(text)]
