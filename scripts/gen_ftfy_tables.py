#!/usr/bin/env python3
"""Regenerate src/text/ftfy_tables.c (run by hand; the build never needs Python).

The tables are data that ftfy 6.3.1 and Python's standard library define:
the single-byte codecs ftfy tries (with ftfy's "sloppy" filling of holes), the
HTML5 entity names of html.entities.html5 (plus ftfy's upper-case variants),
and the character categories of ftfy's mojibake heuristic (badness.py and the
UTF-8 clue sets of chardata.py), rebuilt from their definitions.

    python3 scripts/gen_ftfy_tables.py > src/text/ftfy_tables.c
"""
import html
import html.entities
import unicodedata as ud

N = ud.lookup

ENCODINGS = ["latin-1", "sloppy-windows-1252", "sloppy-windows-1251", "sloppy-windows-1250",
             "sloppy-windows-1253", "sloppy-windows-1254", "sloppy-windows-1257", "iso-8859-2",
             "macroman", "cp437"]


def decode_table(enc):
    sloppy = enc.startswith("sloppy-")
    base = enc[len("sloppy-"):] if sloppy else enc
    out = []
    for b in range(0x80, 0x100):
        c = bytes([b]).decode(base, errors="replace")
        if c == "\ufffd" and sloppy:
            c = chr(b)
        out.append(ord(c))
    return sloppy, out


def names(*ns):
    return "".join(N(n) for n in ns)


def crange(a, b):
    return "".join(chr(c) for c in range(ord(a), ord(b) + 1))


# ftfy/badness.py MOJIBAKE_CATEGORIES
CATS = {
    "COMMON": names("NO-BREAK SPACE", "SOFT HYPHEN", "MIDDLE DOT", "ACUTE ACCENT", "EN DASH",
                    "EM DASH", "HORIZONTAL BAR", "HORIZONTAL ELLIPSIS",
                    "RIGHT SINGLE QUOTATION MARK"),
    "C1": crange("\x80", "\x9f"),
    "BAD": names("BROKEN BAR", "CURRENCY SIGN", "DIAERESIS", "NOT SIGN", "MACRON", "CEDILLA",
                 "LATIN SMALL LETTER F WITH HOOK", "MODIFIER LETTER CIRCUMFLEX ACCENT", "CARON",
                 "BREVE", "OGONEK", "SMALL TILDE", "DAGGER", "DOUBLE DAGGER", "PER MILLE SIGN",
                 "REVERSED NOT SIGN", "LOZENGE") + "\ufffd" +
           names("FEMININE ORDINAL INDICATOR", "MASCULINE ORDINAL INDICATOR"),
    "LAW": names("PILCROW SIGN", "SECTION SIGN"),
    "CURRENCY": names("CENT SIGN", "POUND SIGN", "YEN SIGN", "PESETA SIGN", "EURO SIGN"),
    "START_PUNCT": names("INVERTED EXCLAMATION MARK", "LEFT-POINTING DOUBLE ANGLE QUOTATION MARK",
                         "INVERTED QUESTION MARK", "COPYRIGHT SIGN", "GREEK TONOS",
                         "GREEK DIALYTIKA TONOS", "LEFT SINGLE QUOTATION MARK",
                         "SINGLE LOW-9 QUOTATION MARK", "LEFT DOUBLE QUOTATION MARK",
                         "DOUBLE LOW-9 QUOTATION MARK", "BULLET",
                         "SINGLE LEFT-POINTING ANGLE QUOTATION MARK") + "\uf8ff",
    "END_PUNCT": names("REGISTERED SIGN", "RIGHT-POINTING DOUBLE ANGLE QUOTATION MARK",
                       "DOUBLE ACUTE ACCENT", "RIGHT DOUBLE QUOTATION MARK",
                       "SINGLE RIGHT-POINTING ANGLE QUOTATION MARK", "TRADE MARK SIGN"),
    "NUMERIC": names("SUPERSCRIPT TWO", "SUPERSCRIPT THREE", "SUPERSCRIPT ONE", "PLUS-MINUS SIGN",
                     "VULGAR FRACTION ONE QUARTER", "VULGAR FRACTION ONE HALF",
                     "VULGAR FRACTION THREE QUARTERS", "MULTIPLICATION SIGN", "MICRO SIGN",
                     "DIVISION SIGN", "FRACTION SLASH", "PARTIAL DIFFERENTIAL", "INCREMENT",
                     "N-ARY PRODUCT", "N-ARY SUMMATION", "SQUARE ROOT", "INFINITY", "INTERSECTION",
                     "INTEGRAL", "ALMOST EQUAL TO", "NOT EQUAL TO", "IDENTICAL TO",
                     "LESS-THAN OR EQUAL TO", "GREATER-THAN OR EQUAL TO", "NUMERO SIGN"),
    "KAOMOJI": crange("Ò", "Ö") + crange("Ù", "Ü") + crange("ò", "ö") + crange("ø", "ü") +
               names("LATIN CAPITAL LETTER O WITH DOUBLE ACUTE", "LATIN CAPITAL LETTER O WITH MACRON",
                     "LATIN CAPITAL LETTER U WITH MACRON", "LATIN CAPITAL LETTER U WITH OGONEK",
                     "DEGREE SIGN"),
    "UPPER_ACC": crange("\xc0", "\xd1") + names(*("LATIN CAPITAL LETTER " + n for n in [
        "O WITH STROKE", "U WITH DIAERESIS", "Y WITH ACUTE", "A WITH BREVE", "A WITH MACRON",
        "A WITH OGONEK", "C WITH ACUTE", "C WITH CARON", "D WITH CARON", "D WITH STROKE",
        "E WITH OGONEK", "E WITH CARON", "E WITH MACRON", "E WITH DOT ABOVE", "G WITH BREVE",
        "G WITH CEDILLA", "I WITH DOT ABOVE", "I WITH MACRON", "K WITH CEDILLA", "L WITH ACUTE",
        "L WITH CARON", "L WITH STROKE", "L WITH CEDILLA", "N WITH ACUTE", "N WITH CARON",
        "N WITH CEDILLA"])) + N("LATIN CAPITAL LIGATURE OE") + names(*("LATIN CAPITAL LETTER " + n for n in [
        "R WITH CARON", "S WITH ACUTE", "S WITH CEDILLA", "S WITH CARON", "T WITH CEDILLA",
        "T WITH CARON", "U WITH RING ABOVE", "U WITH DOUBLE ACUTE", "Y WITH DIAERESIS",
        "Z WITH ACUTE", "Z WITH DOT ABOVE", "Z WITH CARON"])) +
        N("CYRILLIC CAPITAL LETTER GHE WITH UPTURN"),
    "LOWER_ACC": N("LATIN SMALL LETTER SHARP S") + crange("\xe0", "\xf1") +
        names(*("LATIN SMALL LETTER " + n for n in [
            "A WITH BREVE", "A WITH OGONEK", "A WITH MACRON", "C WITH ACUTE", "C WITH CARON",
            "D WITH CARON", "D WITH STROKE", "E WITH OGONEK", "E WITH CARON", "E WITH MACRON",
            "E WITH DOT ABOVE", "G WITH BREVE", "G WITH CEDILLA", "I WITH OGONEK", "I WITH MACRON",
            "K WITH CEDILLA", "L WITH ACUTE", "L WITH CARON", "L WITH STROKE", "L WITH CEDILLA"])) +
        N("LATIN SMALL LIGATURE OE") + names(*("LATIN SMALL LETTER " + n for n in [
            "R WITH ACUTE", "S WITH ACUTE", "S WITH CEDILLA", "S WITH CARON", "T WITH CARON",
            "U WITH DIAERESIS", "Z WITH ACUTE", "Z WITH DOT ABOVE", "Z WITH CARON"])) +
        names("CYRILLIC SMALL LETTER GHE WITH UPTURN", "LATIN SMALL LIGATURE FI",
              "LATIN SMALL LIGATURE FL"),
    "UPPER_COMMON": N("LATIN CAPITAL LETTER THORN") +
        crange(N("GREEK CAPITAL LETTER ALPHA"), N("GREEK CAPITAL LETTER OMEGA")) +
        names(*("GREEK CAPITAL LETTER " + n for n in [
            "ALPHA WITH TONOS", "EPSILON WITH TONOS", "ETA WITH TONOS", "IOTA WITH TONOS",
            "OMICRON WITH TONOS", "UPSILON WITH TONOS", "OMEGA WITH TONOS", "IOTA WITH DIALYTIKA",
            "UPSILON WITH DIALYTIKA"])) +
        crange(N("CYRILLIC CAPITAL LETTER IO"), N("CYRILLIC CAPITAL LETTER YA")),
    "LOWER_COMMON": crange(N("GREEK SMALL LETTER ALPHA"), N("GREEK SMALL LETTER OMEGA")) +
        names(*("GREEK SMALL LETTER " + n for n in [
            "ALPHA WITH TONOS", "EPSILON WITH TONOS", "ETA WITH TONOS", "IOTA WITH TONOS",
            "UPSILON WITH DIALYTIKA AND TONOS"])) +
        crange(N("CYRILLIC SMALL LETTER A"), N("CYRILLIC SMALL LETTER DZHE")),
    "BOX": "│┌┐┘├┤┬┼" + crange(N("BOX DRAWINGS DOUBLE HORIZONTAL"),
                              N("BOX DRAWINGS DOUBLE VERTICAL AND HORIZONTAL")) + "▀▄█▌▐░▒▓",
}

# ftfy/chardata.py UTF8_CLUES: the characters that bytes in the lead and
# continuation ranges of UTF-8 decode to in these encodings.
SAFE = ["latin-1", "windows-1252", "windows-1251", "windows-1250", "windows-1253",
        "windows-1254", "windows-1257"]


def decoded(lo, hi):
    s = set()
    for enc in SAFE:
        for b in range(lo, hi + 1):
            try:
                s.add(bytes([b]).decode(enc))
            except UnicodeDecodeError:
                pass
    return "".join(sorted(s))


CONT = decoded(0x80, 0xBF) + crange("\x80", "\xbf")
CATS["UTF8_FIRST2"] = decoded(0xC2, 0xDF)
CATS["UTF8_FIRST3"] = decoded(0xE0, 0xEF)
CATS["UTF8_FIRST4"] = decoded(0xF0, 0xF0) + decoded(0xF3, 0xF3)
CATS["UTF8_CONT"] = CONT + " "
CATS["UTF8_CONT_STRICT"] = "".join(c for c in CONT if c not in names(
    "EN DASH", "EM DASH", "HORIZONTAL BAR", "LEFT SINGLE QUOTATION MARK",
    "RIGHT SINGLE QUOTATION MARK", "SINGLE LOW-9 QUOTATION MARK", "LEFT DOUBLE QUOTATION MARK",
    "RIGHT DOUBLE QUOTATION MARK", "DOUBLE LOW-9 QUOTATION MARK", "BULLET",
    "HORIZONTAL ELLIPSIS"))

CAT_ORDER = list(CATS)


def c_string(s):
    out = []
    for b in s.encode("utf-8"):
        out.append(chr(b) if 0x20 <= b < 0x7F and chr(b) not in '"\\?' else "\\%03o" % b)
    return '"' + "".join(out) + '"'


def main():
    p = print
    p("/* Generated by scripts/gen_ftfy_tables.py: data tables that ftfy 6.3.1 and")
    p(" * Python's standard library define (codecs, HTML5 entities, the character")
    p(" * categories of ftfy's mojibake heuristic). Do not edit by hand. */")
    p('#include "model/tokenizer_internal.h"')
    p("")
    p("const cs_ftfy_codec cs_ftfy_codecs[CS_FTFY_N_CODECS] = {")
    for enc in ENCODINGS:
        sloppy, table = decode_table(enc)
        p('    {"%s", %d, {' % (enc, int(sloppy)))
        for i in range(0, 128, 8):
            p("        " + ", ".join("0x%04X" % c for c in table[i:i + 8]) + ",")
        p("    }},")
    p("};")
    p("")
    ents = sorted(html.entities.html5.items(), key=lambda kv: kv[0].encode())
    p("const cs_entity cs_html5_entities[] = {")
    for name, val in ents:
        p("    {%s, %s}," % (c_string(name), c_string(val)))
    p("};")
    p("const int cs_n_html5_entities = %d;" % len(ents))
    p("")
    upper = []
    for name, char in html.entities.html5.items():
        if name.endswith(";") and name == name.lower():
            up = "&" + name.upper()
            if html.unescape(up) == up:
                upper.append((name.upper(), char.upper()))
    upper.sort(key=lambda kv: kv[0].encode())
    p("/* ftfy's all-caps entity names (&EACUTE; for \"\\u00c9\") that are no HTML5 name. */")
    p("const cs_entity cs_ftfy_upper_entities[] = {")
    for name, val in upper:
        p("    {%s, %s}," % (c_string(name), c_string(val)))
    p("};")
    p("const int cs_n_ftfy_upper_entities = %d;" % len(upper))
    p("")
    masks = {}
    for bit, cat in enumerate(CAT_ORDER):
        for ch in CATS[cat]:
            masks[ord(ch)] = masks.get(ord(ch), 0) | (1 << bit)
    p("const cs_char_class cs_ftfy_char_classes[] = {")
    for cp in sorted(masks):
        bits = " | ".join("FT_" + CAT_ORDER[b] for b in range(len(CAT_ORDER)) if masks[cp] >> b & 1)
        p("    {0x%04X, %s}," % (cp, bits))
    p("};")
    p("const int cs_n_ftfy_char_classes = %d;" % len(masks))


if __name__ == "__main__":
    main()
