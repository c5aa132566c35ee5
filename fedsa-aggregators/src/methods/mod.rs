//! Server rules of the field's federated-LoRA methods that see a module's factors together
//! (`fedsa_core::ModuleRule`): FedEx-LoRA's exact residual and FedSVD's re-factorisation.

mod fedex;
mod fedsvd;
pub mod linalg;

pub use fedex::ExactResidual;
pub use fedsvd::{SvdRefresh, refactor};

use fedsa_core::{ModuleRule, ServerRule};

/// The rule a strategy's `server` names; `None` when the aggregate alone is the new state.
pub fn module_rule(rule: ServerRule) -> Option<Box<dyn ModuleRule>> {
    match rule {
        // No built-in strategy names FLoRA's, FlexLoRA's or HetLoRA's rule yet; with none set,
        // the loop refuses to aggregate rather than run without it.
        ServerRule::Aggregate
        | ServerRule::MergeStacked
        | ServerRule::SvdTruncate
        | ServerRule::NormPadded => None,
        ServerRule::ExactResidual => Some(Box::new(ExactResidual)),
        ServerRule::SvdRefresh { every } => Some(Box::new(SvdRefresh::new(every))),
    }
}
