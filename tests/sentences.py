"""A varied, real corpus for encoder parity: TREC questions plus hard cases."""
from conftest import TEST_CSV, TRAIN_CSV, read_rows

NON_LATIN = [
    "Где находится самая высокая гора в мире?",          # Russian
    "世界上最高的山在哪里？",                              # Chinese
    "東京タワーの高さはどれくらいですか？",                  # Japanese
    "ما هي عاصمة المملكة العربية السعودية؟",              # Arabic
    "भारत की राजधानी क्या है?",                           # Hindi
    "대한민국의 수도는 어디입니까?",                         # Korean
    "Ποια είναι η πρωτεύουσα της Ελλάδας;",             # Greek
    "מהי בירת ישראל?",                                   # Hebrew
    "เมืองหลวงของประเทศไทยคืออะไร",                        # Thai
    "Qual é a capital do Brasil?",                      # Portuguese (accents)
    "¿Cuántos habitantes tiene Madrid?",                # Spanish
    "Wie heißt der längste Fluss Deutschlands?",        # German (ß, umlauts)
    "Türkiye'nin başkenti neresidir?",                  # Turkish
]
EMOJI = ["I love pizza 🍕", "🤖 what is a robot?", "Weather today ☀ or 🌧?",
         "thumbs up 👍", "🎉", "Paris ❤"]
EDGE = ["", "   ", "\t\n", "?", "a", "ABBR", "12345", "3.14159 is pi", "e-mail: someone@example.com",
        "MiXeD CaSe QuEsTiOn?", "  leading and trailing spaces  ", "what's the U.S.A.'s GDP in 2020?"]


def long_text(chars=2000):
    """A real ~2,000-character text: consecutive TREC questions joined."""
    parts, total = [], 0
    for row in read_rows(TRAIN_CSV)[1000:]:
        parts.append(row["text"])
        total += len(row["text"]) + 1
        if total >= chars:
            break
    return " ".join(parts)[:chars]


def unknown_runs():
    """Texts with runs of characters outside the SentencePiece vocabulary."""
    return ["😀😀😀 hi", "🤖🤖", "ok ☃☃☃ snow", "\x00\x01 ctrl"]


def parity_corpus():
    train, test = read_rows(TRAIN_CSV), read_rows(TEST_CSV)
    questions = [r["text"] for r in train[::40]] + [r["text"] for r in test[::10]]
    return questions + NON_LATIN + EMOJI + EDGE + [long_text(), long_text(2000).lower()] + unknown_runs()
