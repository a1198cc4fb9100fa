"""The neds config section: defaults, nested unknown keys, variants and the ablation."""

from pathlib import Path

import pytest
import yaml

from pipeline.neds.config import NedsConfig


def test_unknown_keys_are_errors_naming_them():
    with pytest.raises(ValueError, match="unknown neds key"):
        NedsConfig.from_mapping({"modle": {}})
    with pytest.raises(ValueError, match=r"neds.model: unknown ModelParams key\(s\): 'depth'"):
        NedsConfig.from_mapping({"model": {"depth": 3}})
    with pytest.raises(ValueError, match="schemes"):
        NedsConfig.from_mapping({"masking": {"schemes": ["neural", "everything"]}})


def test_variants_and_masking_ablation():
    config = NedsConfig.from_mapping({"masking_ablation": ["cross_modal"], "masking": {"mask_ratio": 0.2}})
    assert config.masking.mask_ratio == 0.2 and config.training.epochs > 0
    assert config.variant_schemes("encoding") == ("neural",)
    assert config.variant_schemes("decoding") == ("behavior",)
    assert config.variant_schemes("multimodal") == ("neural", "behavior", "within_modality", "cross_modal")
    assert config.variant_schemes("no_cross_modal") == ("neural", "behavior", "within_modality")
    assert config.all_variants[-1] == "no_cross_modal"
    with pytest.raises(ValueError, match="no_neural"):
        config.variant_schemes("no_neural")
    with pytest.raises(ValueError, match="masking_ablation"):
        NedsConfig.from_mapping({"masking_ablation": ["cross_modal"], "masking": {"schemes": ["neural", "behavior"]}})


def test_search_and_model_sections():
    config = NedsConfig.from_mapping({"search": {"draws": 3, "n_layers": [2, 3]}, "multi_session_model": {"n_layers": 4}})
    assert config.search.draws == 3 and config.search.n_layers == (2, 3) and config.multi_session_model.n_layers == 4
    assert config.model.n_layers != 4  # single- and multi-session architectures are configured apart
    with pytest.raises(ValueError, match="learning_rate must be \\[low, high\\]"):
        NedsConfig.from_mapping({"search": {"learning_rate": [0.01, 0.001]}})
    with pytest.raises(ValueError, match="positive integers"):
        NedsConfig.from_mapping({"search": {"embed_dim": [12.5]}})


def test_ndt2_section_of_the_paper_config_and_bad_values():
    paper = yaml.safe_load((Path(__file__).parents[2] / "config" / "paper.yaml").read_text())["neds"]
    ndt2 = NedsConfig.from_mapping(paper).ndt2
    assert (ndt2.patch_size, ndt2.embed_dim, ndt2.n_layers, ndt2.mask_ratio) == (64, 512, 6, 0.11)  # App. C Table 6
    with pytest.raises(ValueError, match="neds.ndt2: Ndt2Params: mask_ratio"):
        NedsConfig.from_mapping({"ndt2": {"mask_ratio": 1.0}})


def test_transformer_baseline_sections_of_the_paper_config_and_bad_values():
    paper = NedsConfig.from_mapping(yaml.safe_load((Path(__file__).parents[2] / "config" / "paper.yaml").read_text())
                                    ["neds"])
    assert paper.transformer_baselines == ("ndt2", "ndt2_multi_session", "poyo", "poyo_multi_session")
    poyo = paper.poyo_multi_session  # App. C Table 7: D 128, head 64, depth 4, 8 heads, 32 latents over 2 s
    assert (poyo.embed_dim, poyo.head_dim, poyo.n_layers, poyo.n_heads) == (128, 64, 4, 8)
    assert round(2.0 / poyo.latent_step_s) * poyo.latents_per_step == 32
    assert paper.ndt2_multi_session.pretrain_epochs == 600 and paper.ndt2_multi_session.finetune_epochs >= 1
    with pytest.raises(ValueError, match="neds.poyo: PoyoParams: head_dim must be a multiple of 4"):
        NedsConfig.from_mapping({"poyo": {"head_dim": 6}})
    with pytest.raises(ValueError, match="neds.poyo_multi_session: PoyoMultiSessionParams: identify_epochs"):
        NedsConfig.from_mapping({"poyo_multi_session": {"identify_epochs": 0}})
    with pytest.raises(ValueError, match="transformer_baselines"):
        NedsConfig.from_mapping({"transformer_baselines": ["ndt3"]})
