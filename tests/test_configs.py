"""Every shipped config parses with the current code (the keys exist and have the right types)."""

from pathlib import Path

import pytest
import yaml

from lit_sampler.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SUBCOMMAND = {"train_demo.yaml": "fit"}


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_shipped_config_parses(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([SUBCOMMAND.get(name, "predict"), "--config", str(CONFIGS / name), "--print_config"])
    assert exit_info.value.code in (0, None)
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["model"]["class_path"].startswith("lit_sampler.lightning.")
    assert resolved["data"]["class_path"].startswith("lit_sampler.datamodules.")
