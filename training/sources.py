#!/usr/bin/env python3
"""The one registry of corpus sources: where the speech of a packed corpus comes from.

A source's name is the prefix of its speaker labels (`kde:fr` → `kde`, `engine_of`); it is also
the manifest's `engine` column, except for the ARCTIC voices (engines `festival` and `flite`,
speakers `arctic:…`). Each source says what it is (`title`, also written into an exported
model's metadata), the licence of its audio, and whether it is recordings of people (`real`) or
synthetic speech. Real sources are never held out for the synthetic validation
(prepare_data.py) and are the ones pseudo-speakers vary (data.PseudoSpeakers). Folder sources
are corpora that cannot be fetched here but that extra_voices.py packs from a folder someone
placed (`--root`): `layout` says which files it takes. The Debian
sources that extra_voices.py builds also give their packages, and what they hold: hours of
speech (decoded, trimmed and joined, with the caps of training/README.md's packing commands;
for Flight of the Amazon Queen, which that packing leaves out, run 5's caps), speakers and the
kind of speech (read or prompted speech is worth more than acted lines).

    python3 training/sources.py          # the registry as a Markdown table
"""

from __future__ import annotations

from typing import Iterable, NamedTuple


class Source(NamedTuple):
    title: str
    licence: str
    real: bool
    packages: tuple[str, ...] = ()   # Debian packages extra_voices.py reads (none: the shared corpus)
    hours: float = 0.0               # of those packages' speech (see the module doc)
    speakers: str = ""
    kind: str = ""
    layout: str = ""                 # a folder source's files (extra_voices.py --root DIR)


DRASCULA_LICENCE = ("Drascula licence (free redistribution and modification, modified versions marked; "
                    "readme and copyright notices kept)")

SOURCES: dict[str, Source] = {
    # The shared corpus (../shared/corpus).
    "kokoro": Source("Kokoro-82M voice blends", "Apache-2.0 (Kokoro-82M weights and voice packs)", False),
    "piper": Source("Piper joe", "MIT (Piper; voice data CC0)", False),
    "arctic": Source("festival/flite CMU ARCTIC voices", "Debian free licences of the festival/flite voices", False),
    "espeak": Source("espeak-ng", "its output (espeak-ng's GPL-3 does not cover it)", False),
    "asterisk": Source("Asterisk core-sound prompts (4 people)", "CC BY-SA 3.0 (Asterisk core sounds)", True),
    # Real voices from Debian packages (extra_voices.py --source NAME).
    "kde": Source("KDE klettres/ktuberling recordings (31 people)", "GPL-2+", True,
                  ("klettres-data", "ktuberling-data"), 1.00,
                  "31 people (one label per language code)", "isolated letters, syllables and words, read"),
    "fillets": Source("Fish Fillets NG dialogue (4 voices, Czech and Dutch casts)", "GPL-2", True,
                      ("fillets-ng-data-cs", "fillets-ng-data-nl"), 1.99,
                      "4 (two fish × Czech and Dutch casts)", "acted game dialogue"),
    "tuxpaint": Source("Tux Paint stamp descriptions (volunteers, one speaker label per language)", "GPL-2+",
                       True, ("tuxpaint-stamps-default",), 1.70,
                       "9 languages (volunteers; one label per language)", "read short descriptions"),
    "fotaq": Source("Flight of the Amazon Queen speech (Joe and 29 characters, a small cast)",
                    "Flight of the Amazon Queen licence (free redistribution and modification)", True,
                    ("flight-of-the-amazon-queen",), 2.06,
                    "Joe + 29 character labels (a small cast)", "acted game dialogue (8-bit 11 kHz originals)"),
    "drascula": Source("Drascula speech, English cast (11 characters)", DRASCULA_LICENCE, True,
                       ("drascula",), 0.51, "11 character labels, English cast (a small cast)",
                       "acted game dialogue (8-bit 11 kHz originals)"),
    "drascula-es": Source("Drascula speech, Spanish cast (11 characters)", DRASCULA_LICENCE, True,
                          ("drascula-spanish",), 0.49, "11 character labels, Spanish cast (a small cast)",
                          "acted game dialogue in Spanish (8-bit 11 kHz originals)"),
    "bass": Source("Beneath a Steel Sky speech (one label for its whole cast)",
                   "Beneath a Steel Sky licence (free distribution with its readme and copyright notices; "
                   "modified versions marked; content (C) Revolution Software)", True,
                   ("beneath-a-steel-sky",), 0.60,
                   "1 label (a professional cast of about 10-20 voices, lines not labelled); "
                   "2.10 h without the 36-minute cap", "acted game dialogue (8-bit 11 kHz originals)"),
    "tiny": Source("codec2, pocketsphinx and alsa-utils test recordings (one label per package)",
                   "codec2 examples LGPL-2.1, pocketsphinx test data BSD-2-Clause, alsa-utils sounds GPL-2",
                   True, ("codec2-examples", "pocketsphinx-testdata", "alsa-utils"), 0.02,
                   "3 labels (one per package; about 15 people)", "read English sentences, words and digits"),
    # Real read speech from a placed folder (extra_voices.py --source NAME --root DIR): the clean
    # speech of microsoft/MS-SNSD (training/RESULTS.md, "What would move quality next"), none of
    # it by devset speakers.
    "edinburgh56": Source("Edinburgh 56-speaker read speech (VCTK speakers; Valentini-Botinhao et al., 2016)",
                          "CC BY 4.0 (University of Edinburgh, DataShare 10283/2791)", True,
                          speakers="56 (VCTK labels pNNN, English accents, about half female)",
                          kind="read English sentences",
                          layout="pNNN_MMM.wav files, any folder depth (MS-SNSD's clean speech)"),
    "ptdb": Source("PTDB-TUG read speech (20 speakers; Graz University of Technology)",
                   "ODbL 1.0 (PTDB-TUG, as MS-SNSD distributes it)", True,
                   speakers="20 (10 female F01-F10, 10 male M01-M10)",
                   kind="read English sentences (TIMIT prompts)",
                   layout="mic_F01_*.wav / mic_M01_*.wav files, any folder depth (PTDB-TUG's microphone channel)"),
}

REAL_SOURCES = frozenset(name for name, s in SOURCES.items() if s.real)   # recordings of people
DEBIAN_SOURCES = tuple(name for name, s in SOURCES.items() if s.packages)  # extra_voices.py --source
FOLDER_SOURCES = tuple(name for name, s in SOURCES.items() if s.layout)    # extra_voices.py --source --root


def engine_of(speaker: str) -> str:
    """The source of a corpus speaker label, its prefix before ':' (`fotaq:JOE` → `fotaq`)."""
    return str(speaker).split(":")[0]


def describe(speakers: Iterable[str]) -> tuple[str, str]:
    """(trained_on, license) metadata for a training set with these speaker labels: the titles
    and licences of their sources, in registry order; a source not in the registry is named as
    such, with its licence not recorded."""
    names = {engine_of(s) for s in speakers}
    known = [n for n in SOURCES if n in names]
    other = sorted(names - set(SOURCES))
    what = [SOURCES[n].title for n in known] + other
    lic = [f"{SOURCES[n].title}: {SOURCES[n].licence}" for n in known] + [f"{n}: licence not recorded" for n in other]
    return (f"mambasep training corpus ({', '.join(what)}), 8 kHz, dynamic two-speaker mixing",
            f"weights: Apache-2.0; training audio: {', '.join(lic)}")


def markdown() -> str:
    """The registry as a Markdown table."""
    rows = ["| source | what | speech | licence | from | hours |", "|---|---|---|---|---|---:|"]
    for n, s in SOURCES.items():
        where = (f"Debian: {', '.join(s.packages)}" if s.packages else
                 f"a placed folder: {s.layout}" if s.layout else "shared corpus")
        rows.append(f"| `{n}` | {s.title} | {'recorded' if s.real else 'synthetic'} | {s.licence} | "
                    f"{where} | {f'{s.hours:.2f}' if s.packages else ''} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown())
