//! The vocabulary of adapter programs: the ops (their names in spec text and their argument
//! counts) and the values every program can read. The validator, the shape inference and the
//! compiler all read it from here.

/// One op of the spec language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    Linear,
    Matmul,
    Add,
    Sub,
    Mul,
    Div,
    Scale,
    Dropout,
    Detach,
    Transpose,
    ColNorm,
    Slice,
}

impl OpKind {
    /// Every op, in the order error messages list them.
    pub(crate) const ALL: [OpKind; 12] = [
        OpKind::Linear,
        OpKind::Matmul,
        OpKind::Add,
        OpKind::Sub,
        OpKind::Mul,
        OpKind::Div,
        OpKind::Scale,
        OpKind::Dropout,
        OpKind::Detach,
        OpKind::Transpose,
        OpKind::ColNorm,
        OpKind::Slice,
    ];

    /// The op's name in spec text.
    pub(crate) fn name(self) -> &'static str {
        match self {
            OpKind::Linear => "linear",
            OpKind::Matmul => "matmul",
            OpKind::Add => "add",
            OpKind::Sub => "sub",
            OpKind::Mul => "mul",
            OpKind::Div => "div",
            OpKind::Scale => "scale",
            OpKind::Dropout => "dropout",
            OpKind::Detach => "detach",
            OpKind::Transpose => "transpose",
            OpKind::ColNorm => "col_norm",
            OpKind::Slice => "slice",
        }
    }

    /// The op named `name` in spec text.
    pub(crate) fn parse(name: &str) -> Option<OpKind> {
        OpKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// How many arguments the op takes.
    pub(crate) fn arity(self) -> usize {
        match self {
            OpKind::Linear
            | OpKind::Matmul
            | OpKind::Add
            | OpKind::Sub
            | OpKind::Mul
            | OpKind::Div => 2,
            OpKind::Scale
            | OpKind::Dropout
            | OpKind::Detach
            | OpKind::Transpose
            | OpKind::ColNorm
            | OpKind::Slice => 1,
        }
    }
}

/// Values every program can read: the layer input, the frozen layer's output, its weight.
pub(crate) const INPUTS: [&str; 3] = ["x", "base", "W0"];
