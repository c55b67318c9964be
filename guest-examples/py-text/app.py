"""`py-text`: plain functions in Python, exported through an interface of the
component's own WIT (`wit/world.wit`), with no Warden WIT at all. Warden
serves each function as a tool, its JSON Schema derived from the WIT types.

componentize-py also exports an `exports#init` function of its own, which it
calls while building the component; Warden neither lists nor serves it.
"""

import re
import unicodedata
from collections import Counter

from wit_world import exports
from wit_world.exports.text import WordCount


class Text(exports.Text):
    def slugify(self, text: str) -> str:
        ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
        return "-".join(re.findall(r"[a-z0-9]+", ascii_text.lower()))

    def word_frequencies(self, text: str, top: int) -> list[WordCount]:
        words = Counter(re.findall(r"[\w']+", text.lower()))
        ranked = sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))
        return [WordCount(word, count) for word, count in ranked[:top]]
