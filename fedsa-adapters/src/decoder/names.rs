//! The decoder's tensors: Hugging Face names (without the `model.` prefix, except `lm_head`),
//! shapes under a config, and their llama.cpp (GGUF) names.

use crate::adapter::Module;
use crate::decoder::config::LlamaConfig;

/// The prefix Hugging Face puts before the decoder body's tensors (`model.layers.0...`).
pub(crate) const PREFIX: &str = "model.";
pub(crate) const EMBED: &str = "embed_tokens.weight";
pub(crate) const FINAL_NORM: &str = "norm.weight";
pub(crate) const LM_HEAD: &str = "lm_head.weight";
pub(crate) const INPUT_NORM: &str = "input_layernorm.weight";
pub(crate) const POST_NORM: &str = "post_attention_layernorm.weight";

/// `(in, out)` of a decoder module under `c`.
pub(crate) fn module_dims(c: &LlamaConfig, m: Module) -> (usize, usize) {
    let (h, i) = (c.hidden_size, c.intermediate_size);
    let kv = c.kv_heads() * c.head_dim();
    match m {
        Module::KProj | Module::VProj => (h, kv),
        Module::GateProj | Module::UpProj => (h, i),
        Module::DownProj => (i, h),
        _ => (h, h),
    }
}

/// The tensor name of layer `l`'s `suffix` (`layers.3.self_attn.q_proj.weight`).
pub(crate) fn layer_name(l: usize, suffix: &str) -> String {
    format!("layers.{l}.{suffix}")
}

/// Every base tensor's name and shape; `lm_head.weight` only when not tied.
pub(crate) fn weight_shapes(c: &LlamaConfig) -> Vec<(String, Vec<usize>)> {
    let h = c.hidden_size;
    let mut out = vec![(EMBED.to_string(), vec![c.vocab_size, h])];
    for l in 0..c.num_hidden_layers {
        for m in Module::DECODER {
            let (inp, o) = module_dims(c, m);
            out.push((layer_name(l, &format!("{}.weight", m.path())), vec![o, inp]));
        }
        out.push((layer_name(l, INPUT_NORM), vec![h]));
        out.push((layer_name(l, POST_NORM), vec![h]));
    }
    out.push((FINAL_NORM.to_string(), vec![h]));
    if !c.tie_word_embeddings {
        out.push((LM_HEAD.to_string(), vec![c.vocab_size, h]));
    }
    out
}

/// The llama.cpp name of a Hugging Face tensor name from [`weight_shapes`].
pub(crate) fn gguf_name(hf: &str) -> String {
    match hf {
        EMBED => return "token_embd.weight".into(),
        FINAL_NORM => return "output_norm.weight".into(),
        LM_HEAD => return "output.weight".into(),
        _ => {}
    }
    let rest = hf.strip_prefix("layers.").unwrap_or(hf);
    let (layer, suffix) = rest.split_once('.').unwrap_or(("?", rest));
    let short = match suffix {
        "self_attn.q_proj.weight" => "attn_q",
        "self_attn.k_proj.weight" => "attn_k",
        "self_attn.v_proj.weight" => "attn_v",
        "self_attn.o_proj.weight" => "attn_output",
        "mlp.gate_proj.weight" => "ffn_gate",
        "mlp.up_proj.weight" => "ffn_up",
        "mlp.down_proj.weight" => "ffn_down",
        INPUT_NORM => "attn_norm",
        POST_NORM => "ffn_norm",
        other => other,
    };
    format!("blk.{layer}.{short}.weight")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gguf_names_follow_llama_cpp() {
        assert_eq!(
            gguf_name("layers.3.self_attn.q_proj.weight"),
            "blk.3.attn_q.weight"
        );
        assert_eq!(
            gguf_name("layers.0.mlp.down_proj.weight"),
            "blk.0.ffn_down.weight"
        );
        assert_eq!(
            gguf_name("layers.1.post_attention_layernorm.weight"),
            "blk.1.ffn_norm.weight"
        );
        assert_eq!(gguf_name(EMBED), "token_embd.weight");
        let c = LlamaConfig::tiny(10, 8, 2, 2, 1, 16);
        assert_eq!(weight_shapes(&c).len(), 1 + 2 * 9 + 2);
    }
}
