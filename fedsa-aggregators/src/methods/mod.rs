//! Server rules of the field's federated-LoRA methods that see a module's factors together
//! (`fedsa_core::ModuleRule`): FedEx-LoRA's exact residual, FedSVD's re-factorisation, and
//! the three that combine clients of different ranks — FLoRA's stacked merge, FlexLoRA's SVD
//! truncation and HetLoRA's norm-weighted padding.

mod factors;
mod fedex;
mod fedsvd;
pub mod flexlora;
mod flora;
pub mod hetlora;
pub mod linalg;

pub use factors::{ClientFactors, stack};
pub use fedex::ExactResidual;
pub use fedsvd::{SvdRefresh, refactor};
pub use flexlora::SvdTruncation;
pub use flora::StackedMerge;
pub use hetlora::NormWeightedPadding;

use fedsa_core::{ModuleRule, ServerRule};

/// The rule a strategy's `server` names; `None` when the aggregate alone is the new state.
pub fn module_rule(rule: ServerRule) -> Option<Box<dyn ModuleRule>> {
    match rule {
        ServerRule::Aggregate => None,
        ServerRule::MergeStacked => Some(Box::new(StackedMerge::default())),
        ServerRule::SvdTruncate => Some(Box::new(SvdTruncation::default())),
        ServerRule::NormPadded => Some(Box::new(NormWeightedPadding::default())),
        ServerRule::ExactResidual => Some(Box::new(ExactResidual)),
        ServerRule::SvdRefresh { every } => Some(Box::new(SvdRefresh::new(every))),
    }
}
