"""Service settings: config file, environment and given values, in that order; keys."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cartnet.service.settings import ConfigFileError, ServiceSettings, new_key


def test_config_file_then_environment_then_given(tmp_path: Path) -> None:
    config = tmp_path / "service.yaml"
    config.write_text("fin: W1234\ntoken_hours: 4\nsignature_rules:\n  release: {DE: 2}\n")
    env = {"CARTNET_TOKEN_HOURS": "2", "CARTNET_PATIENT_KEY": new_key(),
           "CARTNET_SIGNING_KEY": new_key()}  # fmt: skip
    settings = ServiceSettings.from_env(env, config=config, network="kymriah-2020")
    assert settings.fin == "W1234"
    assert settings.token_hours == 2.0
    assert settings.signature_policy.required("release", "DE") == 2
    assert settings.signature_policy.required("release", "FR") == 1
    given = ServiceSettings.from_env(env, config=config, fin="W7777")
    assert given.fin == "W7777"


def test_config_file_problems_name_line_and_setting(tmp_path: Path) -> None:
    config = tmp_path / "service.yaml"
    config.write_text("fin: W1234\nsignature_rules:\n  release: {de: 0}\nsigning_key: x\n")
    with pytest.raises(ConfigFileError) as caught:
        ServiceSettings.from_env({}, config=config, key_dir=tmp_path)
    text = str(caught.value)
    assert f"{config}:4: signing_key: keys belong in" in text
    config.write_text("fin: W1234\nsignature_rules:\n  release: {DE: 0}\n")
    with pytest.raises(ConfigFileError) as caught:
        ServiceSettings.from_env({}, config=config, key_dir=tmp_path)
    assert f"{config}:3: signature_rules:" in str(caught.value)
    assert "at least 1" in str(caught.value)
    config.write_text("fin: nope\n")
    with pytest.raises(ConfigFileError, match=r":1: fin:"):
        ServiceSettings.from_env({}, config=config, key_dir=tmp_path)


def test_keys_are_made_once_with_owner_only_permissions(tmp_path: Path) -> None:
    first = ServiceSettings.from_env({}, key_dir=tmp_path)
    again = ServiceSettings.from_env({}, key_dir=tmp_path)
    assert first.patient_key == again.patient_key
    assert first.signing_key == again.signing_key != first.patient_key
    for name in ("patient-key.txt", "signing-key.txt"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o600


def test_a_malformed_patient_key_is_refused() -> None:
    with pytest.raises(ValueError, match="patient_key"):
        ServiceSettings(patient_key="short", signing_key=new_key())
