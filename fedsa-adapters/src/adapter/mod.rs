//! Adapters as data. An [`AdapterSpec`] names its parameters (shape in terms of `in`, `out`,
//! `r`, init rule, role, PEFT name), a scale rule, and a program over a fixed vocabulary of
//! ops; [`AdapterSet`] instantiates it on the target modules of a model and runs it.
//! LoRA, rsLoRA and VeRA are specs themselves ([`AdapterSpec::builtin`]), so plugins get the same
//! power.

mod builtin;
mod ctx;
mod delta;
mod low_rank;
mod ops;
mod plan;
mod program;
mod set;
mod shape;
mod spec;
mod target;

pub use builtin::{BUILTIN_KINDS, builtin_kinds};
pub use ctx::ForwardCtx;
pub use delta::BaseDeltas;
pub use plan::PlanKind;
pub use set::{AdapterSet, InitialParam};
pub use shape::DimExpr;
pub use spec::{AdapterSpec, InitRule, OpSpec, ParamSpec, ScaleRule};
pub use target::{AdaptFn, AdaptedFn, Module, ModuleInfo};
