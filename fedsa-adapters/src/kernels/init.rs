//! What a product's output starts as before the product is added ([`super::linear`] and
//! [`super::skinny`] write it themselves, in the pass that fills the output).

/// The starting value of an output `[rows, cols]`.
#[derive(Clone, Copy)]
pub(crate) enum Init<'a> {
    /// Nothing: the product is written over it.
    Zero,
    /// `bias` in every row.
    Bias(&'a [f32]),
    /// `rows` (same shape as the output), plus `bias` in every row if given.
    Rows(&'a [f32], Option<&'a [f32]>),
}

impl Init<'_> {
    /// Writes the starting value of the output's elements `at..at + dst.len()` (whole rows,
    /// `cols` wide) into `dst`, which is zeroed.
    pub(crate) fn fill(&self, dst: &mut [f32], at: usize, cols: usize) {
        match *self {
            Init::Zero => {}
            Init::Bias(bias) => {
                for row in dst.chunks_mut(cols) {
                    row.copy_from_slice(bias);
                }
            }
            Init::Rows(src, bias) => {
                dst.copy_from_slice(&src[at..at + dst.len()]);
                if let Some(bias) = bias {
                    for row in dst.chunks_mut(cols) {
                        for (v, b) in row.iter_mut().zip(bias) {
                            *v += b;
                        }
                    }
                }
            }
        }
    }

    /// Whether the product is added onto the starting value (false: written over it).
    pub(crate) fn keeps(&self) -> bool {
        !matches!(self, Init::Zero)
    }
}
