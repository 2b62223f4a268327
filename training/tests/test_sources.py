"""The registry of corpus sources (sources.py): real or synthetic, metadata, Debian finders."""

from __future__ import annotations

import extra_voices
import sources


def test_real_sources_are_the_recorded_people():
    assert sources.REAL_SOURCES == {"asterisk", "kde", "fillets", "tuxpaint", "fotaq", "drascula",
                                    "drascula-es", "bass", "tiny", "edinburgh56", "ptdb"}
    assert not {"kokoro", "piper", "arctic", "espeak"} & sources.REAL_SOURCES
    assert sources.engine_of("fotaq:JOE") == "fotaq" and sources.engine_of("kokoro:af+bm") == "kokoro"


def test_every_debian_or_folder_source_has_a_finder_and_its_facts():
    assert tuple(extra_voices.FINDERS) == sources.DEBIAN_SOURCES + sources.FOLDER_SOURCES
    assert not set(sources.DEBIAN_SOURCES) & set(sources.FOLDER_SOURCES)
    assert set(extra_voices.FINDERS) <= sources.REAL_SOURCES          # real speech: never held out
    for name in extra_voices.FINDERS:
        s = sources.SOURCES[name]
        assert s.speakers and s.kind and s.licence, name
        assert s.hours > 0 if name in sources.DEBIAN_SOURCES else s.layout, name
        assert f"{s.title}: {s.licence}" in sources.describe([f"{name}:x"])[1]


def test_metadata_names_the_sources_of_the_training_speakers():
    assert "GPL-2" in sources.describe(["fillets:cs-m"])[1]
    what, lic = sources.describe(["kokoro:a", "kde:fr", "asterisk:allison"])
    assert "Kokoro-82M voice blends" in what and "KDE klettres/ktuberling" in what and "Piper" not in what
    assert "GPL-2+" in lic and "CC BY-SA 3.0" in lic and lic.startswith("weights: Apache-2.0")
    assert what.index("Kokoro") < what.index("Asterisk") < what.index("KDE")      # registry order


def test_a_source_not_in_the_registry_is_named_without_a_licence():
    what, lic = sources.describe(["kde:fr", "newcorpus:x"])
    assert "newcorpus" in what and lic.endswith("newcorpus: licence not recorded")


def test_markdown_table_has_a_row_per_source():
    rows = sources.markdown().splitlines()
    assert len(rows) == 2 + len(sources.SOURCES)
    assert any("`bass`" in r and "beneath-a-steel-sky" in r and "0.60" in r for r in rows)
    assert any("`kokoro`" in r and "synthetic" in r and "shared corpus" in r for r in rows)
    assert any("`ptdb`" in r and "a placed folder: mic_F01_" in r for r in rows)
