//! LoRA, rsLoRA and VeRA written in the spec language. They are ordinary specs: a plugin's
//! adapter goes through exactly the same parser, validator and interpreter.

/// `W0 x + (alpha/r) B A dropout(x)`; A Kaiming-uniform (a = sqrt 5), B zeros (PEFT's init).
pub(crate) const LORA: &str = r#"{
  "name": "lora",
  "scale": "alpha/r",
  "params": [
    {"name": "lora_A", "peft_name": "lora_A.weight", "shape": ["r", "in"],
     "init": {"kind": "kaiming_uniform", "a": 2.23606797749979}, "role": "a"},
    {"name": "lora_B", "peft_name": "lora_B.weight", "shape": ["out", "r"],
     "init": {"kind": "zeros"}, "role": "b"}
  ],
  "program": [
    {"op": "dropout", "args": ["x"], "out": "h"},
    {"op": "linear", "args": ["h", "lora_A"], "out": "h"},
    {"op": "linear", "args": ["h", "lora_B"], "out": "h"},
    {"op": "scale", "args": ["h"], "out": "h"},
    {"op": "add", "args": ["base", "h"], "out": "y"}
  ],
  "output": "y"
}"#;

/// Rank-stabilised LoRA: LoRA with the scale `alpha/sqrt(r)`.
pub(crate) const RSLORA: &str = r#"{
  "name": "rslora",
  "scale": "alpha/sqrt(r)",
  "params": [
    {"name": "lora_A", "peft_name": "lora_A.weight", "shape": ["r", "in"],
     "init": {"kind": "kaiming_uniform", "a": 2.23606797749979}, "role": "a"},
    {"name": "lora_B", "peft_name": "lora_B.weight", "shape": ["out", "r"],
     "init": {"kind": "zeros"}, "role": "b"}
  ],
  "program": [
    {"op": "dropout", "args": ["x"], "out": "h"},
    {"op": "linear", "args": ["h", "lora_A"], "out": "h"},
    {"op": "linear", "args": ["h", "lora_B"], "out": "h"},
    {"op": "scale", "args": ["h"], "out": "h"},
    {"op": "add", "args": ["base", "h"], "out": "y"}
  ],
  "output": "y"
}"#;

/// VeRA: frozen random A `[r, in_max]` and B `[out_max, r]` shared by every adapted layer and
/// sliced to its size; trainable `d` (rank side, init 0.1) and `b` (output side, init 0):
/// `W0 x + b ⊙ (B (d ⊙ (A dropout(x))))`.
pub(crate) const VERA: &str = r#"{
  "name": "vera",
  "scale": "1",
  "params": [
    {"name": "vera_A", "peft_name": "vera_A", "shape": ["r", "in_max"],
     "init": {"kind": "kaiming_uniform", "a": 2.23606797749979},
     "trainable": false, "shared": true},
    {"name": "vera_B", "peft_name": "vera_B", "shape": ["out_max", "r"],
     "init": {"kind": "kaiming_uniform", "a": 2.23606797749979},
     "trainable": false, "shared": true},
    {"name": "lambda_d", "peft_name": "vera_lambda_d", "shape": ["r"],
     "init": {"kind": "constant", "value": 0.1}, "role": "a"},
    {"name": "lambda_b", "peft_name": "vera_lambda_b", "shape": ["out"],
     "init": {"kind": "zeros"}, "role": "b"}
  ],
  "program": [
    {"op": "slice", "args": ["vera_A"], "dim": 1, "len": "in", "out": "a"},
    {"op": "slice", "args": ["vera_B"], "dim": 0, "len": "out", "out": "b"},
    {"op": "dropout", "args": ["x"], "out": "h"},
    {"op": "linear", "args": ["h", "a"], "out": "h"},
    {"op": "mul", "args": ["h", "lambda_d"], "out": "h"},
    {"op": "linear", "args": ["h", "b"], "out": "h"},
    {"op": "mul", "args": ["h", "lambda_b"], "out": "h"},
    {"op": "add", "args": ["base", "h"], "out": "y"}
  ],
  "output": "y"
}"#;

/// The text of a built-in spec.
pub(crate) fn text(kind: &str) -> Option<&'static str> {
    match kind {
        "lora" => Some(LORA),
        "rslora" => Some(RSLORA),
        "vera" => Some(VERA),
        _ => None,
    }
}

/// The built-in adapter kinds.
pub const BUILTIN_KINDS: [&str; 3] = ["lora", "rslora", "vera"];

/// The built-in adapter kinds ([`BUILTIN_KINDS`]).
pub fn builtin_kinds() -> [&'static str; 3] {
    BUILTIN_KINDS
}
