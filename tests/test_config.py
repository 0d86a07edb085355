import pytest

from edge.config import ConfigError, RunConfig, load_config


def test_defaults_and_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[source]\nname = "demo"\n[classifier]\nnum_threads = 1\n')
    config = load_config(path, {"classifier.num_threads": 3, "output.display": "none"})
    assert config.source.name == "demo"
    assert config.classifier.num_threads == 3  # command line wins
    assert config.output.display == "none"
    assert load_config(None) == RunConfig()


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[classifier]\nnum_thread = 2\n")
    with pytest.raises(ConfigError, match=r"classifier\.num_thread: unknown key"):
        load_config(path)


def test_unknown_section_and_wrong_type(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[sourc]\nname = "demo"\n')
    with pytest.raises(ConfigError, match="sourc: unknown key"):
        load_config(path)
    path.write_text('[output]\ndisplay = "hdmi"\n')
    with pytest.raises(ConfigError, match="output.display"):
        load_config(path)
    path.write_text('[classifier]\nnum_threads = "two"\n')
    with pytest.raises(ConfigError, match="classifier.num_threads"):
        load_config(path)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[source\nname=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_example_config_is_valid():
    from conftest import ROOT

    load_config(ROOT / "edge" / "config.example.toml")
